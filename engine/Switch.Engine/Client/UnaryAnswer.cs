using Switch.Engine.Events;

namespace Switch.Engine.Client;

/// <summary>A unary call: completes with the single answer, or canceled with the caller's token. One object a call (the
/// completion source is the target). Its continuation goes to the thread pool: the caller's work after the answer
/// (mapping, writing the response through Kestrel) must never run on the engine's one output thread.</summary>
public sealed class UnaryAnswer() : TaskCompletionSource<OutputEvent>(TaskCreationOptions.RunContinuationsAsynchronously), IAnswerTarget
{
    public void OnAnswer(in OutputEvent answer) => TrySetResult(answer);

    /// <summary>Cancels the wait when <paramref name="cancellation"/> fires (dispose the registration once answered).</summary>
    public CancellationTokenRegistration CancelWith(CancellationToken cancellation) =>
        cancellation.UnsafeRegister(static (state, token) => ((UnaryAnswer)state!).TrySetCanceled(token), this);
}
