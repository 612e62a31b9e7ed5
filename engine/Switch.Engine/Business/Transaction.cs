using Switch.Engine.Events;

namespace Switch.Engine.Business;

/// <summary>One institution request the switch accepted, from dispatch to its final outcome. A struct in a
/// pre-allocated table: the writer thread updates it in place.</summary>
public struct Transaction
{
    public long Id;
    public RequestType Type;
    public TransactionStatus Status;
    public int InstitutionIndex;
    public int BankIndex;
    public int EndpointIndex;
    public long AmountFen;
    public long FeeFen;
    /// <summary>Refund: the id of the agreement payment it refunds.</summary>
    public long OriginalId;
    /// <summary>Agreement payment: the sum of its successful refunds.</summary>
    public long RefundedFen;
    /// <summary>Agreement payment: refunds dispatched and not final, reserved against the original amount.</summary>
    public long RefundReservedFen;
    /// <summary>Agreement payment: the day number its amount was reserved on in the payer's daily limit.</summary>
    public int LimitDay;
    public long CorrelationId;
    public long ReceivedUs;
    public long DispatchedUs;
    public long UnknownSinceUs;
    public long FinalUs;
    /// <summary>The institution's feed number of the final outcome (0 until final).</summary>
    public long FeedNo;
    /// <summary>The clearing batch open when the outcome became final (0 until final); never changes afterwards.</summary>
    public long BatchId;
    /// <summary>When the pending timer is due (0 = none); a popped timer that differs is stale.</summary>
    public long TimerDueUs;
    public int FollowUps;
    public bool Reversing;
    public Text32 OrderNo;
    /// <summary>Refund: the order number of the payment it refunds (the original may have left memory for the archive,
    /// where it is found by order number, not id).</summary>
    public Text32 OriginalOrderNo;
    public Text32 Account;
    public Text32 Reason;
    public Text64 Echo;

    public readonly bool IsFinal => Status is TransactionStatus.Succeeded or TransactionStatus.Failed;
    public readonly bool IsDebit => Type == RequestType.AgreementPayment;
}
