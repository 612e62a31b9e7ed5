using System.Runtime.CompilerServices;

namespace Switch.Engine.Events;

[InlineArray(InputEvent.MaxEndpointsPerBank)]
public struct EndpointWeights { private int _first; }

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

    // BankResult
    public long TransactionId;
    public BankOperation Operation;
    public BankReply Reply;
    /// <summary>BankResult: the bank's reason code. Operator commands (CloseBatch too): the operator's identity or reason.</summary>
    public Text32 Reason;

    // SetEndpointWeights / SetEndpointState (the bank in BankRef)
    public int EndpointIndex;
    public EndpointState EndpointState;
    public int EndpointCount;
    public EndpointWeights WeightsBps;

    public void Reset() => this = default;
}
