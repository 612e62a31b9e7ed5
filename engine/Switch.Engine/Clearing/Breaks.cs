namespace Switch.Engine.Clearing;

/// <summary>What kind of break (单边账 and its cousins) a transaction is.</summary>
public enum BreakKind : byte
{
    /// <summary>The participant lists a transaction the switch's batch does not hold.</summary>
    MissingAtSwitch = 1,
    /// <summary>The switch's batch holds a transaction the participant does not list.</summary>
    MissingAtParticipant = 2,
    /// <summary>Both list it with a different amount or fee.</summary>
    AmountMismatch = 3,
    /// <summary>Both list it with a different final status (one succeeded, the other failed).</summary>
    StatusMismatch = 4,
}

/// <summary>One break. Amounts and statuses are the two sides' (0 / "" where a side lacks the transaction).</summary>
public sealed record Break(BreakKind Kind, long SwitchId, string OrderNo, long SwitchAmountFen, long ParticipantAmountFen,
    long SwitchFeeFen, long ParticipantFeeFen, string SwitchStatus, string ParticipantStatus);

/// <summary>Count and money of one kind of break: the missing sides' amounts, or the absolute amount differences.</summary>
public readonly record struct BreakTotal(long Count, long AmountFen);

/// <summary>The comparison of a participant's record of a batch with the switch's: every break, by switch id.</summary>
public sealed record BreakReport(long BatchId, string ParticipantKind, string ParticipantId, long Matched,
    IReadOnlyList<Break> Breaks, IReadOnlyDictionary<BreakKind, BreakTotal> Totals)
{
    public bool Clean => Breaks.Count == 0;

    /// <summary>
    /// Compares line by line, keyed by switch id. A transaction with both an amount and a status difference is
    /// reported as a status mismatch (the amount is moot when one side says it never happened).
    /// Throws <see cref="ClearingFormatException"/> (line 1) if the files are not about the same batch and participant.
    /// </summary>
    public static BreakReport Compare(ReconciliationFile switchFile, ReconciliationFile participantFile)
    {
        if (switchFile.BatchId != participantFile.BatchId)
        {
            throw new ClearingFormatException(1, $"batch_id is {participantFile.BatchId}, comparing with batch {switchFile.BatchId}");
        }
        if (switchFile.ParticipantKind != participantFile.ParticipantKind || switchFile.ParticipantId != participantFile.ParticipantId)
        {
            throw new ClearingFormatException(1, $"participant is {participantFile.ParticipantKind} {participantFile.ParticipantId}, comparing with {switchFile.ParticipantKind} {switchFile.ParticipantId}");
        }
        var theirs = participantFile.Lines.ToDictionary(l => l.SwitchId);
        var breaks = new List<Break>();
        long matched = 0;
        foreach (ReconLine ours in switchFile.Lines)
        {
            if (!theirs.Remove(ours.SwitchId, out ReconLine? their))
            {
                breaks.Add(new Break(BreakKind.MissingAtParticipant, ours.SwitchId, ours.OrderNo, ours.AmountFen, 0, ours.FeeFen, 0, ours.Status, ""));
            }
            else if (their.Status != ours.Status)
            {
                breaks.Add(Both(BreakKind.StatusMismatch, ours, their));
            }
            else if (their.AmountFen != ours.AmountFen || their.FeeFen != ours.FeeFen)
            {
                breaks.Add(Both(BreakKind.AmountMismatch, ours, their));
            }
            else
            {
                matched++;
            }
        }
        foreach (ReconLine their in theirs.Values)
        {
            breaks.Add(new Break(BreakKind.MissingAtSwitch, their.SwitchId, their.OrderNo, 0, their.AmountFen, 0, their.FeeFen, "", their.Status));
        }
        breaks.Sort((a, b) => a.SwitchId.CompareTo(b.SwitchId));
        var totals = new Dictionary<BreakKind, BreakTotal>();
        foreach (BreakKind kind in Enum.GetValues<BreakKind>())
        {
            totals[kind] = new BreakTotal(0, 0);
        }
        foreach (Break b in breaks)
        {
            long amountFen = b.Kind switch
            {
                BreakKind.MissingAtSwitch => b.ParticipantAmountFen,
                BreakKind.MissingAtParticipant => b.SwitchAmountFen,
                _ => Math.Abs(b.SwitchAmountFen - b.ParticipantAmountFen),
            };
            BreakTotal t = totals[b.Kind];
            totals[b.Kind] = new BreakTotal(t.Count + 1, checked(t.AmountFen + amountFen));
        }
        return new BreakReport(switchFile.BatchId, switchFile.ParticipantKind, switchFile.ParticipantId, matched, breaks, totals);
    }

    private static Break Both(BreakKind kind, ReconLine ours, ReconLine their) => new(kind, ours.SwitchId, ours.OrderNo,
        ours.AmountFen, their.AmountFen, ours.FeeFen, their.FeeFen, ours.Status, their.Status);
}
