namespace Switch.Engine.Events;

/// <summary>What an input event is. Every input of the switch is one of these, journaled before it is applied.</summary>
public enum EventKind : byte
{
    None = 0,
    /// <summary>The first record of every journal: the participants and rules the engine starts from.</summary>
    Genesis = 1,
    InstitutionRequest = 2,
    BankResult = 3,
    /// <summary>Time passing: deadlines and query back-off fire on ticks, never on a clock read.</summary>
    Tick = 4,
    SetEndpointWeights = 5,
    SetEndpointState = 6,
    /// <summary>An operator closes the open clearing batch (场次); scheduled closes happen inside ticks instead.</summary>
    CloseBatch = 7,
    /// <summary>The bank connector saw an endpoint become reachable or unreachable. Separate from the operator's admin
    /// state: an operator's Down survives the connector reconnecting.</summary>
    EndpointReachability = 8,
    /// <summary>A claimed slot whose fill threw (<see cref="InputEvent.PrepareVoid"/>): published so the multi-producer
    /// sequence stays contiguous, never journaled, never applied. Replay never sees one, so state is as if it never was.</summary>
    Void = 9,
    /// <summary>Wakes the logic thread without being an input (<see cref="InputEvent.PrepareNudge"/>): never journaled,
    /// never applied. It lets work that waits for a pause between events (a snapshot's capture) happen on an idle switch
    /// without journaling anything, so asking for a snapshot does not move the journal's position.</summary>
    Nudge = 10,
    /// <summary>A leadership term begins (<see cref="InputEvent.Term"/>): the primary journals it when it takes office,
    /// before it serves. Terms only grow; a standby refuses records from a term older than the newest it journaled.</summary>
    Term = 11,
}

public enum RequestType : byte
{
    None = 0,
    /// <summary>协议支付 / quick pay: debit the user's account at the payer's bank into the institution's reserve.</summary>
    AgreementPayment = 1,
    /// <summary>付款 / 代付: credit the user's account at the payee's bank from the institution's reserve.</summary>
    Payout = 2,
    /// <summary>退款: credit back (part of) an earlier successful agreement payment.</summary>
    Refund = 3,
    /// <summary>查询: the institution asks for the current status of one of its orders.</summary>
    Query = 4,
}

/// <summary>What the switch asks a bank endpoint to do.</summary>
public enum BankOperation : byte
{
    None = 0,
    Debit = 1,
    Credit = 2,
    Query = 3,
    Reverse = 4,
}

/// <summary>A bank endpoint's answer to one operation.</summary>
public enum BankReply : byte
{
    None = 0,
    Succeeded = 1,
    Failed = 2,
    /// <summary>Query: the bank has no record of the transaction (the request never reached it before its deadline).</summary>
    NotFound = 3,
    /// <summary>Query: the bank has the transaction but no outcome yet.</summary>
    Pending = 4,
}

public enum TransactionStatus : byte
{
    None = 0,
    /// <summary>Sent to a bank endpoint; waiting for its answer until the deadline.</summary>
    Dispatched = 1,
    /// <summary>No answer by the deadline; the switch is asking the bank (never guessing).</summary>
    Unknown = 2,
    Succeeded = 3,
    Failed = 4,
}

public enum EndpointState : byte
{
    Up = 0,
    /// <summary>No new traffic; work already in flight completes.</summary>
    Draining = 1,
    Down = 2,
}

/// <summary>Why a request or command was refused. Each maps to one precise gRPC status in the adapters.</summary>
public enum RejectCode : byte
{
    None = 0,
    MissingField = 1,
    FieldTooLong = 2,
    InvalidField = 3,
    UnknownInstitution = 4,
    InstitutionDisabled = 5,
    UnknownBank = 6,
    InvalidAmount = 7,
    AmountOverLimit = 8,
    UnsupportedCurrency = 9,
    UnsupportedRequestType = 10,
    DuplicateOrderConflict = 11,
    OrderNotFound = 12,
    OriginalNotFound = 13,
    OriginalNotRefundable = 14,
    OriginalFullyRefunded = 15,
    RefundExceedsOriginal = 16,
    BankUnavailable = 17,
    EndpointBusy = 18,
    NetDebitCapExceeded = 19,
    DailyLimitExceeded = 20,
    /// <summary>No longer produced (a transaction not final is parked, never blocking the table); the number stays taken.</summary>
    TransactionTableFull = 21,
    UnknownEndpoint = 22,
    InvalidWeights = 23,
    AccountTableFull = 24,
    /// <summary>The bank has rules.maxUnresolvedPerBank transactions not final: its new work waits, no one else's.</summary>
    BankUnresolvedLimit = 25,
    /// <summary>The client's deadline passed before the request was journaled: refused, never executed, nothing kept.</summary>
    DeadlinePassed = 26,
}

