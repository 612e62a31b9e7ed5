using Switch.Engine.Events;

namespace Switch.Engine.Business;

/// <summary>An institution's rules and its running state on the writer thread.</summary>
public sealed class Institution
{
    public required int Index { get; init; }
    public required InstitutionConfig Config { get; init; }
    public required byte[] CodeUtf8 { get; init; }
    public bool Enabled;
    /// <summary>Net position in the open clearing batch: what the reserve gained (+) or paid (-).</summary>
    public long PositionFen;
    /// <summary>The open batch's gross movements; their net equals <see cref="PositionFen"/>.</summary>
    public BatchTotals Open;
    /// <summary>Payouts and refunds (with fees) dispatched but not final: reserved against the net debit cap.</summary>
    public long ReservedDebitFen;
    /// <summary>Final outcomes so far; the last feed number issued.</summary>
    public long FeedCount;

    public FeeRule FeeFor(RequestType type) => type switch
    {
        RequestType.AgreementPayment => Config.AgreementPaymentFee,
        RequestType.Payout => Config.PayoutFee,
        RequestType.Refund => Config.RefundFee,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "no fee for this request type"),
    };

    /// <summary>Fee in fen: fixed part plus basis points of the amount, floored (money never rounds up against the payer).</summary>
    public long FeeFen(RequestType type, long amountFen)
    {
        FeeRule rule = FeeFor(type);
        // Exact in a long: amounts are at most SingleLimitFen <= MaxSingleLimitFen (1e12) and bps at most 10000.
        return rule.FixedFen + amountFen * rule.Bps / Routing.TotalWeightBps;
    }
}
