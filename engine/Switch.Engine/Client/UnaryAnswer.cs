using Switch.Engine.Events;

namespace Switch.Engine.Client;

/// <summary>A unary call: completes with the single answer.</summary>
public sealed class UnaryAnswer : IAnswerTarget
{
    private readonly TaskCompletionSource<OutputEvent> _answer = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public Task<OutputEvent> Task => _answer.Task;
    public void OnAnswer(in OutputEvent answer) => _answer.TrySetResult(answer);
}
