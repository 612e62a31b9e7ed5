using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Snapshots;
using Switch.Journal;
using Switch.Ring;

namespace Switch.Engine.Pipeline;

/// <summary>
/// First consumer of the input ring: appends every event to the journal and commits once per batch (group
/// commit). Its sequence advances only after the commit, so everything behind it sees durable events only.
/// This commit is the one seam where "durable" is defined (later: also acknowledged by a standby).
/// </summary>
internal sealed class JournalHandler(EventJournal journal, IClock clock, JournalPositions positions, JournalCrashPoint? crashPoint = null, ICommitObserver? observer = null) : IEventHandler<InputEvent>
{
    private readonly byte[] _scratch = new byte[EventCodec.MaxEncodedBytes];
    // For the crash-point test hook only: records appended by this run, and the current batch's journal addresses.
    private long _appended;
    private long _batchFirstAddress = -1;
    private long _lastAddress = -1;
    private long _batchAppendedBefore;

    public long Commits { get; private set; }

    public void OnEvent(ref InputEvent evt, long sequence, bool endOfBatch)
    {
        if (evt.Kind is EventKind.Void or EventKind.Nudge)
        {
            // A slot whose fill failed: not an input. Not journaled, so replay never sees it (and the logic skips it
            // live); its batch still commits below if it ends one.
        }
        else if (evt.Kind == EventKind.InstitutionRequest && evt.ClientDeadlineUs != 0)
        {
            // As late as a stamp in the record can be: the logic refuses the request if its client's deadline passed by
            // now, so one that is still awaited here is the one that executes (replay reads the same stamp).
            evt.JournaledUs = clock.NowUs();
        }
        if (evt.Kind is not (EventKind.Void or EventKind.Nudge))
        {
            int length = EventCodec.Encode(ref evt, _scratch);
            _lastAddress = journal.Append(_scratch.AsSpan(0, length));
            positions.Set(sequence, journal.RecordCount - 1, _lastAddress);
            _appended++;
            if (_batchFirstAddress < 0) _batchFirstAddress = _lastAddress;
        }
        if (endOfBatch)
        {
            bool crash = crashPoint is not null && _appended >= crashPoint.Record;
            if (crash && crashPoint!.Moment == JournalCrashMoment.BeforeCommit) CrashNow();
            long started = observer is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
            journal.Commit();
            Commits++;
            observer?.Committed(System.Diagnostics.Stopwatch.GetTimestamp() - started, (int)(_appended - _batchAppendedBefore));
            _batchAppendedBefore = _appended;
            if (crash && crashPoint!.Moment == JournalCrashMoment.AfterCommit) CrashNow();
            _batchFirstAddress = -1;
        }
    }

    /// <summary>The test hook's kill: says where the batch lies in the journal (the tests damage it on disk), then SIGKILL.</summary>
    private void CrashNow()
    {
        crashPoint!.Announce?.Invoke(_batchFirstAddress, _lastAddress, _appended);
        System.Diagnostics.Process.GetCurrentProcess().Kill(); // SIGKILL on Unix: no handler, no flush, no finally
        Thread.Sleep(Timeout.Infinite);
    }
}

/// <summary>
/// Where each ring slot's event went in the journal (record number, address): written by the journaler before its
/// sequence moves on, read by the logic after (the sequence orders them), so a snapshot knows the position of the last
/// event it holds. Not part of the event: it never goes into the journal.
/// </summary>
internal sealed class JournalPositions(int ringSize)
{
    private readonly long[] _recordNo = new long[ringSize];
    private readonly long[] _address = new long[ringSize];
    private readonly int _mask = ringSize - 1;

    public void Set(long sequence, long recordNo, long address)
    {
        int i = (int)(sequence & _mask);
        _recordNo[i] = recordNo;
        _address[i] = address;
    }

    public (long RecordNo, long Address) Get(long sequence)
    {
        int i = (int)(sequence & _mask);
        return (_recordNo[i], _address[i]);
    }
}

