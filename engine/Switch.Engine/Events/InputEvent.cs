using System.Runtime.CompilerServices;

namespace Switch.Engine.Events;

/// <summary>A bank's endpoint weights in basis points, inline. Value equality (the runtime refuses the default one on
/// inline arrays), so events holding it compare as values.</summary>
[InlineArray(InputEvent.MaxEndpointsPerBank)]
public struct EndpointWeights : IEquatable<EndpointWeights>
{
    private int _first;

    public readonly bool Equals(EndpointWeights other) =>
        ((ReadOnlySpan<int>)this).SequenceEqual((ReadOnlySpan<int>)other);
    public override readonly bool Equals(object? obj) => obj is EndpointWeights other && Equals(other);
    public override readonly int GetHashCode()
    {
        var hash = new HashCode();
        foreach (int w in (ReadOnlySpan<int>)this) hash.Add(w);
        return hash.ToHashCode();
    }
}

/// <summary>
/// One input of the switch, as it sits in a pre-allocated ring slot. A flat struct rather than a class
/// hierarchy: producers fill a slot in place and nothing is allocated per event. Which fields mean something
/// depends on <see cref="Kind"/>; <see cref="Reset"/> clears a reused slot before it is filled.
/// </summary>
public struct InputEvent
{
    /// <summary>A bank has at most this many endpoints (front-end systems, one per data centre).</summary>
    public const int MaxEndpointsPerBank = 8;

    public EventKind Kind;
    /// <summary>Stamped by the engine when the event is published; the only clock the business logic sees.</summary>
    public long TimestampUs;
    /// <summary>The publisher's token for routing the answer back (a gateway call, an operator command).</summary>
    public long CorrelationId;

    // InstitutionRequest
    public RequestType RequestType;
    public long AmountFen;
    public Text32 Institution;
    public Text32 OrderNo;
    /// <summary>Refund: the order number of the agreement payment being refunded.</summary>
    public Text32 OriginalOrderNo;
    /// <summary>A 3-digit bank code or a 12-digit CNAPS branch code; normalised to the bank.</summary>
    public Text32 BankRef;
    public Text32 Account;
    public Text32 Currency;
    /// <summary>Returned to the institution untouched.</summary>
    public Text64 Echo;
    /// <summary>The client's absolute deadline (Unix µs, from grpc-timeout); 0 = none.</summary>
    public long ClientDeadlineUs;
    /// <summary>Stamped by the journaler as it appends the event (so it is in the record, and replay sees the same): a
    /// request with <see cref="ClientDeadlineUs"/> at or before it is refused DEADLINE_PASSED and never executes.</summary>
    public long JournaledUs;

    // BankResult
    public long TransactionId;
    public BankOperation Operation;
    public BankReply Reply;
    /// <summary>BankResult: the bank's reason code.</summary>
    public Text32 Reason;

    // Operator commands (SetEndpointWeights, SetEndpointState, CloseBatch) and EndpointReachability
    /// <summary>Who: an operator's id, or the switch itself ("connector", "breaker", "schedule"). A printable code.</summary>
    public Text32 Operator;
    /// <summary>Why: the operator's reason, printable UTF-8 (the connector's: what it saw).</summary>
    public Text64 Note;

    // SetEndpointWeights / SetEndpointState / EndpointReachability (the bank in BankRef)
    public int EndpointIndex;
    public EndpointState EndpointState;
    public int EndpointCount;
    public EndpointWeights WeightsBps;
    /// <summary>SetEndpointWeights: 0 with <see cref="RampDurationMs"/> 0 = at once; else the target is reached in this
    /// many equal steps (1..100) over the duration.</summary>
    public int RampSteps;
    public long RampDurationMs;
    /// <summary>EndpointReachability: the connector can (true) or cannot (false) reach the endpoint.</summary>
    public bool Reachable;

    public void Reset() => this = default;
}
