using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Ring;

namespace Switch.Engine.Pipeline;

/// <summary>
/// The logic's outputs go into the output ring, one claimed slot at a time; a full ring back-pressures. Each output is
/// visible at once to an output thread that is awake, but one that sleeps is woken once per logic batch
/// (<see cref="Flush"/>), not per output: a wake costs the logic a lock and a futex call and the output thread a context
/// switch, and the output thread, faster than the logic, fell asleep after nearly every output.
/// </summary>
internal sealed class OutputRingSink(RingBuffer<OutputEvent> ring) : IOutputSink
{
    /// <summary>Outputs published without a wake before one is sent anyway: bounds how long a long logic batch keeps its
    /// first answers from a sleeping output thread (about a millisecond of logic work).</summary>
    internal const int MaxUnsignalledOutputs = 512;

    private long _pending = -1;
    private int _unsignalled;

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
        ring.PublishDeferred(_pending, _pending);
        _pending = -1;
        if (++_unsignalled >= MaxUnsignalledOutputs) Flush();
    }

    /// <summary>The logic's batch ended (or the cap was reached): wakes the output thread if it sleeps.</summary>
    public void Flush()
    {
        if (_unsignalled == 0) return;
        _unsignalled = 0;
        ring.SignalConsumers();
    }
}
