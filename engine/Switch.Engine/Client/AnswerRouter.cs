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

    /// <summary>Hands <paramref name="answer"/> to its target at once (a unary call's wait goes to the pool on its own).</summary>
    public void Route(in OutputEvent answer)
    {
        if (_targets.TryGetValue(answer.CorrelationId, out IAnswerTarget? target))
        {
            target.OnAnswer(answer);
        }
    }

    private readonly HeldAnswers _held = new();

    /// <summary>The output thread's routing: as <see cref="Route"/>, except that a unary call's answer is held until
    /// <see cref="HandOver"/>, which sends the calls answered in between to the pool together, in work items of up to
    /// <see cref="HeldAnswers.MaxPerWorkItem"/>: one queued item and at most one thread woken for them, not one each.
    /// The output thread calls <see cref="HandOver"/> at the end of each batch (and within a long one).</summary>
    public void RouteHeld(in OutputEvent answer)
    {
        if (!_targets.TryGetValue(answer.CorrelationId, out IAnswerTarget? target)) return;
        if (target is UnaryAnswer unary)
        {
            if (unary.Take(answer)) _held.Add(unary);
        }
        else
        {
            target.OnAnswer(answer);
        }
    }

    /// <summary>Output thread: the answers held by <see cref="RouteHeld"/> go to the pool now.</summary>
    public void HandOver() => _held.HandOver();

    /// <summary>Unary answers the output thread has taken and not yet handed to the pool (a figure for tests).</summary>
    public int Held => _held.Count;
}

/// <summary>The unary answers taken during one output batch (output thread only), handed to the thread pool in
/// <see cref="CompletionBatch"/> work items; those are reused.</summary>
internal sealed class HeldAnswers
{
    /// <summary>Calls one work item completes at most, one after another: a larger batch is spread over several items,
    /// so a long output batch's answers are not all written by one thread while others idle.</summary>
    public const int MaxPerWorkItem = 16;

    /// <summary>Work items kept for reuse: more than are ever queued at once at the gateway's in-flight limits.</summary>
    private const int MaxRetained = 1_024;

    private readonly ConcurrentQueue<CompletionBatch> _free = new();
    private int _freeCount;
    private CompletionBatch? _filling;

    public int Count => _filling?.Count ?? 0;

    public void Add(UnaryAnswer answer)
    {
        CompletionBatch batch = _filling ??= Rent();
        if (batch.Add(answer) == MaxPerWorkItem) HandOver();
    }

    public void HandOver()
    {
        if (_filling is not { } batch) return;
        _filling = null;
        ThreadPool.UnsafeQueueUserWorkItem(batch, preferLocal: false);
    }

    private CompletionBatch Rent()
    {
        if (_free.TryDequeue(out CompletionBatch? batch))
        {
            Interlocked.Decrement(ref _freeCount);
            return batch;
        }
        return new CompletionBatch(this);
    }

    private void Return(CompletionBatch batch)
    {
        if (Interlocked.Increment(ref _freeCount) > MaxRetained)
        {
            Interlocked.Decrement(ref _freeCount);
            return;
        }
        _free.Enqueue(batch);
    }

    /// <summary>Completes its calls in the order they were answered, on the pool thread that runs it.</summary>
    private sealed class CompletionBatch(HeldAnswers owner) : IThreadPoolWorkItem
    {
        private readonly UnaryAnswer?[] _answers = new UnaryAnswer?[MaxPerWorkItem];
        public int Count { get; private set; }

        public int Add(UnaryAnswer answer)
        {
            _answers[Count] = answer;
            return ++Count;
        }

        public void Execute()
        {
            int count = Count;
            for (int i = 0; i < count; i++)
            {
                UnaryAnswer answer = _answers[i]!;
                _answers[i] = null;
                answer.Complete(); // The continuation writes the response; exceptions stay in the caller's task.
            }
            Count = 0;
            owner.Return(this);
        }
    }
}
