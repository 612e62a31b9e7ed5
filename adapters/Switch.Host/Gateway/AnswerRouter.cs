using System.Collections.Concurrent;
using Switch.Engine.Events;

namespace Switch.Host.Gateway;

/// <summary>Whoever waits for the engine's answers to requests it published: a unary call or a stream.</summary>
public interface IAnswerTarget
{
    /// <summary>Called on the engine's output thread: must not block.</summary>
    void OnAnswer(in OutputEvent answer);
}

/// <summary>
/// Routes each answer to the call that published the request: the correlation id stamped on the event names
/// the target. Ids are never reused, so a late answer for a finished call finds nothing and is dropped.
/// </summary>
public sealed class AnswerRouter
{
    private readonly ConcurrentDictionary<long, IAnswerTarget> _targets = new();
    private long _lastId;

    public int Count => _targets.Count;

    public long Register(IAnswerTarget target)
    {
        long id = Interlocked.Increment(ref _lastId);
        if (!_targets.TryAdd(id, target)) throw new InvalidOperationException("answer router: id reused");
        return id;
    }

    public void Unregister(long id) => _targets.TryRemove(id, out _);

    public void Route(in OutputEvent answer)
    {
        if (_targets.TryGetValue(answer.CorrelationId, out IAnswerTarget? target))
        {
            target.OnAnswer(answer);
        }
    }
}

/// <summary>A unary call: completes with the single answer.</summary>
public sealed class UnaryAnswer : IAnswerTarget
{
    private readonly TaskCompletionSource<OutputEvent> _answer = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public Task<OutputEvent> Task => _answer.Task;
    public void OnAnswer(in OutputEvent answer) => _answer.TrySetResult(answer);
}
