using System.Diagnostics;
using Switch.Grpc;
using Switch.Engine.Events;

namespace Switch.Host.Banks;

/// <summary>A bank request as the link queues it: the output event's fields the bank gets, inline (no objects).</summary>
internal struct QueuedRequest
{
    public long TransactionId;
    public long AmountFen;
    public long DeadlineUs;
    public BankOperation Operation;
    public int BankCode;
    public int Attempt;
    public Text32 Account;
}

/// <summary>
/// One endpoint's bounded queue of requests between the engine's output thread and the link's writer: a ring of structs,
/// nothing allocated per request. It starts small and doubles when full, up to its capacity (a queue that is never
/// deep costs little memory). The writer encodes a run of queued slots in place (<see cref="Peek"/>, then
/// <see cref="Release"/> once written): producers only write the free slots after them, and a doubling copies into a
/// new ring, leaving the old one as it was, so the run is the writer's alone until released. Producers never wait: a
/// full queue refuses. An enqueue never wakes the writer: the producer calls <see cref="WakeWriter"/> once it has queued
/// what it has (the output thread once per output batch), so an idle writer is woken once per batch, not per request,
/// and finds the batch's requests waiting to go in one message.
/// </summary>
internal sealed class LinkQueue
{
    /// <summary>Slots allocated at first; doubled as needed up to <see cref="Capacity"/>.</summary>
    public const int InitialSlots = 1_024;

    private QueuedRequest[] _slots;
    private readonly Lock _gate = new();
    private int _head;
    private int _count;
    private bool _writerIdle;

    public LinkQueue(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        _slots = new QueuedRequest[Math.Min(capacity, InitialSlots)];
    }

    /// <summary>Woken by <see cref="WakeWriter"/> for a writer that found the queue empty.</summary>
    public WakeSignal Arrived { get; } = new();

    public int Capacity { get; }

    public int Count
    {
        get { lock (_gate) return _count; }
    }

    /// <summary>False when full (the request is dropped: the engine resolves it by query). Never blocks for long: the
    /// gate is held only to copy one request in or to move the head. Does not wake the writer (<see cref="WakeWriter"/>).</summary>
    public bool TryEnqueue(in OutputEvent request)
    {
        lock (_gate)
        {
            if (_count == _slots.Length && !TryGrow()) return false;
            int tail = _head + _count;
            if (tail >= _slots.Length) tail -= _slots.Length;
            ref QueuedRequest slot = ref _slots[tail];
            slot.TransactionId = request.TransactionId;
            slot.AmountFen = request.AmountFen;
            slot.DeadlineUs = request.BankDeadlineUs;
            slot.Operation = request.Operation;
            slot.BankCode = request.BankCode;
            slot.Attempt = request.Attempt;
            slot.Account = request.Account;
            _count++;
        }
        return true;
    }

    /// <summary>Wakes the writer if it found the queue empty and requests have come since; else nothing (a busy writer
    /// comes back for them itself). Returns whether it woke it.</summary>
    public bool WakeWriter()
    {
        bool wake;
        lock (_gate)
        {
            wake = _writerIdle && _count > 0;
            if (wake) _writerIdle = false;
        }
        if (wake) Arrived.Wake();
        return wake;
    }

    /// <summary>Doubles the ring (under the gate), the queued requests first in the new one; false at capacity.</summary>
    private bool TryGrow()
    {
        if (_slots.Length == Capacity) return false;
        var grown = new QueuedRequest[Math.Min(Capacity, 2 * _slots.Length)];
        int first = Math.Min(_count, _slots.Length - _head);
        Array.Copy(_slots, _head, grown, 0, first);
        Array.Copy(_slots, 0, grown, first, _count - first);
        _slots = grown;
        _head = 0;
        return true;
    }

    /// <summary>The writer's next run: up to <paramref name="max"/> queued requests in <paramref name="slots"/> from
    /// <paramref name="start"/>, contiguous (a run that would wrap stops at the ring's end; the rest comes next). The
    /// writer reads that run only. 0 when the queue is empty: the next arrival then wakes <see cref="Arrived"/>.</summary>
    public int Peek(int max, out QueuedRequest[] slots, out int start)
    {
        Debug.Assert(max >= 1);
        lock (_gate)
        {
            slots = _slots;
            start = _head;
            int run = Math.Min(Math.Min(_count, max), _slots.Length - _head);
            if (run == 0) _writerIdle = true;
            return run;
        }
    }

    /// <summary>The writer is done with the first <paramref name="count"/> queued requests (written, or given up).</summary>
    public void Release(int count)
    {
        lock (_gate)
        {
            Debug.Assert(count >= 0 && count <= _count);
            _head += count;
            if (_head >= _slots.Length) _head -= _slots.Length;
            _count -= count;
        }
    }
}
