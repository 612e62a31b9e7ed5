using Switch.Engine.Events;

namespace Switch.Engine.Client;

/// <summary>Writes one input into a claimed slot, through one of <see cref="InputEvent"/>'s Prepare methods. A struct
/// implementing it is passed by reference and never boxed: a publish allocates nothing.</summary>
public interface IInputFill
{
    /// <param name="correlationId">The caller's id for the answer (0 for inputs nobody awaits).</param>
    void Fill(ref InputEvent slot, long correlationId);
}

/// <summary>Writes the inputs of a batch (<see cref="EngineClient.PublishBatch"/>) into claimed slots, input i into the i-th;
/// as with <see cref="IInputFill"/>, a struct passed by reference and never boxed.</summary>
public interface IInputBatchFill
{
    /// <param name="index">The input's place in the batch, from 0.</param>
    void Fill(ref InputEvent slot, int index);
}
