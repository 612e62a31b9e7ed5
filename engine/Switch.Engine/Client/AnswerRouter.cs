using System.Collections.Concurrent;
using Switch.Engine.Events;

namespace Switch.Engine.Client;

/// <summary>Whoever waits for the engine's answers to requests it published: a unary call or a stream.</summary>
public interface IAnswerTarget
{
    /// <summary>Called on the engine's output thread: must not block.</summary>
    void OnAnswer(in OutputEvent answer);
}

/// <summary>
/// A target that takes its answers in batches (a stream): its answers are made visible to its caller by
/// <see cref="Flush"/>, called on the output thread once the output batch that routed them ends (or after
/// <see cref="AnswerRouter.MaxAnswersPerFlush"/> answers within one), so a batch of answers costs its caller one wake-up.
/// </summary>
public interface IBatchedAnswerTarget : IAnswerTarget
{
    /// <summary>The router's mark: routed answers since its last flush. Touched on the output thread only.</summary>
    bool AwaitsFlush { get; set; }

    /// <summary>Called on the engine's output thread after answers were routed to it: must not block.</summary>
    void Flush();
}

/// <summary>
/// Routes each answer to the call that published the request: the correlation id stamped on the event names
/// the target. Ids are never reused, so a late answer for a finished call finds nothing and is dropped; across
/// restarts too (<see cref="ContinueAfter"/>): a transaction recovered from the journal answers to its old id.
/// </summary>
public sealed class AnswerRouter
{
    private readonly ConcurrentDictionary<long, IAnswerTarget> _targets = new();
    private long _lastId;

    public int Count => _targets.Count;

    /// <summary>
    /// Numbers this life's callers after <paramref name="lastId"/>, the highest id in the journal. Without it a
    /// transaction recovered after a crash, resolved in this life, would answer to whichever new caller (any
    /// institution) happened to get its old id. Called before the first <see cref="Register"/>: once at start, and
    /// again by a standby taking office (its ports registered no caller), with the primary's highest id; never lower.
    /// </summary>
    public void ContinueAfter(long lastId)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(lastId);
        long current = Volatile.Read(ref _lastId);
        if (current != _continuedAt || lastId < current || Interlocked.CompareExchange(ref _lastId, lastId, current) != current)
        {
            throw new InvalidOperationException("answer router: ids continue after the journal's only before the first registration, and never go back");
        }
        _continuedAt = lastId;
    }

    /// <summary>Where <see cref="ContinueAfter"/> last left the ids: a registration since moves them past it.</summary>
    private long _continuedAt;

    public long Register(IAnswerTarget target)
    {
        long id = Interlocked.Increment(ref _lastId);
        if (!_targets.TryAdd(id, target)) throw new InvalidOperationException("answer router: id reused");
        return id;
    }

    public void Unregister(long id) => _targets.TryRemove(id, out _);

    /// <summary>Answers routed at most between two flushes: bounds how long an answer waits for its flush when the output
    /// thread's batch is long.</summary>
    public const int MaxAnswersPerFlush = 512;

    /// <summary>The unary calls answered since the last flush (see <see cref="UnaryCompletions"/>): the output thread's only.</summary>
    private readonly UnaryCompletionsPool _completionsPool = new(MaxAnswersPerFlush);
    private UnaryCompletions? _completions;

    /// <summary>Work items queued to complete unary calls so far (read after the output thread's flushes: for tests).</summary>
    internal long UnaryWorkItemsQueued => _completionsPool.WorkItemsQueued;

    /// <summary>On the output thread, from a unary call's <see cref="UnaryAnswer.OnAnswer"/>: completed at the next flush.</summary>
    internal void Defer(UnaryAnswer call) => (_completions ??= _completionsPool.Rent()).Add(call);

    /// <summary>Batched targets routed answers since the last flush: the output thread's only; grows to the most streams
    /// answered within one batch, then allocates no more.</summary>
    private readonly List<IBatchedAnswerTarget> _awaitingFlush = new();
    private int _routedSinceFlush;

    /// <summary>On the engine's output thread (answers are routed there and nowhere else). The caller calls
    /// <see cref="Flush"/> at the end of its batch: a target sees its answers then.</summary>
    public void Route(in OutputEvent answer)
    {
        if (!_targets.TryGetValue(answer.CorrelationId, out IAnswerTarget? target)) return;
        target.OnAnswer(answer);
        if (target is IBatchedAnswerTarget { AwaitsFlush: false } batched)
        {
            batched.AwaitsFlush = true;
            _awaitingFlush.Add(batched);
        }
        if (++_routedSinceFlush >= MaxAnswersPerFlush) Flush();
    }

    /// <summary>On the engine's output thread at the end of each batch: the batched targets answered since the last flush
    /// make their answers visible, and the unary calls answered are handed to the thread pool together.</summary>
    public void Flush()
    {
        foreach (IBatchedAnswerTarget target in _awaitingFlush)
        {
            target.AwaitsFlush = false;
            target.Flush();
        }
        _awaitingFlush.Clear();
        if (_completions is { Count: > 0 } completions)
        {
            _completions = null;
            completions.Dispatch();
        }
        _routedSinceFlush = 0;
    }
}
