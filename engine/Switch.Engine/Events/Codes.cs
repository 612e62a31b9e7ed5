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
    TransactionTableFull = 21,
    UnknownEndpoint = 22,
    InvalidWeights = 23,
    AccountTableFull = 24,
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
    /// <summary>Operator commands: the operator's identity (in the Reason text).</summary>
    Operator = 13,
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
        RejectCode.EndpointBusy or RejectCode.TransactionTableFull or RejectCode.AccountTableFull => RejectCategory.ResourceExhausted,
        RejectCode.BankUnavailable => RejectCategory.Unavailable,
        _ => throw new ArgumentOutOfRangeException(nameof(code), code, "no category for this reject code"),
    };
}
