using Switch.Engine.Snapshots;
namespace Switch.Engine.Business;

/// <summary>
/// Bank deadlines in dispatch order. Every deadline is dispatch time plus one fixed timeout and dispatch times
/// only grow, so deadlines come due first-in first-out: a ring of (id, due) replaces a priority queue, with no
/// allocation and O(1) work. An entry whose transaction was answered meanwhile is skipped when it comes due.
/// Its capacity is the table's; when a burst fills it, the logic drops the oldest entry if stale, else moves it to the
/// follow-up queue (a transaction parked while its bank is slow keeps its deadline).
/// </summary>
public sealed class DeadlineQueue
{
    private readonly long[] _ids;
    private readonly long[] _dueUs;
    private readonly long _mask;
    private long _head;
    private long _tail;

    public DeadlineQueue(int capacity)
    {
        if (capacity <= 0 || (capacity & (capacity - 1)) != 0) throw new ArgumentOutOfRangeException(nameof(capacity), "a power of two");
        _ids = new long[capacity];
        _dueUs = new long[capacity];
        _mask = capacity - 1;
    }

    public int Count => (int)(_tail - _head);
    public int Capacity => _ids.Length;

    /// <summary>Adds a deadline; it must not be earlier than the last one added.</summary>
    public void Enqueue(long id, long dueUs)
    {
        if (Count == _ids.Length)
        {
            throw new InvalidOperationException("deadline queue: full (more dispatched transactions than the table retains)");
        }
        if (Count > 0 && dueUs < _dueUs[(int)((_tail - 1) & _mask)])
        {
            throw new InvalidOperationException("deadline queue: deadlines must not go backwards");
        }
        int slot = (int)(_tail & _mask);
        _ids[slot] = id;
        _dueUs[slot] = dueUs;
        _tail++;
    }

    /// <summary>Removes and returns the oldest deadline if it is due at <paramref name="nowUs"/>.</summary>
    public bool TryDequeueDue(long nowUs, out long id, out long dueUs)
    {
        if (_head == _tail)
        {
            id = 0;
            dueUs = 0;
            return false;
        }
        int slot = (int)(_head & _mask);
        dueUs = _dueUs[slot];
        id = _ids[slot];
        if (dueUs > nowUs)
        {
            return false;
        }
        _head++;
        return true;
    }

    /// <summary>The oldest entry, due or not.</summary>
    public bool TryPeek(out long id, out long dueUs)
    {
        bool any = _head != _tail;
        int slot = (int)(_head & _mask);
        id = any ? _ids[slot] : 0;
        dueUs = any ? _dueUs[slot] : 0;
        return any;
    }

    /// <summary>The <paramref name="i"/>th entry from the oldest (0 to <see cref="Count"/>), for the invariant checks.</summary>
    public (long Id, long DueUs) At(int i)
    {
        if ((uint)i >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(i));
        int slot = (int)((_head + i) & _mask);
        return (_ids[slot], _dueUs[slot]);
    }

    /// <summary>Every entry, oldest first (stale ones too: the count decides when the queue is full).</summary>
    public void Save(StateWriter w)
    {
        w.Int(Capacity);
        w.Int(Count);
        for (long i = _head; i < _tail; i++)
        {
            int slot = (int)(i & _mask);
            w.Long(_ids[slot]);
            w.Long(_dueUs[slot]);
        }
    }

    public void Restore(ref StateReader r)
    {
        r.Expect(Capacity, "deadline queue slots (rules.transactionCapacity)");
        int count = r.Int();
        if (count < 0 || count > Capacity) throw new InvalidDataException($"snapshot: {count} deadlines, at most {Capacity}");
        _head = _tail = 0;
        for (int i = 0; i < count; i++)
        {
            long id = r.Long();
            Enqueue(id, r.Long());
        }
    }

    public void DropHead()
    {
        if (_head == _tail) throw new InvalidOperationException("deadline queue: empty");
        _head++;
    }
}
