using System.Threading.Tasks.Sources;

namespace Switch.Host.Banks;

/// <summary>
/// Wakes one waiting task, from any thread, allocating nothing: an auto-reset event for a single waiter. A Set with
/// nobody waiting is kept for the next wait (one, however many Sets). The waiter resumes on the thread pool, never
/// inline on the thread that set it (the engine's output thread must not run a link's writer).
/// </summary>
internal sealed class WakeSignal : IValueTaskSource
{
    private const int Idle = 0, Set = 1, Waiting = 2;
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
    private int _state;

    /// <summary>Completes at the next <see cref="Wake"/>, or at once if one came since the last wait. One waiter at a time;
    /// await it exactly once.</summary>
    public ValueTask WaitAsync()
    {
        if (Interlocked.CompareExchange(ref _state, Idle, Set) == Set) return default;
        _core.Reset();
        if (Interlocked.CompareExchange(ref _state, Waiting, Idle) != Idle)
        {
            Volatile.Write(ref _state, Idle); // Set in between: taken now.
            return default;
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
                _core.SetResult(true);
                return;
            }
        }
    }

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
