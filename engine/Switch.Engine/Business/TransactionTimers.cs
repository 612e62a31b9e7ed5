using Switch.Engine.Snapshots;
namespace Switch.Engine.Business;

/// <summary>
/// The transactions' timers: bank deadlines (first in first out, see <see cref="DeadlineQueue"/>) and follow-ups
/// (queries and reversals of unknown transactions, by due time then id: varied delays, few entries). A transaction
/// has one live timer, the one whose due time it holds in <see cref="Transaction.TimerDueUs"/>; older entries are
/// stale and skipped when they come due. Owned by <see cref="SwitchLogic"/>, on its thread.
/// </summary>
public sealed class TransactionTimers
{
    private readonly TransactionTable _transactions;
    private readonly DeadlineQueue _deadlines;
    private readonly PriorityQueue<long, (long DueUs, long Id)> _followUps;
    /// <summary>Where a snapshot sorts the follow-ups, kept across snapshots and made as large as the queue starts: grown
    /// (in a pause) only when there are more follow-ups than that and than any snapshot before saw.</summary>
    private (long DueUs, long Id)[] _followUpsSorted;
    /// <summary>The follow-ups there is room for at start (more grow the queue and the snapshot's sorting room).</summary>
    private const int InitialFollowUps = 4096;

    public TransactionTimers(TransactionTable transactions, int capacity)
    {
        _transactions = transactions;
        _deadlines = new DeadlineQueue(capacity);
        _followUps = new PriorityQueue<long, (long, long)>(Math.Min(capacity, InitialFollowUps));
        _followUpsSorted = new (long, long)[Math.Min(capacity, InitialFollowUps)];
    }

    /// <summary>When the oldest deadline or the earliest follow-up is due, live or stale (<see cref="long.MaxValue"/>: none).</summary>
    public long NextDueUs
    {
        get
        {
            long dueUs = _deadlines.TryPeek(out _, out long deadlineUs) ? deadlineUs : long.MaxValue;
            return _followUps.TryPeek(out _, out (long DueUs, long Id) due) ? Math.Min(dueUs, due.DueUs) : dueUs;
        }
    }

    /// <summary>Entries queued, live or stale.</summary>
    public int Count => _deadlines.Count + _followUps.Count;

    public void ArmDeadline(ref Transaction tx, long dueUs)
    {
        // Full only when a whole table of dispatches came within one deadline (or with no tick): the oldest entry is
        // then mostly stale (answered, evicted) and dropped. If it is still its transaction's live deadline (one
        // parked while its bank is slow), it moves to the follow-up queue, whose timers fire the same way.
        if (_deadlines.Count == _deadlines.Capacity)
        {
            _deadlines.TryPeek(out long oldestId, out long oldestDueUs);
            _deadlines.DropHead();
            if (IsLive(oldestId, oldestDueUs, out _))
            {
                _followUps.Enqueue(oldestId, (oldestDueUs, oldestId));
            }
        }
        tx.TimerDueUs = dueUs;
        _deadlines.Enqueue(tx.Id, dueUs);
    }

    public void ArmFollowUp(ref Transaction tx, long dueUs)
    {
        tx.TimerDueUs = dueUs;
        _followUps.Enqueue(tx.Id, (dueUs, tx.Id));
    }

    /// <summary>The next deadline due by <paramref name="nowUs"/> that is still live, taken (its timer disarmed).</summary>
    public bool TryTakeDueDeadline(long nowUs, out int index)
    {
        while (_deadlines.TryDequeueDue(nowUs, out long id, out long dueUs))
        {
            if (TryTake(id, dueUs, out index)) return true;
        }
        index = -1;
        return false;
    }

    /// <summary>The next follow-up due by <paramref name="nowUs"/> that is still live, taken. A deadline that overflowed
    /// the deadline queue comes out here too (its transaction still dispatched).</summary>
    public bool TryTakeDueFollowUp(long nowUs, out int index)
    {
        while (_followUps.TryPeek(out long id, out (long DueUs, long Id) due) && due.DueUs <= nowUs)
        {
            _followUps.Dequeue();
            if (TryTake(id, due.DueUs, out index)) return true;
        }
        index = -1;
        return false;
    }

    /// <summary>True when the timer is still the transaction's live one (not answered, not re-armed since); disarms it.</summary>
    private bool TryTake(long id, long dueUs, out int index)
    {
        if (!IsLive(id, dueUs, out index)) return false;
        _transactions[index].TimerDueUs = 0;
        return true;
    }

    private bool IsLive(long id, long dueUs, out int index) =>
        _transactions.TryFind(id, out index) && !_transactions[index].IsFinal && _transactions[index].TimerDueUs == dueUs;

    /// <summary>Snapshot, on the logic thread: the follow-ups (few) written now in (due, id) order, so the same state
    /// writes the same bytes whatever order the priority queue keeps them in; the deadlines copy-on-write.</summary>
    public void Save(StateWriter w)
    {
        w.Section("timers");
        if (_followUpsSorted.Length < _followUps.Count)
            _followUpsSorted = new (long, long)[(int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)_followUps.Count)];
        int n = 0;
        foreach ((long _, (long DueUs, long Id) due) in _followUps.UnorderedItems) _followUpsSorted[n++] = due;
        Span<(long DueUs, long Id)> followUps = _followUpsSorted.AsSpan(0, n);
        followUps.Sort();
        w.Int(n);
        foreach ((long dueUs, long id) in followUps)
        {
            w.Long(dueUs);
            w.Long(id);
        }
        _deadlines.Save(w);
    }

    /// <summary>After <see cref="Save"/>, before any change: the deadline queue's arrays as they are now.</summary>
    public ICapturedArray[] BeginCapture() => _deadlines.BeginCapture();

    public void EndCapture() => _deadlines.EndCapture();

    /// <summary>See <see cref="DeadlineQueue.FillAsideReserve"/>.</summary>
    public long FillAsideReserve() => _deadlines.FillAsideReserve();

    public void RestoreScalars(ref StateReader r)
    {
        r.Section("timers");
        int n = r.Int();
        if (n < 0 || n > _transactions.Capacity + _transactions.ParkedCapacity + _deadlines.Capacity)
            throw new InvalidDataException($"snapshot: {n} follow-ups");
        _followUps.Clear();
        for (int i = 0; i < n; i++)
        {
            long dueUs = r.Long();
            long id = r.Long();
            _followUps.Enqueue(id, (dueUs, id));
        }
        _deadlines.RestoreScalars(ref r);
    }

    public void PrefaultForRestore(Prefaulter prefault) => _deadlines.PrefaultForRestore(prefault);

    public void RestoreArrays(SnapshotArrayReader arrays) => _deadlines.RestoreArrays(arrays);

    /// <summary>For the invariant checks: adds one per live entry to its transaction's table slot.</summary>
    public void CountLive(Span<int> perSlot)
    {
        for (int i = 0; i < _deadlines.Count; i++)
        {
            (long id, long dueUs) = _deadlines.At(i);
            if (IsLive(id, dueUs, out int index)) perSlot[index]++;
        }
        foreach ((long id, (long DueUs, long Id) due) in _followUps.UnorderedItems)
        {
            if (IsLive(id, due.DueUs, out int index)) perSlot[index]++;
        }
    }
}
