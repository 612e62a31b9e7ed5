namespace Switch.Clearing;

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
/// <see cref="Breaks"/> lists the first <see cref="MaxListedBreaks"/> by switch id; <see cref="Totals"/> counts them all.
public sealed record BreakReport(long BatchId, string ParticipantKind, string ParticipantId, long SwitchLines, long ParticipantLines,
    long Matched, IReadOnlyList<Break> Breaks, bool BreaksTruncated, IReadOnlyDictionary<BreakKind, BreakTotal> Totals)
{
    public const int MaxListedBreaks = 10_000;

    public bool Clean => Breaks.Count == 0;

    /// <summary>Compares two files held in memory (small files, tests): the same join as the streaming path.</summary>
    public static BreakReport Compare(ReconciliationFile switchFile, ReconciliationFile participantFile)
    {
        static IEnumerable<ReconEntry> SortedEntries(ReconciliationFile f)
        {
            var entries = new ReconEntry[f.Lines.Count];
            // Data lines start on line 2, after the header.
            for (int i = 0; i < entries.Length; i++) entries[i] = ReconEntry.From(f.Lines[i], i + 2);
            entries.AsSpan().Sort(new ReconEntry.ByIdThenLine());
            return entries;
        }
        return Join(switchFile.Identity, SortedEntries(switchFile), switchFile.Lines.Count,
            participantFile.Identity, SortedEntries(participantFile), participantFile.Lines.Count);
    }

    /// <summary>Compares two files sorted in bounded memory (any size).</summary>
    public static BreakReport Compare(SortedReconFile switchFile, SortedReconFile participantFile) =>
        Join(switchFile.Header, switchFile.Sorted(), switchFile.Lines, participantFile.Header, participantFile.Sorted(), participantFile.Lines);

    /// <summary>
    /// Merge-joins the two sides by switch id (each sorted by id, then line), in one pass, holding only the listed
    /// breaks. A transaction with both an amount and a status difference is reported as a status mismatch (the
    /// amount is moot when one side says it never happened). Throws <see cref="ClearingFormatException"/> if the
    /// files are not about the same batch and participant (line 1) or a side lists a switch id twice.
    /// </summary>
    private static BreakReport Join(ReconHeader ourHeader, IEnumerable<ReconEntry> ours, long ourLines,
        ReconHeader theirHeader, IEnumerable<ReconEntry> theirs, long theirLines)
    {
        if (ourHeader.BatchId != theirHeader.BatchId)
        {
            throw new ClearingFormatException(1, $"batch_id is {theirHeader.BatchId}, comparing with batch {ourHeader.BatchId}");
        }
        if (ourHeader.ParticipantKind != theirHeader.ParticipantKind || ourHeader.ParticipantId != theirHeader.ParticipantId)
        {
            throw new ClearingFormatException(1, $"participant is {theirHeader.ParticipantKind} {theirHeader.ParticipantId}, comparing with {ourHeader.ParticipantKind} {ourHeader.ParticipantId}");
        }
        var breaks = new List<Break>();
        var totals = new Dictionary<BreakKind, BreakTotal>();
        foreach (BreakKind kind in Enum.GetValues<BreakKind>()) totals[kind] = new BreakTotal(0, 0);
        long matched = 0;
        void Add(BreakKind kind, in ReconEntry? our, in ReconEntry? their)
        {
            long amountFen = kind switch
            {
                BreakKind.MissingAtSwitch => their!.Value.AmountFen,
                BreakKind.MissingAtParticipant => our!.Value.AmountFen,
                _ => Math.Abs(our!.Value.AmountFen - their!.Value.AmountFen),
            };
            BreakTotal t = totals[kind];
            totals[kind] = new BreakTotal(t.Count + 1, checked(t.AmountFen + amountFen));
            if (breaks.Count == MaxListedBreaks) return;
            // Strings only for the listed breaks: the join itself allocates nothing per line.
            breaks.Add(new Break(kind, (our ?? their)!.Value.SwitchId, (our ?? their)!.Value.OrderNo,
                our?.AmountFen ?? 0, their?.AmountFen ?? 0, our?.FeeFen ?? 0, their?.FeeFen ?? 0, our?.Status ?? "", their?.Status ?? ""));
        }

        using var a = new UniqueIds(ours.GetEnumerator());
        using var b = new UniqueIds(theirs.GetEnumerator());
        bool hasA = a.MoveNext(), hasB = b.MoveNext();
        while (hasA || hasB)
        {
            if (hasB && (!hasA || b.Current.SwitchId < a.Current.SwitchId))
            {
                Add(BreakKind.MissingAtSwitch, null, b.Current);
                hasB = b.MoveNext();
            }
            else if (!hasB || a.Current.SwitchId < b.Current.SwitchId)
            {
                Add(BreakKind.MissingAtParticipant, a.Current, null);
                hasA = a.MoveNext();
            }
            else
            {
                ReconEntry our = a.Current, their = b.Current;
                if (our.Succeeded != their.Succeeded) Add(BreakKind.StatusMismatch, our, their);
                else if (our.AmountFen != their.AmountFen || our.FeeFen != their.FeeFen) Add(BreakKind.AmountMismatch, our, their);
                else matched++;
                hasA = a.MoveNext();
                hasB = b.MoveNext();
            }
        }
        long listed = totals.Values.Sum(t => t.Count);
        return new BreakReport(ourHeader.BatchId, ourHeader.ParticipantKind, ourHeader.ParticipantId, ourLines, theirLines,
            matched, breaks, listed > breaks.Count, totals);
    }

    /// <summary>Passes on entries sorted by id, refusing a repeated id (naming both lines) or an id out of order.</summary>
    private sealed class UniqueIds(IEnumerator<ReconEntry> inner) : IDisposable
    {
        private bool _any;
        public ReconEntry Current { get; private set; }

        public bool MoveNext()
        {
            if (!inner.MoveNext()) return false;
            ReconEntry next = inner.Current;
            if (_any && next.SwitchId == Current.SwitchId) throw new ClearingFormatException(next.LineNo, $"switch_id {next.SwitchId} appears twice (also line {Current.LineNo})");
            if (_any && next.SwitchId < Current.SwitchId) throw new InvalidOperationException("breaks: entries out of order");
            _any = true;
            Current = next;
            return true;
        }

        public void Dispose() => inner.Dispose();
    }
}
