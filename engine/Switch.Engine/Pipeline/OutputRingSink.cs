using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Ring;

namespace Switch.Engine.Pipeline;

/// <summary>The logic's outputs go into the output ring, one claimed slot at a time; a full ring back-pressures.</summary>
internal sealed class OutputRingSink(RingBuffer<OutputEvent> ring) : IOutputSink
{
    private long _pending = -1;

    public ref OutputEvent Begin()
    {
        if (_pending >= 0) throw new InvalidOperationException("output sink: Begin twice without End");
        _pending = ring.Next();
        ref OutputEvent slot = ref ring[_pending];
        slot.Reset();
        return ref slot;
    }

    public void End()
    {
        if (_pending < 0) throw new InvalidOperationException("output sink: End without Begin");
        ring.Publish(_pending);
        _pending = -1;
    }
}
