namespace Switch.Engine.Events;

public enum OutputKind : byte
{
    None = 0,
    /// <summary>Send an operation to a bank endpoint.</summary>
    BankRequest = 1,
    /// <summary>Answer a request (accepted outcome, reject, or current status) to whoever published it.</summary>
    Answer = 2,
    /// <summary>A final outcome appended to the institution's ordered feed (numbered 1, 2, 3...).</summary>
    Feed = 3,
    /// <summary>Answer an operator command.</summary>
    CommandAnswer = 4,
}

/// <summary>
/// One effect of the business logic, for the adapters to carry out (send to a bank, answer an institution).
/// Emitted only for events already durable in the journal.
/// </summary>
public struct OutputEvent
{
    public OutputKind Kind;
    public long TimestampUs;
    public long CorrelationId;
    public long TransactionId;
    public RequestType RequestType;
    public TransactionStatus Status;
    public RejectCode Reject;
    public RequestField RejectField;
    /// <summary>Answer: the request repeated an order number already executed (same content).</summary>
    public bool Duplicate;
    public BankOperation Operation;
    public int InstitutionIndex;
    public int BankIndex;
    public int BankCode;
    public int EndpointIndex;
    /// <summary>BankRequest: how many times this operation has been sent for the transaction (1 = first).</summary>
    public int Attempt;
    public long AmountFen;
    public long FeeFen;
    /// <summary>Feed: the institution's feed number of this final outcome; Answer: the same once final, else 0.</summary>
    public long FeedNo;
    public long ReceivedUs;
    public long FinalUs;
    public Text32 Institution;
    public Text32 OrderNo;
    public Text32 Account;
    public Text32 Reason;
    public Text64 Echo;

    public void Reset() => this = default;
}
