using System.Diagnostics;
using System.Numerics;
using System.Threading.Tasks.Sources;

namespace Switch.Host.Gateway;

/// <summary>
/// A bounded queue from one producer thread to one async consumer that hands items over in batches: the producer adds
/// items unseen (no lock, no wake), then <see cref="Publish"/> makes all of them visible at once and wakes the consumer
/// only if it waits. A channel wakes its reader per item written while it waits; here a batch of answers costs one wake.
/// The consumer's wait is the handoff itself (one waiter, reused): nothing allocated per item or per wait.
/// </summary>
public sealed class BatchHandoff<T> : IValueTaskSource<bool>
{
    private readonly T[] _items;
    private readonly int _mask;
    private readonly object _lock = new();
    /// <summary>The producer's: items added, published or not.</summary>
    private long _added;
    /// <summary>Items the consumer may take: written under the lock, read without it.</summary>
    private long _published;
    /// <summary>The consumer's: items taken (the producer reads it to find room).</summary>
    private long _taken;
    private bool _completed;
    private bool _waiting;
    private ManualResetValueTaskSourceCore<bool> _wait = new() { RunContinuationsAsynchronously = true };

    /// <param name="capacity">The most items ever outstanding (added, not yet taken): the owner bounds it.</param>
    public BatchHandoff(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        _items = new T[(int)BitOperations.RoundUpToPowerOf2((uint)capacity)];
        _mask = _items.Length - 1;
    }

    public int Capacity { get; }

    /// <summary>Producer: adds an item, unseen until <see cref="Publish"/>. False once completed, or (the owner's bound
    /// broken) full: the item is dropped.</summary>
    public bool TryAdd(in T item)
    {
        if (Volatile.Read(ref _completed)) return false;
        if (_added - Volatile.Read(ref _taken) >= Capacity)
        {
            // Not thrown: the producer is the engine's output thread, which an exception would stop for every caller.
            Debug.Fail($"batch handoff: more than its capacity of {Capacity} outstanding");
            return false;
        }
        _items[(int)(_added & _mask)] = item;
        _added++;
        return true;
    }

    /// <summary>Producer: makes every item added visible and wakes a waiting consumer; returns how many it published (0
    /// once completed: those added since are dropped).</summary>
    public int Publish()
    {
        bool wake;
        int published;
        lock (_lock)
        {
            if (_completed)
            {
                _added = _published;
                return 0;
            }
            published = (int)(_added - _published);
            if (published == 0) return 0;
            Volatile.Write(ref _published, _added);
            wake = _waiting;
            _waiting = false;
        }
        if (wake) _wait.SetResult(true);
        return published;
    }

    /// <summary>Consumer: copies published items into <paramref name="into"/>, oldest first; returns how many.</summary>
    public int Take(Span<T> into)
    {
        long published = Volatile.Read(ref _published);
        int count = (int)Math.Min(into.Length, published - _taken);
        for (int i = 0; i < count; i++)
        {
            ref T slot = ref _items[(int)((_taken + i) & _mask)];
            into[i] = slot;
            slot = default!; // no reference kept for the collector
        }
        Volatile.Write(ref _taken, _taken + count);
        return count;
    }

    /// <summary>Consumer: takes every published item and drops it; returns how many.</summary>
    public int Drop()
    {
        long published = Volatile.Read(ref _published);
        int count = (int)(published - _taken);
        for (long i = _taken; i < published; i++) _items[(int)(i & _mask)] = default!;
        Volatile.Write(ref _taken, published);
        return count;
    }

    /// <summary>Consumer: true when there are published items to take (at once if there are), false once completed with
    /// none left. One waiter at a time.</summary>
    public ValueTask<bool> WaitAsync()
    {
        lock (_lock)
        {
            Debug.Assert(!_waiting, "one waiter at a time");
            if (_published > _taken) return new ValueTask<bool>(true);
            if (_completed) return new ValueTask<bool>(false);
            _wait.Reset();
            _waiting = true;
            return new ValueTask<bool>(this, _wait.Version);
        }
    }

    /// <summary>Any thread: nothing more is published; the consumer takes what was and then finds the end.</summary>
    public void Complete()
    {
        bool wake;
        lock (_lock)
        {
            if (_completed) return;
            Volatile.Write(ref _completed, true);
            wake = _waiting;
            _waiting = false;
        }
        if (wake) _wait.SetResult(false); // it waited with nothing to take, and nothing more comes
    }

    bool IValueTaskSource<bool>.GetResult(short token) => _wait.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _wait.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _wait.OnCompleted(continuation, state, token, flags);
}
