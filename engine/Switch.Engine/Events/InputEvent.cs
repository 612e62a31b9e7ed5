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

    /// <summary>Term: the leadership term that begins (positive, above every term before it). Kept in the
    /// <see cref="TransactionId"/> field, which a term event does not use: a ring slot does not grow for a rare event.</summary>
    public long Term
    {
        readonly get => TransactionId;
        set => TransactionId = value;
    }

    public void Reset() => this = default;

    // One Prepare per input kind: each resets the slot (a reused slot keeps nothing of its last event) and sets exactly
    // that kind's fields. Producers fill slots only through these (the engine client calls them inside its claim).

    /// <summary>An institution's request. <paramref name="clientDeadlineUs"/>: Unix µs, 0 = none. The text fields are
    /// stored as given (length limits and character rules are the engine's to judge, with a precise reject).</summary>
    public void PrepareInstitutionRequest(long correlationId, RequestType type, long amountFen, ReadOnlySpan<byte> institution,
        string? orderNo, string? originalOrderNo, string? bankRef, string? account, string? currency, string? echo, long clientDeadlineUs)
    {
        PrepareInstitutionRequest(correlationId, type, amountFen, institution, clientDeadlineUs);
        OrderNo.Set(orderNo);
        OriginalOrderNo.Set(originalOrderNo);
        BankRef.Set(bankRef);
        Account.Set(account);
        Currency.Set(currency);
        Echo.Set(echo);
    }

    /// <summary>As above, with the text fields as UTF-8 bytes (a request decoded straight from its wire bytes): empty is
    /// unset, and a value longer than its field is stored overlong, as the string form stores it.</summary>
    public void PrepareInstitutionRequest(long correlationId, RequestType type, long amountFen, ReadOnlySpan<byte> institution,
        ReadOnlySpan<byte> orderNo, ReadOnlySpan<byte> originalOrderNo, ReadOnlySpan<byte> bankRef, ReadOnlySpan<byte> account,
        ReadOnlySpan<byte> currency, ReadOnlySpan<byte> echo, long clientDeadlineUs)
    {
        PrepareInstitutionRequest(correlationId, type, amountFen, institution, clientDeadlineUs);
        OrderNo.Set(orderNo);
        OriginalOrderNo.Set(originalOrderNo);
        BankRef.Set(bankRef);
        Account.Set(account);
        Currency.Set(currency);
        Echo.Set(echo);
    }

    /// <summary>An institution request's fields other than its text (set by the caller after).</summary>
    private void PrepareInstitutionRequest(long correlationId, RequestType type, long amountFen, ReadOnlySpan<byte> institution, long clientDeadlineUs)
    {
        this = default;
        Kind = EventKind.InstitutionRequest;
        CorrelationId = correlationId;
        RequestType = type;
        AmountFen = amountFen;
        Institution.Set(institution);
        ClientDeadlineUs = clientDeadlineUs;
    }

    /// <summary>A bank's answer to a request or follow-up the switch sent it.</summary>
    public void PrepareBankResult(long transactionId, BankOperation operation, BankReply reply, string? reason)
    {
        PrepareBankResult(transactionId, operation, reply);
        Reason.Set(reason);
    }

    /// <summary>The same, its reason as UTF-8 in the answer's own bytes (the stream's decoder makes no string).</summary>
    public void PrepareBankResult(long transactionId, BankOperation operation, BankReply reply, ReadOnlySpan<byte> reason)
    {
        PrepareBankResult(transactionId, operation, reply);
        Reason.Set(reason);
    }

    private void PrepareBankResult(long transactionId, BankOperation operation, BankReply reply)
    {
        this = default;
        Kind = EventKind.BankResult;
        TransactionId = transactionId;
        Operation = operation;
        Reply = reply;
    }

    public void PrepareTick()
    {
        this = default;
        Kind = EventKind.Tick;
    }

    /// <summary>An operator sets a bank's endpoint weights (at once, or ramped: see <see cref="RampSteps"/>).</summary>
    public void PrepareSetEndpointWeights(long correlationId, string? bankRef, ReadOnlySpan<int> weightsBps, int rampSteps,
        long rampDurationMs, string? operatorId, string? note)
    {
        if (weightsBps.Length > MaxEndpointsPerBank)
        {
            throw new ArgumentOutOfRangeException(nameof(weightsBps), $"at most {MaxEndpointsPerBank} endpoints per bank");
        }
        PrepareCommand(EventKind.SetEndpointWeights, correlationId, operatorId, note);
        BankRef.Set(bankRef);
        EndpointIndex = -1; // the bank's whole set
        EndpointCount = weightsBps.Length;
        weightsBps.CopyTo(WeightsBps);
        RampSteps = rampSteps;
        RampDurationMs = rampDurationMs;
    }

    /// <summary>An operator sets one endpoint's admin state.</summary>
    public void PrepareSetEndpointState(long correlationId, string? bankRef, int endpointIndex, EndpointState state,
        string? operatorId, string? note)
    {
        PrepareEndpointCommand(EventKind.SetEndpointState, correlationId, bankRef, endpointIndex, operatorId, note);
        EndpointState = state;
    }

    /// <summary>An operator closes the open clearing batch.</summary>
    public void PrepareCloseBatch(long correlationId, string? operatorId, string? note) =>
        PrepareCommand(EventKind.CloseBatch, correlationId, operatorId, note);

    /// <summary>The bank connector saw an endpoint become reachable or not (it reports as operator "connector").</summary>
    public void PrepareEndpointReachability(string? bankRef, int endpointIndex, bool reachable, string? reporter, string? note)
    {
        PrepareEndpointCommand(EventKind.EndpointReachability, 0, bankRef, endpointIndex, reporter, note);
        Reachable = reachable;
    }

    /// <summary>A leadership term begins: see <see cref="EventKind.Term"/>.</summary>
    public void PrepareTerm(long term)
    {
        this = default;
        Kind = EventKind.Term;
        Term = term;
    }

    /// <summary>A wake-up for the logic thread: see <see cref="EventKind.Nudge"/>.</summary>
    public void PrepareNudge()
    {
        Reset();
        Kind = EventKind.Nudge;
    }

    /// <summary>A slot whose fill failed: see <see cref="EventKind.Void"/>.</summary>
    public void PrepareVoid()
    {
        this = default;
        Kind = EventKind.Void;
    }

    private void PrepareEndpointCommand(EventKind kind, long correlationId, string? bankRef, int endpointIndex, string? operatorId, string? note)
    {
        PrepareCommand(kind, correlationId, operatorId, note);
        BankRef.Set(bankRef);
        EndpointIndex = endpointIndex;
    }

    private void PrepareCommand(EventKind kind, long correlationId, string? operatorId, string? note)
    {
        this = default;
        Kind = kind;
        CorrelationId = correlationId;
        Operator.Set(operatorId);
        Note.Set(note);
    }
}