/// <summary>Which request field a reject is about, so the caller's error names it.</summary>
public enum RequestField : byte
{
    None = 0,
    Institution = 1,
    OrderNo = 2,
    OriginalOrderNo = 3,
    Bank = 4,
    Account = 5,
    Currency = 6,
    Echo = 7,
    Amount = 8,
    RequestType = 9,
    Endpoint = 10,
    Weights = 11,
    EndpointState = 12,
    /// <summary>Operator commands: the operator's identity (<c>InputEvent.Operator</c>).</summary>
    Operator = 13,
    /// <summary>SetEndpointWeights: the ramp's steps or duration.</summary>
    Ramp = 14,
    /// <summary>Operator commands: the operator's reason (<c>InputEvent.Note</c>).</summary>
    Note = 15,
}

/// <summary>A per-endpoint circuit breaker's state (inside the logic, rebuilt by replay).</summary>
public enum BreakerState : byte
{
    /// <summary>Healthy: takes its share of traffic.</summary>
    Closed = 0,
    /// <summary>Too many errors or timeouts: no new traffic until the open time has passed.</summary>
    Open = 1,
    /// <summary>After the open time: a trickle of probes decides between Closed and Open.</summary>
    HalfOpen = 2,
}

/// <summary>What an <c>OutputKind.Audit</c> entry records. One entry per change, numbered in engine order.</summary>
public enum AuditKind : byte
{
    None = 0,
    /// <summary>An operator set a bank's weights at once.</summary>
    Weights = 1,
    /// <summary>An operator started a ramp towards target weights (the weights are still the current ones).</summary>
    RampStarted = 2,
    /// <summary>A ramp step applied (the weights after it).</summary>
    RampStep = 3,
    /// <summary>The last ramp step applied: the weights are the target.</summary>
    RampDone = 4,
    /// <summary>A new weights command cancelled a running ramp (the weights where it stopped).</summary>
    RampCancelled = 5,
    /// <summary>An operator set an endpoint's admin state.</summary>
    State = 6,
    /// <summary>The connector reported an endpoint reachable or unreachable.</summary>
    Reachability = 7,
    BreakerOpen = 8,
    BreakerHalfOpen = 9,
    BreakerClosed = 10,
    /// <summary>A clearing batch closed (scheduled or commanded).</summary>
    BatchClosed = 11,
}

/// <summary>Which gRPC-style category a reject belongs to; the adapters map these one to one.</summary>
public enum RejectCategory : byte
{
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
    DeadlineExceeded,
}

public static class RejectCodes
{
    public static RejectCategory Category(RejectCode code) => code switch
    {
        RejectCode.MissingField or RejectCode.FieldTooLong or RejectCode.InvalidField or RejectCode.InvalidAmount
            or RejectCode.AmountOverLimit or RejectCode.UnsupportedCurrency or RejectCode.UnsupportedRequestType
            or RejectCode.UnknownBank or RejectCode.UnknownEndpoint or RejectCode.InvalidWeights => RejectCategory.InvalidArgument,
        RejectCode.UnknownInstitution or RejectCode.InstitutionDisabled => RejectCategory.PermissionDenied,
        RejectCode.OrderNotFound or RejectCode.OriginalNotFound => RejectCategory.NotFound,
        RejectCode.DuplicateOrderConflict => RejectCategory.AlreadyExists,
        RejectCode.OriginalNotRefundable or RejectCode.OriginalFullyRefunded or RejectCode.RefundExceedsOriginal
            or RejectCode.NetDebitCapExceeded or RejectCode.DailyLimitExceeded => RejectCategory.FailedPrecondition,
        RejectCode.EndpointBusy or RejectCode.TransactionTableFull or RejectCode.AccountTableFull
            or RejectCode.BankUnresolvedLimit => RejectCategory.ResourceExhausted,
        RejectCode.BankUnavailable => RejectCategory.Unavailable,
        RejectCode.DeadlinePassed => RejectCategory.DeadlineExceeded,
        _ => throw new ArgumentOutOfRangeException(nameof(code), code, "no category for this reject code"),
    };
}
