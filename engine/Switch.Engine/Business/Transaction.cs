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

/// <summary>
/// The retained transactions: a fixed ring of slots indexed by id. Ids are issued in order, so the slot a new
/// transaction needs holds the oldest retained one; it may be evicted only once final. Memory is bounded by the
/// capacity whatever the volume.
/// </summary>
public sealed class TransactionTable
{
    private readonly Transaction[] _slots;
    /// <summary>Capacity is a power of two, so a slot is id &amp; mask: no division on the hot path.</summary>
    private readonly long _mask;

    public TransactionTable(int capacity)
    {
        if (capacity <= 0 || (capacity & (capacity - 1)) != 0) throw new ArgumentOutOfRangeException(nameof(capacity), "a power of two");
        _slots = new Transaction[capacity];
        _mask = capacity - 1;
    }

    public int Capacity => _slots.Length;
    /// <summary>The last id issued; ids start at 1.</summary>
    public long LastId { get; private set; }

    /// <summary>The slot the next id will take; its current occupant (if any) is the one to evict.</summary>
    public ref Transaction NextSlot => ref _slots[(int)(LastId & _mask)];

    /// <summary>Issues the next id in <see cref="NextSlot"/>, which the caller has checked is free or evicted.</summary>
    public ref Transaction Issue()
    {
        ref Transaction slot = ref NextSlot;
        if (slot.Id != 0 && !slot.IsFinal)
        {
            throw new InvalidOperationException($"transaction table: slot of {slot.Id} reused while not final");
        }
        LastId++;
        slot = default;
        slot.Id = LastId;
        return ref slot;
    }

    /// <summary>True when <paramref name="id"/> is still retained; then <paramref name="index"/> is its slot.</summary>
    public bool TryFind(long id, out int index)
    {
        index = -1;
        if (id <= 0 || id > LastId || id <= LastId - _slots.Length)
        {
            return false;
        }
        index = (int)((id - 1) & _mask);
        return _slots[index].Id == id;
    }

    public ref Transaction this[int index] => ref _slots[index];

    public ref Transaction ById(long id)
    {
        if (!TryFind(id, out int index))
        {
            throw new InvalidOperationException($"transaction table: {id} is not retained");
        }
        return ref _slots[index];
    }

    /// <summary>Retained transactions, oldest first.</summary>
    public long OldestRetainedId => Math.Max(1, LastId - _slots.Length + 1);
}
