using Switch.Engine.Events;
using Switch.Ring;

namespace Switch.Engine.Replication;

/// <summary>A following engine's output handler: the views handler while it follows, the live one once promoted. Each
/// output goes to exactly one of them (the target is read once per output); the swap happens with the engine idle.</summary>
internal sealed class SwitchableOutputHandler(IEventHandler<OutputEvent> first) : IEventHandler<OutputEvent>
{
    private volatile IEventHandler<OutputEvent> _target = first;

    public void SwitchTo(IEventHandler<OutputEvent> target) => _target = target;

    public void OnEvent(ref OutputEvent evt, long sequence, bool endOfBatch) => _target.OnEvent(ref evt, sequence, endOfBatch);
}
