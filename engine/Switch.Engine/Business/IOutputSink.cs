using Switch.Engine.Events;

namespace Switch.Engine.Business;

/// <summary>
/// Where the business logic writes its effects: claim a cleared slot, fill it, publish it. Implemented by the
/// output ring in the running engine and by a discarding sink during replay (outputs suppressed).
/// </summary>
public interface IOutputSink
{
    ref OutputEvent Begin();
    void End();
}

/// <summary>Replay: effects were already carried out before the crash, so they are computed and dropped.</summary>
public sealed class DiscardingSink : IOutputSink
{
    private OutputEvent _scratch;
    public long Discarded { get; private set; }

    public ref OutputEvent Begin()
    {
        _scratch.Reset();
        return ref _scratch;
    }

    public void End() => Discarded++;
}

/// <summary>Keeps every output, for tests and tools.</summary>
public sealed class CollectingSink : IOutputSink
{
    private OutputEvent _pending;
    public List<OutputEvent> Outputs { get; } = new();

    public ref OutputEvent Begin()
    {
        _pending.Reset();
        return ref _pending;
    }

    public void End() => Outputs.Add(_pending);
}
