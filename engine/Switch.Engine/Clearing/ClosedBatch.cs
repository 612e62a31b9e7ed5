using Switch.Engine.Events;

namespace Switch.Engine.Clearing;

/// <summary>One participant's netted position in a closed batch. <see cref="Id"/>: the bank code (3 digits), the
/// institution code, or <see cref="ClosedBatch.SwitchFeeId"/>.</summary>
public sealed record ParticipantPosition(ParticipantKind Kind, string Id, long DebitsFen, long CreditsFen, long FeesFen,
    long NetFen, long Count);

/// <summary>A closed clearing batch as the logic handed it out: immutable, safe to read from any thread.</summary>
public sealed class ClosedBatch
{
    public const string SwitchFeeId = "SWITCH";

    public ClosedBatch(long batchId, long openedUs, long closedUs, string closedBy, long transactionCount,
        IReadOnlyList<ParticipantPosition> positions)
    {
        if (batchId <= 0) throw new ArgumentOutOfRangeException(nameof(batchId));
        long sumFen = 0;
        foreach (ParticipantPosition p in positions)
        {
            if (p.CreditsFen - p.DebitsFen != p.NetFen) throw new InvalidOperationException($"closed batch {batchId}: {p.Id} net differs from credits - debits");
            sumFen = checked(sumFen + p.NetFen);
        }
        if (sumFen != 0) throw new InvalidOperationException($"closed batch {batchId}: positions sum to {sumFen} fen");
        BatchId = batchId;
        OpenedUs = openedUs;
        ClosedUs = closedUs;
        ClosedBy = closedBy;
        TransactionCount = transactionCount;
        Positions = positions;
    }

    public long BatchId { get; }
    public long OpenedUs { get; }
    public long ClosedUs { get; }
    /// <summary>The operator who closed it, or "SCHEDULE".</summary>
    public string ClosedBy { get; }
    /// <summary>Transactions finalised in the batch (succeeded and failed).</summary>
    public long TransactionCount { get; }
    /// <summary>Banks by configuration order, then institutions, then the switch fee account.</summary>
    public IReadOnlyList<ParticipantPosition> Positions { get; }

    public static string IdOf(in OutputEvent position) => position.Participant switch
    {
        ParticipantKind.Bank => position.BankCode.ToString("D3"),
        ParticipantKind.Institution => position.Institution.ToString(),
        ParticipantKind.SwitchFee => SwitchFeeId,
        _ => throw new InvalidOperationException($"closed batch: no participant kind {position.Participant}"),
    };
}
