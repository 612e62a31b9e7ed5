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
    /// <summary>A closed batch's position of one participant; all of them come right before its <see cref="BatchClosed"/>.</summary>
    BatchPosition = 5,
    /// <summary>A clearing batch closed: the marker after its positions. The batch never changes afterwards.</summary>
    BatchClosed = 6,
    /// <summary>One entry of the audit log (numbered 1, 2, 3... in engine order): an operator's change, a ramp step, a
    /// reachability change, a breaker transition or a batch close. Emitted on replay too, so a live view rebuilds.</summary>
    Audit = 7,
    /// <summary>The logic's state was captured for a snapshot here (live only, never on replay): every output before it
    /// belongs to the snapshot, none after. A derived view that the snapshot covers records itself at this point
    /// (<see cref="Pipeline.SwitchEngine.SnapshotViewsCaptured"/>). Its <c>CorrelationId</c> is the snapshot's record number.</summary>
    SnapshotMark = 8,
}

/// <summary>Who a batch position belongs to.</summary>
public enum ParticipantKind : byte
{
    None = 0,
    /// <summary>A bank (BankIndex, BankCode).</summary>
    Bank = 1,
    /// <summary>An institution's reserve (InstitutionIndex, Institution).</summary>
    Institution = 2,
    /// <summary>The switch's fee account.</summary>
    SwitchFee = 3,
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
    /// <summary>Answer: it answers a Query (the order's current state, or ORDER_NOT_FOUND), not an execution or a repeat.</summary>
    public bool QueryAnswer;
    public BankOperation Operation;
    public int InstitutionIndex;
    public int BankIndex;
    public int BankCode;
    public int EndpointIndex;
    /// <summary>BankRequest: how many times this operation has been sent for the transaction (1 = first).</summary>
    public int Attempt;
    /// <summary>BankRequest: the deadline the bank gets (Unix µs), decided by the logic from its event stamps.</summary>
    public long BankDeadlineUs;
    public long AmountFen;
    public long FeeFen;
    /// <summary>Feed: the institution's feed number of this final outcome; Answer: the same once final, else 0.</summary>
    public long FeedNo;
    // Two stamps whose meaning depends on the kind: each meaning has its own accessor below (a union, so the struct
    // keeps its size); read and write them only through the accessor that names what they hold.
    private long _startedUs;
    private long _endedUs;
    /// <summary>Transactions: when the request arrived.</summary>
    public long ReceivedUs { readonly get => _startedUs; set => _startedUs = value; }
    /// <summary>Transactions: when the outcome became final.</summary>
    public long FinalUs { readonly get => _endedUs; set => _endedUs = value; }
    /// <summary>BatchClosed: when the batch opened (the bytes of <see cref="ReceivedUs"/>, which batch outputs leave unused).</summary>
    public long BatchOpenedUs { readonly get => _startedUs; set => _startedUs = value; }
    /// <summary>BatchClosed: when the batch closed (the bytes of <see cref="FinalUs"/>).</summary>
    public long BatchClosedUs { readonly get => _endedUs; set => _endedUs = value; }
    /// <summary>Feed/Answer (once final): the clearing batch the outcome belongs to; batch outputs: that batch; close
    /// command answer: the batch it closed.</summary>
    public long BatchId;
    /// <summary>BatchPosition: whose position this is.</summary>
    public ParticipantKind Participant;
    /// <summary>BatchPosition: money the participant pays in the batch (fees included). Fees are in FeeFen.</summary>
    public long DebitsFen;
    /// <summary>BatchPosition: money the participant receives in the batch.</summary>
    public long CreditsFen;
    /// <summary>BatchPosition: credits minus debits (+ receives, - pays).</summary>
    public long NetFen;
    /// <summary>BatchPosition: successful postings; BatchClosed: transactions finalised in the batch.</summary>
    public long Count;
    /// <summary>BatchClosed: how many BatchPosition outputs preceded it.</summary>
    public int ParticipantCount;
    /// <summary>Audit: its number; CommandAnswer of an accepted command: the number of the entry it made.</summary>
    public long AuditNo;
    public AuditKind AuditKind;
    /// <summary>Audit about an endpoint: its admin state, reachability and breaker after the change.</summary>
    public EndpointState EndpointState;
    public bool Reachable;
    public BreakerState Breaker;
    /// <summary>Audit about a bank: its endpoint count and weights after the change.</summary>
    public int EndpointCount;
    public EndpointWeights WeightsBps;
    /// <summary>Audit of a ramp (RampStarted, RampStep, RampDone, RampCancelled): its target weights, its steps, the steps
    /// applied so far and when the next one is due (0 when none is).</summary>
    public EndpointWeights RampTargetBps;
    public int RampSteps;
    public int RampStepsDone;
    public long RampNextStepUs;
    /// <summary>Audit: who made the change ("connector", "breaker", "schedule" when the switch did).</summary>
    public Text32 Operator;
    /// <summary>Audit: why.</summary>
    public Text64 Note;
    public Text32 Institution;
    public Text32 OrderNo;
    public Text32 Account;
    public Text32 Reason;
    public Text64 Echo;

    public void Reset() => this = default;
}
