using System.Threading.Tasks.Sources;

namespace Switch.Grpc;

/// <summary>
/// Wakes one waiting task, from any thread, allocating nothing per wait: an auto-reset event for a single waiter. A Wake
/// with nobody waiting is kept for the next wait (one, however many Wakes). Where the waiter resumes is the owner's
/// choice: on the thread pool (<paramref name="continueInline"/> false: the waker must not run the waiter's work, as the
/// engine's output thread must not run a bank link's writer), or inline on the waking thread (true: the waiter's next
/// pass runs where its work came from, instead of waking a pool thread for it; the waker must not hold a lock the
/// waiter takes, and must be able to afford the waiter's pass).
/// A wait may be bounded (<see cref="WaitAsync"/>): a timer, made on first use and reused, wakes it then; a timer firing
/// after an earlier wait ended counts as a Wake (one spurious pass at most).
/// </summary>
public sealed class WakeSignal(bool continueInline = false) : IValueTaskSource, IDisposable
{
    private const int Idle = 0, Set = 1, Waiting = 2;
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = !continueInline };
    private int _state;
    private Timer? _timer;

    /// <summary>Completes at the next <see cref="Wake"/>, or at once if one came since the last wait, or after
    /// <paramref name="timeoutMs"/> (Timeout.Infinite: no bound). One waiter at a time; await it exactly once.</summary>
    public ValueTask WaitAsync(int timeoutMs = Timeout.Infinite)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(timeoutMs, Timeout.Infinite);
        if (Interlocked.CompareExchange(ref _state, Idle, Set) == Set) return default;
        _core.Reset();
        if (Interlocked.CompareExchange(ref _state, Waiting, Idle) != Idle)
        {
            Volatile.Write(ref _state, Idle); // Set in between: taken now.
            return default;
        }
        if (timeoutMs != Timeout.Infinite)
        {
            (_timer ??= new Timer(static s => ((WakeSignal)s!).Wake(), this, Timeout.Infinite, Timeout.Infinite)).Change(timeoutMs, Timeout.Infinite);
        }
        return new ValueTask(this, _core.Version);
    }

    public void Wake()
    {
        while (true)
        {
            int state = Volatile.Read(ref _state);
            if (state == Set) return;
            if (state == Idle && Interlocked.CompareExchange(ref _state, Set, Idle) == Idle) return;
            if (state == Waiting && Interlocked.CompareExchange(ref _state, Idle, Waiting) == Waiting)
            {
                _core.SetResult(true); // inline or on the pool, as constructed
                return;
            }
        }
    }

    /// <summary>Stops the timer (a wait under way is no longer bounded).</summary>
    public void Dispose() => _timer?.Dispose();

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
