using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Journal;
using Switch.Ring;

namespace Switch.Engine.Replication;

/// <summary>
/// The primary's consumer between the journaler and the logic (the logic's barrier follows it). Synchronous: each batch
/// waits here until the standby has acknowledged its last record as durable, so nothing the logic does with an event
/// happens before that. Asynchronous: never waits. Fenced: nothing more passes, in either mode. It also keeps, per
/// batch, when it passed, for the lag in microseconds.
/// </summary>
internal sealed class ReplicationGate(ReplicationOptions options, EventJournal journal, JournalPositions positions, IClock clock) : IEventHandler<InputEvent>
{
    /// <summary>Batches remembered for the lag in microseconds: older ones count as the oldest kept.</summary>
    private const int LagHistory = 1024;

    private readonly object _lock = new();
    private readonly long[] _lagRecordEnd = new long[LagHistory];
    private readonly long[] _lagStampUs = new long[LagHistory];
    private long _lagNext;
    private long _acknowledged;
    /// <summary>What the standby had acknowledged when the gate degraded: it resynchronises only past it.</summary>
    private long _acknowledgedAtDegrade;
    private long _batchRecordEnd;
    private int _waiters;
    private volatile bool _fenced;
    private volatile bool _stopping;
    private volatile bool _following;
    private volatile ReplicationState _state = options.Mode == ReplicationMode.Synchronous ? ReplicationState.Synchronous : ReplicationState.Asynchronous;

    public ReplicationState State => _state;
    public long Acknowledged => Volatile.Read(ref _acknowledged);
    public bool Fenced => _fenced;
    /// <summary>True while a batch is held here beyond an ordinary wait (fenced, or stalled with no standby). Fenced
    /// counts from the fence itself, not from the first batch held after it: the state reads Fenced only once the gate's
    /// thread has met a batch, and a fence that falls on an idle gate (load stopped, etcd away) left it reading its old
    /// state, so a stop asked for a snapshot whose nudge the gate then held: the stop waited its whole timeout (120 s)
    /// and the node's next life, as a standby, waited with it.</summary>
    public bool Holding => _fenced || _state is ReplicationState.Fenced or ReplicationState.Stalled;

    public void OnEvent(ref InputEvent evt, long sequence, bool endOfBatch)
    {
        if (evt.Kind is not (EventKind.Void or EventKind.Nudge)) _batchRecordEnd = positions.Get(sequence).RecordNo + 1;
        if (!endOfBatch) return;
        RememberBatch(_batchRecordEnd);
        Pass(_batchRecordEnd);
    }

    /// <summary>The standby's durable record count: only grows (a lower one, from a standby that rejoined behind, changes
    /// nothing: what the old one acknowledged it held).</summary>
    public void Acknowledge(long durableRecordCount)
    {
        long journaled = journal.DurableRecordCount;
        if (durableRecordCount > journaled)
            throw new ReplicationRefusedException(ReplicationRefusal.ReplicaAhead, $"the standby acknowledged {durableRecordCount} records, this journal holds {journaled} durable");
        long seen = Volatile.Read(ref _acknowledged);
        while (durableRecordCount > seen)
        {
            long was = Interlocked.CompareExchange(ref _acknowledged, durableRecordCount, seen);
            if (was == seen) break;
            seen = was;
        }
        Wake();
        // Degraded and idle: no batch comes to resynchronise on, so the gate is asked to look once (on its own thread:
        // only it changes the state in step with what passes).
        if (_state == ReplicationState.Degraded && durableRecordCount > _acknowledgedAtDegrade) RequestPass?.Invoke();
    }

    /// <summary>Wakes the gate's thread with nothing to pass (the engine publishes a nudge), so a degraded gate whose
    /// standby has caught up becomes synchronous without waiting for traffic.</summary>
    public Action? RequestPass { get; set; }

    /// <summary>A following engine's gate passes everything (its primary decided): it gates again once promoted.</summary>
    public void Follow(bool following) => _following = following;

    /// <summary>Synchronous with policy Degrade: runs as asynchronous from now on, without waiting the timeout (a
    /// primary taking office with no standby attached, having said so where a standby would look). Synchronous again
    /// once a standby catches up, as after any degrade.</summary>
    public void Degrade(string why)
    {
        if (options.Mode != ReplicationMode.Synchronous || options.OnStandbyLost != StandbyLossPolicy.Degrade)
            throw new InvalidOperationException($"replication: degrade asked of mode {options.Mode} with policy {options.OnStandbyLost}");
        lock (_lock)
        {
            if (_state is ReplicationState.Fenced or ReplicationState.Degraded) return;
            _state = ReplicationState.Degraded;
            _acknowledgedAtDegrade = Acknowledged;
        }
        Alert(ReplicationAlertKind.Degraded, why);
        Wake();
    }

    public void Fence()
    {
        if (_fenced) return;
        _fenced = true;
        Wake();
        Alert(ReplicationAlertKind.Fenced, "fenced: the leadership can no longer be trusted; nothing more is applied, answered or sent to a bank");
    }

    /// <summary>The engine stops: a batch held here leaves by <see cref="ReplicationStoppedException"/>, unapplied.</summary>
    public void Stop()
    {
        _stopping = true;
        Wake();
    }

