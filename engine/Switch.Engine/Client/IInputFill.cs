using Switch.Engine.Events;

namespace Switch.Engine.Client;

/// <summary>Writes one input into a claimed slot, through one of <see cref="InputEvent"/>'s Prepare methods. A struct
/// implementing it is passed by reference and never boxed: a publish allocates nothing.</summary>
public interface IInputFill
{
    /// <param name="correlationId">The caller's id for the answer (0 for inputs nobody awaits).</param>
    void Fill(ref InputEvent slot, long correlationId);
}
