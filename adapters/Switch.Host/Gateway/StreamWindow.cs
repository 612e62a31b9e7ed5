using System.Diagnostics;
using System.Threading.Tasks.Sources;

namespace Switch.Host.Gateway;

/// <summary>
/// A stream's window: at most <see cref="Capacity"/> requests outstanding. Its one reader takes places for a whole message
/// at once (as many as are free, up to what it asks), waiting only when none is; its writer gives them back per write.
/// A semaphore would take one place per request, a lock each. The wait allocates nothing: the window is its own (reused)
/// wait source, since there is one taker.
/// </summary>
public sealed class StreamWindow : IValueTaskSource<int>
{
    private readonly object _lock = new();
    private int _free;
    /// <summary>The waiting taker's wish (0: none waits): set and cleared under the lock.</summary>
    private int _waitingFor;
    private ManualResetValueTaskSourceCore<int> _wait = new() { RunContinuationsAsynchronously = true };
    private CancellationTokenRegistration _cancelRegistration;

    public StreamWindow(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        _free = capacity;
    }

    public int Capacity { get; }

    /// <summary>Places not taken (a figure for tests).</summary>
    public int Free
    {
        get { lock (_lock) return _free; }
    }

    /// <summary>Takes as many places as are free, up to <paramref name="max"/> (at least one: it waits for one when none is).
    /// One taker at a time.</summary>
    public ValueTask<int> TakeAsync(int max, CancellationToken cancel)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        lock (_lock)
        {
            if (_waitingFor != 0) throw new InvalidOperationException("stream window: one taker at a time");
            if (_free > 0)
            {
                int taken = Math.Min(_free, max);
                _free -= taken;
                return new ValueTask<int>(taken);
            }
            cancel.ThrowIfCancellationRequested();
            _wait.Reset();
            _waitingFor = max;
        }
        // Registered outside the lock: a token cancelled already runs the callback at once, and it takes the lock.
        _cancelRegistration = cancel.UnsafeRegister(static (state, token) => ((StreamWindow)state!).Cancel(token), this);
        return new ValueTask<int>(this, _wait.Version);
    }

    /// <summary>Gives back <paramref name="count"/> places taken; a waiting taker gets them at once.</summary>
    public void Give(int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        int handed;
        lock (_lock)
        {
            if (_free + count > Capacity) throw new InvalidOperationException("stream window: more given back than taken");
            _free += count;
            Debug.Assert(_waitingFor == 0 || _free == count, "a taker waits only while no place is free");
            if (_waitingFor == 0) return;
            handed = Math.Min(_free, _waitingFor);
            _free -= handed;
            _waitingFor = 0;
        }
        _cancelRegistration.Unregister(); // not Dispose: that would wait for a callback running now, which finds no waiter
        _wait.SetResult(handed);
    }

    private void Cancel(CancellationToken token)
    {
        lock (_lock)
        {
            if (_waitingFor == 0) return; // places came first
            _waitingFor = 0;
        }
        _wait.SetException(new OperationCanceledException(token));
    }

    int IValueTaskSource<int>.GetResult(short token) => _wait.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<int>.GetStatus(short token) => _wait.GetStatus(token);

    void IValueTaskSource<int>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _wait.OnCompleted(continuation, state, token, flags);
}
