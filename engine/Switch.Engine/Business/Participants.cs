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

public sealed class Endpoint
{
    public required string Name { get; init; }
    public required int InFlightCap { get; init; }
    public required EndpointBreaker Breaker { get; init; }
    public int WeightBps;
    /// <summary>The operator's admin state.</summary>
    public EndpointState State;
    /// <summary>What the connector last reported; apart from <see cref="State"/> so an operator's Down survives a reconnect.</summary>
    public bool Reachable = true;
    /// <summary>Operations sent to this endpoint and not yet answered or timed out.</summary>
    public int InFlight;
    public long DispatchedCount;
    public long SucceededCount;
    public long FailedCount;
    public long TimedOutCount;

    /// <summary>Takes new traffic in full: up by the operator, reachable, breaker closed (half-open takes a trickle).</summary>
    public bool TakesTraffic => State == EndpointState.Up && Reachable && Breaker.State == BreakerState.Closed;
    /// <summary>May get a share of new traffic: as <see cref="TakesTraffic"/>, or half-open (then only its probes go).</summary>
    public bool InRotation => State == EndpointState.Up && Reachable && Breaker.State != BreakerState.Open;
    /// <summary>Can answer a query or reversal: reachable and not taken down by an operator (draining and open still answer).</summary>
    public bool AnswersFollowUps => State != EndpointState.Down && Reachable;
}

/// <summary>A bank and its endpoints; its position is what it is owed (+) or owes (-) in the open batch.</summary>
public sealed class Bank
{
    public required int Index { get; init; }
    public required BankConfig Config { get; init; }
    public required Endpoint[] Endpoints { get; init; }
    /// <summary>The running cut-over ramp, if any (<see cref="WeightRamp.Active"/>).</summary>
    public WeightRamp Ramp { get; } = new();
    public int Code => Config.Code;
    public long PositionFen;
    /// <summary>The open batch's gross movements; their net equals <see cref="PositionFen"/>.</summary>
    public BatchTotals Open;
    /// <summary>Its transactions not final yet (dispatched or unknown), at most <see cref="RulesConfig.MaxUnresolvedPerBank"/>.</summary>
    public int Unresolved;
}

/// <summary>One participant's gross movements in the open clearing batch. Fees are part of the debits (institution)
/// or credits (switch); <see cref="FeesFen"/> says how much of them.</summary>
public struct BatchTotals
{
    public long DebitsFen;
    public long CreditsFen;
    public long FeesFen;
    /// <summary>Successful transactions posted.</summary>
    public long Count;

    public readonly long NetFen => CreditsFen - DebitsFen;

    public void Post(long debitFen, long creditFen, long feeFen)
    {
        DebitsFen = checked(DebitsFen + debitFen);
        CreditsFen = checked(CreditsFen + creditFen);
        FeesFen = checked(FeesFen + feeFen);
        Count++;
    }
}