    public ReplicationStatus Status()
    {
        long journaled = journal.DurableRecordCount;
        long acknowledged = Acknowledged;
        long lagRecords = Math.Max(0, journaled - acknowledged);
        long lagUs = 0;
        if (lagRecords > 0)
        {
            lock (_lagRecordEnd)
            {
                long oldest = Math.Max(0, _lagNext - LagHistory);
                for (long i = oldest; i < _lagNext; i++)
                {
                    int slot = (int)(i % LagHistory);
                    if (_lagRecordEnd[slot] > acknowledged)
                    {
                        lagUs = Math.Max(0, clock.NowUs() - _lagStampUs[slot]);
                        break;
                    }
                }
            }
        }
        return new ReplicationStatus(options.Mode, _state, journaled, acknowledged, lagRecords, lagUs);
    }

    private void RememberBatch(long recordEnd)
    {
        lock (_lagRecordEnd)
        {
            int slot = (int)(_lagNext % LagHistory);
            _lagRecordEnd[slot] = recordEnd;
            _lagStampUs[slot] = clock.NowUs();
            _lagNext++;
        }
    }

    private void Pass(long requiredRecords)
    {
        // The leadership's own deadline, read per batch: a fence whose timer is late (a paused or starved process) must
        // not let a batch through after the lease may have expired.
        if (!_following && options.MayAct is { } mayAct && !mayAct()) Fence();
        if (_fenced) HoldFenced();
        if (options.Mode == ReplicationMode.Asynchronous || _following) return;
        if (_state == ReplicationState.Degraded)
        {
            // Synchronous again only for a standby that acknowledges again (one that is gone never catches up) and is
            // close behind: the next batches then wait for it, bounded by the timeout as ever.
            long acknowledged = Acknowledged;
            if (acknowledged <= _acknowledgedAtDegrade || acknowledged + options.ResyncLagRecords < requiredRecords) return;
            _state = ReplicationState.Synchronous;
            Alert(ReplicationAlertKind.Resynchronised, $"the standby acknowledges again and is within {options.ResyncLagRecords} records: synchronous again (batches wait for it from here)");
        }
        if (Acknowledged >= requiredRecords) return;
        long startedMs = Environment.TickCount64;
        lock (_lock)
        {
            Interlocked.Increment(ref _waiters); // a full fence before the condition is read (Dekker with Wake)
            try
            {
                while (Acknowledged < requiredRecords)
                {
                    if (options.MayAct is { } stillMayAct && !stillMayAct()) Fence();
                    if (_fenced) break;
                    if (_stopping) throw new ReplicationStoppedException();
                    // Degraded while this batch waited (a primary taking office with no standby: Degrade): it passes, as
                    // every later one does. Waiting on, it froze the logic for good, the gate's sleep having no timeout.
                    if (_state == ReplicationState.Degraded) return;
                    long waitedMs = Environment.TickCount64 - startedMs;
                    if (waitedMs >= options.StandbyAckTimeoutMs && _state == ReplicationState.Synchronous)
                    {
                        // The host first says in etcd that this node alone holds what it acknowledges from now on
                        // (ReplicationOptions.MayDegrade): a standby that lacks it must never take office over it.
                        if (options.OnStandbyLost == StandbyLossPolicy.Degrade && (options.MayDegrade?.Invoke() ?? true))
                        {
                            // A fence that fell while etcd was asked (a call of up to a second) wins: nothing passes.
                            if (_fenced) break;
                            _state = ReplicationState.Degraded;
                            _acknowledgedAtDegrade = Acknowledged;
                            Alert(ReplicationAlertKind.Degraded, $"no acknowledgement from the standby for {waitedMs} ms: running as asynchronous until it catches up");
                            return;
                        }
                        _state = ReplicationState.Stalled;
                        Alert(ReplicationAlertKind.StandbyStalled, $"no acknowledgement from the standby for {waitedMs} ms: the switch acknowledges nothing until one comes");
                    }
                    int sleepMs = _state == ReplicationState.Synchronous ? (int)Math.Max(1, options.StandbyAckTimeoutMs - waitedMs) : Timeout.Infinite;
                    Monitor.Wait(_lock, sleepMs);
                }
            }
            finally
            {
                Interlocked.Decrement(ref _waiters);
            }
        }
        if (_fenced) HoldFenced();
        if (_state == ReplicationState.Stalled)
        {
            _state = ReplicationState.Synchronous;
            Alert(ReplicationAlertKind.StandbyResumed, "the standby acknowledges again");
        }
    }

    /// <summary>Fenced: the batch never passes; only the engine's stop ends the wait.</summary>
    private void HoldFenced()
    {
        _state = ReplicationState.Fenced;
        lock (_lock)
        {
            Interlocked.Increment(ref _waiters); // a full fence before the condition is read (Dekker with Wake)
            try
            {
                while (!_stopping) Monitor.Wait(_lock);
            }
            finally
            {
                Interlocked.Decrement(ref _waiters);
            }
        }
        throw new ReplicationStoppedException();
    }

    private void Wake()
    {
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _waiters) == 0) return;
        lock (_lock) Monitor.PulseAll(_lock);
    }

    private void Alert(ReplicationAlertKind kind, string message) =>
        options.OnAlert?.Invoke(new ReplicationAlert(kind, Acknowledged, journal.DurableRecordCount, message));
}
