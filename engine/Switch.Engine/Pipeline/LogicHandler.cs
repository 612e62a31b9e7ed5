using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Ring;

namespace Switch.Engine.Pipeline;

/// <summary>Second consumer: the business logic, on its own thread, behind the journal.</summary>
internal sealed class LogicHandler(SwitchLogic logic) : IEventHandler<InputEvent>
{
    public long VoidSkipped { get; private set; }

    public void OnEvent(ref InputEvent evt, long sequence, bool endOfBatch)
    {
        if (evt.Kind == EventKind.Void)
        {
            VoidSkipped++; // never journaled: applying it would make live state differ from replayed state
            return;
        }
        logic.Apply(ref evt);
    }
}
