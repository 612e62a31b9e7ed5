using System.Threading.Tasks.Sources;
using Switch.Engine.Events;

namespace Switch.Engine.Client;

/// <summary>
/// A unary call's wait for its one answer, reused call after call (<see cref="UnaryAnswerPool"/>): no completion
/// object, task or state machine is allocated per call on the answered path. The output thread hands the answer over
/// through the router's <see cref="UnaryCompletions"/>: the calls answered in one output batch are completed on the
/// thread pool together, by a few work items rather than one each (each work item queued can wake a sleeping pool
/// thread). The caller's work after the answer (mapping, writing the response through Kestrel) must never run on the
/// engine's one output thread.
/// <para>Ids are never reused, so an answer or a cancellation meant for an earlier use of this object finds another
/// id awaited and is ignored: the output thread may still hold this object from the router just as its call ended.</para>
/// </summary>
public sealed class UnaryAnswer : IValueTaskSource<OutputEvent>, IAnswerTarget, IThreadPoolWorkItem
{
    private readonly UnaryAnswerPool _pool;
    private ManualResetValueTaskSourceCore<OutputEvent> _core; // completed on a pool thread (Execute): continuations inline there
    /// <summary>The correlation id awaited; 0 once settled (answered or canceled) or not armed.</summary>
    private long _awaitedId;
    private long _registeredId;
    private OutputEvent _answer;
    private Exception? _error;
    private CancellationTokenRegistration _cancellation;

    internal UnaryAnswer(UnaryAnswerPool pool) => _pool = pool;

    /// <summary>The wait of the current use.</summary>
    internal ValueTask<OutputEvent> Wait => new(this, _core.Version);

    /// <summary>Awaits <paramref name="correlationId"/> (registered to this object) until answered or
    /// <paramref name="cancellation"/> fires. Before the request is published: its answer may come at once.</summary>
    internal void Arm(long correlationId, CancellationToken cancellation)
    {
        _registeredId = correlationId;
        Volatile.Write(ref _awaitedId, correlationId);
        if (cancellation.CanBeCanceled)
        {
            _cancellation = cancellation.UnsafeRegister(static (state, token) => ((UnaryAnswer)state!).Settle(new OperationCanceledException(token)), this);
        }
    }

    /// <summary>On the output thread: must not block. The wait ends when the router hands its output batch's answers over
    /// (<see cref="AnswerRouter.Flush"/>).</summary>
    public void OnAnswer(in OutputEvent answer)
    {
        if (Interlocked.CompareExchange(ref _awaitedId, 0, answer.CorrelationId) != answer.CorrelationId) return;
        _answer = answer;
        _pool.Router.Defer(this);
    }

    /// <summary>Ends the wait with <paramref name="error"/> (canceled, or the publish failed) unless it is settled already:
    /// on the thread pool (a cancellation's callback runs on the thread that cancels).</summary>
    internal void Settle(Exception error)
    {
        long id = Volatile.Read(ref _awaitedId);
        if (id == 0 || Interlocked.CompareExchange(ref _awaitedId, 0, id) != id) return;
        _error = error;
        ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
    }

    void IThreadPoolWorkItem.Execute() => Complete();

    /// <summary>Ends the settled wait: the caller's continuation runs here, inline. On a pool thread, never the output thread.
    /// This use may be recycled (and rented again) before it returns: nothing of it is touched after.</summary>
    internal void Complete()
    {
        if (_error is { } error) _core.SetException(error);
        else _core.SetResult(_answer);
    }

    public OutputEvent GetResult(short token)
    {
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            Recycle();
        }
    }

    /// <summary>After the one GetResult: no callback can reach this use any more, then back to the pool.</summary>
    private void Recycle()
    {
        _cancellation.Dispose(); // waits for a cancellation callback under way
        _cancellation = default;
        _pool.Router.Unregister(_registeredId);
        _registeredId = 0;
        _error = null;
        _core.Reset();
        _pool.Return(this);
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}

/// <summary>The <see cref="UnaryAnswer"/>s of one engine client: at most <see cref="MaxRetained"/> kept for reuse
/// (a burst of more calls allocates the rest, which the collector takes back afterwards).</summary>
public sealed class UnaryAnswerPool(AnswerRouter router)
{
    /// <summary>Unary calls in flight at once that reuse their answer object: more than the gateway's usual in-flight limits.</summary>
    public const int MaxRetained = 4_096;

    private readonly FreeList<UnaryAnswer> _free = new(MaxRetained);

    internal AnswerRouter Router => router;

    /// <summary>Answer objects kept for reuse now.</summary>
    public int Retained => _free.Count;

    internal UnaryAnswer Rent() => _free.TryTake(out UnaryAnswer? answer) ? answer : new UnaryAnswer(this);

    internal void Return(UnaryAnswer answer) => _free.Give(answer);
}