/// <summary>Second consumer: the business logic, on its own thread, behind the journal.</summary>
internal sealed class LogicHandler(SwitchLogic logic, JournalPositions positions, Snapshotter? snapshots) : IEventHandler<InputEvent>
{
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
        if (endOfBatch) Volatile.Write(ref _nextTickDueUs, logic.NextTickDueUs());
        if (snapshots is not null)
        {
            (long recordNo, long address) = positions.Get(sequence);
            snapshots.Applied(recordNo, address, evt.CorrelationId);
        }
    }
}

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

/// <summary>Rebuilds the logic from the journal: genesis first, then every event, outputs discarded.</summary>
internal sealed class ReplayVisitor(Func<SwitchConfig, SwitchLogic> createLogic, Action<ReplayProgress>? progress = null,
    int progressIntervalMs = 5_000) : IJournalVisitor
{
    /// <summary>Replays the journal after a snapshot into the logic restored from it: the first record visited is the
    /// snapshot's last (at <paramref name="position"/>), already in the state, and is skipped.</summary>
    public static ReplayVisitor After(SwitchLogic restored, SwitchConfig config, SnapshotPosition position,
        Action<ReplayProgress>? progress, int progressIntervalMs)
    {
        var visitor = new ReplayVisitor(_ => throw new InvalidOperationException("replay: after a snapshot, no genesis"), progress, progressIntervalMs)
        {
            Logic = restored,
            GenesisConfig = config,
            MaxCorrelationId = position.MaxCorrelationId,
            LastRecordNo = position.RecordNo,
            LastRecordAddress = position.RecordAddress,
        };
        visitor._skipAddress = position.RecordAddress;
        return visitor;
    }

    private long _skipAddress = -1;
    /// <summary>Called after each record is applied, with its number (tools: a verification compares the state there).</summary>
    public Action<long, SwitchLogic>? AfterRecord { get; init; }
    /// <summary>The last record visited (the genesis is 0): where the live engine's journal positions continue.</summary>
    public long LastRecordNo { get; private set; } = -1;
    public long LastRecordAddress { get; private set; } = -1;
    /// <summary>Records between looks at the clock for the progress report (the clock is read here, never by the logic).</summary>
    private const int ProgressCheckRecords = 256;

    private InputEvent _event;
    private long _records;
    private readonly long _started = System.Diagnostics.Stopwatch.GetTimestamp();
    private long _lastReportMs;

    public SwitchLogic? Logic { get; private set; }
    public SwitchConfig? GenesisConfig { get; private set; }
    public long EventsReplayed { get; private set; }
    /// <summary>The highest correlation id in the journal: a new life's callers must get ids above it.</summary>
    public long MaxCorrelationId { get; private set; }

    public void OnRecord(long address, ReadOnlySpan<byte> record)
    {
        if (_skipAddress >= 0)
        {
            if (address != _skipAddress) throw new InvalidDataException($"journal: replay after a snapshot began at {address}, not its record's {_skipAddress}");
            _skipAddress = -1;
            return;
        }
        LastRecordNo++;
        LastRecordAddress = address;
        if (++_records % ProgressCheckRecords == 0 && progress is not null)
        {
            long elapsedMs = (long)System.Diagnostics.Stopwatch.GetElapsedTime(_started).TotalMilliseconds;
            if (elapsedMs - _lastReportMs >= progressIntervalMs)
            {
                _lastReportMs = elapsedMs;
                progress(new ReplayProgress(_records, EventsReplayed, address, elapsedMs));
            }
        }
        if (Logic is null)
        {
            if (!EventCodec.IsGenesis(record))
            {
                throw new InvalidDataException($"journal: the first record (at address {address}) is not the genesis record");
            }
            GenesisConfig = SwitchConfig.FromJsonUtf8(record[1..]);
            Logic = createLogic(GenesisConfig);
            AfterRecord?.Invoke(LastRecordNo, Logic);
            return;
        }
        try
        {
            EventCodec.Decode(record, ref _event);
        }
        catch (FormatException e)
        {
            throw new InvalidDataException($"journal: record at address {address} does not decode: {e.Message}", e);
        }
        if (_event.CorrelationId > MaxCorrelationId) MaxCorrelationId = _event.CorrelationId;
        Logic.Apply(ref _event);
        EventsReplayed++;
        AfterRecord?.Invoke(LastRecordNo, Logic);
    }
}
