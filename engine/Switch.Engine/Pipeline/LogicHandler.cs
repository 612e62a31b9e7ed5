using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Ring;

namespace Switch.Engine.Pipeline;

/// <summary>Second consumer: the business logic, on its own thread, behind the journal.</summary>
internal sealed class LogicHandler(SwitchLogic logic, JournalPositions positions, Snapshotter? snapshots, long appliedRecords) : IEventHandler<InputEvent>
{
    private long _appliedRecords = appliedRecords;

    /// <summary>Journal records applied (the genesis counted), as of the last batch's end: for status and lag.</summary>
    public long AppliedRecords => Volatile.Read(ref _appliedRecords);

    public long VoidSkipped { get; private set; }
    /// <summary>See <see cref="SwitchLogic.NextTickDueUs"/>: written at the end of each batch, read by the ticker.</summary>
    private long _nextTickDueUs = logic.NextTickDueUs();
    /// <summary>1 from a tick's publication until it is applied: the ticker does not stack ticks behind a busy logic.</summary>
    private int _tickPending;

    public long NextTickDueUs => Volatile.Read(ref _nextTickDueUs);

    /// <summary>The ticker, before it publishes a tick: false if one is already on its way.</summary>
    public bool TryStartTick() => Interlocked.CompareExchange(ref _tickPending, 1, 0) == 0;
    public void TickNotPublished() => Volatile.Write(ref _tickPending, 0);

    public void OnEvent(ref InputEvent evt, long sequence, bool endOfBatch)
    {
        if (evt.Kind == EventKind.Void)
        {
            VoidSkipped++; // never journaled: applying it would make live state differ from replayed state
            return;
        }
        if (evt.Kind == EventKind.Nudge)
        {
            snapshots?.Between();
            return;
        }
        logic.Apply(ref evt);
        if (evt.Kind == EventKind.Tick) Volatile.Write(ref _tickPending, 0);
        if (endOfBatch)
        {
            Volatile.Write(ref _nextTickDueUs, logic.NextTickDueUs());
            Volatile.Write(ref _appliedRecords, positions.Get(sequence).RecordNo + 1);
        }
        if (snapshots is not null)
        {
            (long recordNo, long address) = positions.Get(sequence);
            snapshots.Applied(recordNo, address, evt.CorrelationId);
        }
    }
}
