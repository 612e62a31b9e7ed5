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
    private PageCapture<long>? _idsCapture;
    private PageCapture<long>? _dueCapture;
    /// <summary>The captures every snapshot reuses (<see cref="PageCapture{T}.Begin"/>), and the array handing them out.</summary>
    private readonly PageCapture<long> _idsKept;
    private readonly PageCapture<long> _dueKept;
    private readonly ICapturedArray[] _kept;

    public DeadlineQueue(int capacity)
    {
        if (capacity <= 0 || (capacity & (capacity - 1)) != 0) throw new ArgumentOutOfRangeException(nameof(capacity), "a power of two");
        _ids = new long[capacity];
        _dueUs = new long[capacity];
        _mask = capacity - 1;
        // One reserve for both arrays (the same length): a page aside for each of their pages.
        var aside = new AsideReserve<long>(PageCapture<long>.PageItemsFor(capacity), 2 * PageCapture<long>.PagesFor(capacity));
        _idsKept = new PageCapture<long>(_ids, aside);
        _dueKept = new PageCapture<long>(_dueUs, aside);
        _kept = [_idsKept, _dueKept];
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
        _idsCapture?.Touch(slot);
        _dueCapture?.Touch(slot);
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

    /// <summary>Snapshot, on the logic thread: head and tail now, the two arrays copy-on-write (every entry counts,
    /// stale ones too: the count decides when the queue is full).</summary>
    public void Save(StateWriter w)
    {
        w.Int(Capacity);
        w.Long(_head);
        w.Long(_tail);
    }

    /// <summary>After <see cref="Save"/>, before any change: the arrays as they are now.</summary>
    public ICapturedArray[] BeginCapture()
    {
        if (_idsCapture is not null) throw new InvalidOperationException("deadline queue: a capture is running");
        _idsKept.Begin();
        _dueKept.Begin();
        (_idsCapture, _dueCapture) = (_idsKept, _dueKept);
        return _kept;
    }

    public void EndCapture()
    {
        _idsCapture = null;
        _dueCapture = null;
    }

    /// <summary>At start, off the logic thread: a page aside for every page of both arrays, allocated and faulted in;
    /// returns its bytes (the arrays' own).</summary>
    public long FillAsideReserve() => _idsKept.Reserve.Fill();

    public void RestoreScalars(ref StateReader r)
    {
        r.Expect(Capacity, "deadline queue slots (rules.transactionCapacity)");
        long head = r.Long();
        long tail = r.Long();
        if (head < 0 || tail < head || tail - head > Capacity) throw new InvalidDataException($"snapshot: deadline queue from {head} to {tail}");
        (_head, _tail) = (head, tail);
    }

    /// <summary>After <see cref="RestoreScalars"/>: the slots ever used (stale entries stay in the snapshot too).</summary>
    public void PrefaultForRestore(Prefaulter prefault)
    {
        int used = (int)Math.Min(_tail, Capacity);
        prefault.AddToWrite(_ids, used);
        prefault.AddToWrite(_dueUs, used);
    }

    public void RestoreArrays(SnapshotArrayReader arrays)
    {
        arrays.ReadInto<long>(_ids, "deadline ids");
        arrays.ReadInto<long>(_dueUs, "deadline times");
    }

    public void DropHead()
    {
        if (_head == _tail) throw new InvalidOperationException("deadline queue: empty");
        _head++;
    }
}
