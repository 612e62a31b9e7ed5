using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Ring;

namespace Switch.Engine.Pipeline;

/// <summary>Second consumer: the business logic, on its own thread, behind the journal.</summary>
/// <remarks>Its outputs are woken for once per batch: <paramref name="outputs"/> is flushed at every batch's end, whatever
/// the event that ends it (the output thread may sleep on everything the batch published).</remarks>
internal sealed class LogicHandler(SwitchLogic logic, JournalPositions positions, Snapshotter? snapshots, long appliedRecords,
    OutputRingSink outputs, RingBuffer<InputEvent> input) : IEventHandler<InputEvent>
{
    /// <summary>How many events ahead in a batch the logic starts its cache misses: far enough to cover a miss behind
    /// the events between, near enough that the line is still there when its event comes.</summary>
    private const int PrefetchAheadEvents = 4;
    private long _batchLast = -1;
    private long _appliedRecords = appliedRecords;
    /// <summary>Records applied as of the last event (the logic thread's own count; <see cref="_appliedRecords"/> is
    /// published per batch): the position a state hash is taken at.</summary>
    private long _appliedNow = appliedRecords;
    /// <summary>An operator's request for the state hash, served between two events (<see cref="RequestStateHash"/>).</summary>
    private TaskCompletionSource<StateHashAt>? _hashRequest;

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

    public void OnBatchStart(long firstSequence, long lastSequence)
    {
        _batchLast = lastSequence;
        long ahead = Math.Min(lastSequence, firstSequence + PrefetchAheadEvents - 1);
        for (long s = firstSequence; s <= ahead; s++) logic.PrefetchFor(in input[s]);
    }

    public void OnEvent(ref InputEvent evt, long sequence, bool endOfBatch)
    {
        if (sequence + PrefetchAheadEvents <= _batchLast) logic.PrefetchFor(in input[sequence + PrefetchAheadEvents]);
        try
        {
            Apply(ref evt, sequence, endOfBatch);
        }
        finally
        {
            if (endOfBatch) outputs.Flush();
        }
    }

    private void Apply(ref InputEvent evt, long sequence, bool endOfBatch)
    {
        if (evt.Kind == EventKind.Void)
        {
            VoidSkipped++; // never journaled: applying it would make live state differ from replayed state
            return;
        }
        if (evt.Kind == EventKind.Nudge)
        {
            snapshots?.Between();
            ServeStateHash();
            return;
        }
        logic.Apply(ref evt);
        if (evt.Kind == EventKind.Tick) Volatile.Write(ref _tickPending, 0);
        (long recordNo, long address) = positions.Get(sequence);
        _appliedNow = recordNo + 1;
        if (endOfBatch)
        {
            Volatile.Write(ref _nextTickDueUs, logic.NextTickDueUs());
            Volatile.Write(ref _appliedRecords, _appliedNow);
        }
        snapshots?.Applied(recordNo, address, evt.CorrelationId);
        if (endOfBatch) ServeStateHash(); // a request whose nudge found the ring full
    }

    /// <summary>
    /// Any thread: the state hash at the position the logic has reached when it next stands between two events (woken
    /// by <paramref name="wake"/>). Reading only: what the logic decides is untouched. It walks every retained
    /// transaction, so the logic pauses for it (milliseconds per 10^5 transactions): for operators, not for a hot path.
    /// One request at a time; a second waits for the first's answer.
    /// </summary>
    public Task<StateHashAt> RequestStateHash(Action wake)
    {
        var request = new TaskCompletionSource<StateHashAt>(TaskCreationOptions.RunContinuationsAsynchronously);
        TaskCompletionSource<StateHashAt>? pending = Interlocked.CompareExchange(ref _hashRequest, request, null);
        if (pending is not null) return pending.Task;
        wake();
        return request.Task;
    }

    private void ServeStateHash()
    {
        TaskCompletionSource<StateHashAt>? request = Volatile.Read(ref _hashRequest);
        if (request is null) return;
        Volatile.Write(ref _hashRequest, null);
        try
        {
            request.SetResult(new StateHashAt(_appliedNow, logic.Term, logic.StateHash()));
        }
        catch (InvalidOperationException e)
        {
            // An invariant the hash recounts does not hold: the operator who asked hears it (and so does the next snapshot).
            request.SetException(e);
        }
    }
}

/// <summary>The logic's state hash (<see cref="SwitchLogic.StateHash"/>) once it had applied <see cref="AppliedRecords"/>
/// journal records (the genesis counted), in leadership term <see cref="Term"/>: two nodes with the same records applied
/// must have the same hash.</summary>
public readonly record struct StateHashAt(long AppliedRecords, long Term, ulong Hash);
