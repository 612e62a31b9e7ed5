using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Journal;
using Switch.Ring;

namespace Switch.Engine.Pipeline;

/// <summary>
/// First consumer of the input ring: appends every event to the journal and commits once per batch (group
/// commit). Its sequence advances only after the commit, so everything behind it sees durable events only.
/// This commit is the one seam where "durable" is defined (later: also acknowledged by a standby).
/// </summary>
internal sealed class JournalHandler(EventJournal journal, IClock clock, JournalCrashPoint? crashPoint = null, ICommitObserver? observer = null) : IEventHandler<InputEvent>
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
        if (evt.Kind == EventKind.Void)
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
        if (evt.Kind != EventKind.Void)
        {
            int length = EventCodec.Encode(ref evt, _scratch);
            _lastAddress = journal.Append(_scratch.AsSpan(0, length));
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
    }
}
