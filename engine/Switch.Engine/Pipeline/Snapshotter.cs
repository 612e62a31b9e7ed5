using System.Diagnostics;
using System.Runtime.CompilerServices;
using Switch.Engine.Archive;
using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Snapshots;

namespace Switch.Engine.Pipeline;

/// <summary>
/// Takes the engine's snapshots. The logic thread tells it the journal position of every event it applies
/// (<see cref="Applied"/>) and, between events, captures the state when one is due: asked for (an operator, a stop),
/// after <see cref="SnapshotOptions.EveryEvents"/> events, or after a batch close. The capture is the logic's only
/// pause (<see cref="SwitchLogic.BeginCapture"/>); the writer thread (started once, looking for work every
/// <see cref="WriterPollMs"/>: a thread started per snapshot cost the pause 0.5 to 2.4 ms, a wake-up up to 8.8 ms) then copies the large arrays copy-on-write, waits
/// for the archive's checkpoint and the derived views, and publishes the file. One snapshot at a time: a request while
/// one is written is taken right after it.
/// </summary>
internal sealed class Snapshotter
{
    private readonly SnapshotOptions _options;
    private readonly SnapshotStore _store;
    private readonly Journal.EventJournal _journal;
    private readonly string _journalArchive;
    private readonly SwitchLogic _logic;
    private readonly ITransactionArchive _archive;
    private readonly byte[] _configJson;
    private readonly Action _wake;
    private readonly Action<SnapshotResult>? _onTaken;
    private readonly Action<Exception>? _onFailed;
    private readonly StateWriter _state = new();
    /// <summary>The write budget, one for the file's writer and the archive's checkpoints (<see cref="WritePacer"/>).</summary>
    private readonly WritePacer _pacer;
    private readonly object _lock = new();
    private readonly List<(TaskCompletionSource<SnapshotResult> Done, string Trigger)> _requests = new();
    /// <summary>Set by requesters, read by the logic thread between events.</summary>
    private volatile bool _requested;
    /// <summary>A snapshot is being written (the logic starts no other).</summary>
    private volatile bool _writing;
    private long _recordNo;
    private long _recordAddress;
    private long _maxCorrelationId;
    private long _eventsSince;
    /// <summary>1 once an event was applied since the last snapshot: read by the schedule's timer thread.</summary>
    private int _eventsSinceSeen;
    private long _batchSeen;
    /// <summary>The derived views of the snapshot being written, handed over by the output side at its mark.</summary>
    private TaskCompletionSource<byte[]>? _views;
    private long _viewsRecordNo;
    /// <summary>The snapshot handed to the writer thread (set by the logic thread before it wakes the writer).</summary>
    private Action? _toWrite;
    /// <summary>Set only by Stop. No spinning before it blocks: the writer polls it every WriterPollMs for its life, and a
    /// SemaphoreSlim's spin before each wait made an idle switch's writer call sched_yield about 5,000 times a second.</summary>
    private readonly ManualResetEventSlim _wakeWriter = new(initialState: false, spinCount: 0);
    private volatile bool _stopped;

    public Snapshotter(SnapshotOptions options, string dataDirectory, Journal.EventJournal journal, SwitchLogic logic, ITransactionArchive archive,
        long recordNo, long recordAddress, long maxCorrelationId, Action wake, Action<SnapshotResult>? onTaken, Action<Exception>? onFailed)
    {
        _onTaken = onTaken;
        _onFailed = onFailed;
        _options = options;
        _store = new SnapshotStore(dataDirectory);
        _journal = journal;
        _journalArchive = SnapshotStore.JournalArchiveDirectory(dataDirectory);
        _logic = logic;
        _archive = archive;
        _pacer = (archive as FasterTransactionArchive)?.CheckpointPacer ?? new WritePacer((long)options.WriteMiBPerSecond << 20);
        _configJson = logic.Config.ToJsonUtf8();
        _wake = wake;
        _recordNo = recordNo;
        _recordAddress = recordAddress;
        _maxCorrelationId = maxCorrelationId;
        _batchSeen = logic.OpenBatchId;
        // The state written once now, while the logic is not running (the engine's threads start after): the buffer
        // grows to the live state's size here (1 MiB in RecoveryBench's switch, from a 64 KiB start: five doublings, a few MiB
        // allocated, measured as most of the first snapshot's 3.6 ms pause against 0.2 ms for the second), and the
        // writes run once before a pause times them.
        logic.WriteState(_state);
        _state.Clear();
        new Thread(WriterLoop) { Name = "switch-snapshot", IsBackground = true }.Start();
    }

    /// <summary>How often the writer looks for a snapshot handed to it. The logic only sets a field in its pause: waking
    /// the writer there (a futex call) let the kernel deschedule the logic on busy cores (measured: 8.8 ms of a 9.3 ms
    /// pause under load, 5.6 ms of a 6.1 ms one with the writer at nice 10). A writer starting up to this late costs
    /// nothing (the writing takes seconds); a look costs it microseconds, 100 times a second.</summary>
    public const int WriterPollMs = 10;

    private void WriterLoop()
    {
        // For the thread's life: woken, it waits for the logic and the I/O threads instead of preempting them.
        WriterNice = NiceThread.LowerCurrent(_options.WriterNice);
        Volatile.Write(ref _writerThreadId, NiceThread.CurrentThreadId());
        while (true)
        {
            _wakeWriter.Wait(WriterPollMs); // set only by Stop
            if (_stopped) return;
            Interlocked.Exchange(ref _toWrite, null)?.Invoke();
        }
    }

    /// <summary>The engine stops: the writer thread ends after the snapshot it is writing, if any.</summary>
    public void Stop()
    {
        _stopped = true;
        _wakeWriter.Set();
    }

    private int _writerThreadId;

    /// <summary>The writer thread's kernel id (0 until it runs, or where there is none): tests read its nice from <c>/proc</c>.</summary>
    public int WriterThreadId => Volatile.Read(ref _writerThreadId);
    /// <summary>The writer thread's nice once lowered (<see cref="SnapshotOptions.WriterNice"/>), null where it was not.</summary>
    public int? WriterNice { get; private set; }

    public SnapshotResult? Last { get; private set; }
    /// <summary>Captures during which the state buffer grew (allocated and copied inside the logic's pause).</summary>
    public long StateBufferGrowths { get; private set; }
    public long Taken { get; private set; }
    public long Failed { get; private set; }
    public Exception? LastFailure { get; private set; }

    /// <summary>Asks for a snapshot; completes when it is published (or failed). Any thread.</summary>
    public Task<SnapshotResult> RequestAsync(string trigger)
    {
        var done = new TaskCompletionSource<SnapshotResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            _requests.Add((done, trigger));
            _requested = true;
        }
        _wake();
        return done.Task;
    }

    /// <summary>True on a cluster's primary: no snapshot by count, batch close or schedule (its standby takes them); an
    /// operator's request and the stop's snapshot still are.</summary>
    public bool ScheduleHeld
    {
        get => _scheduleHeld;
        set => _scheduleHeld = value;
    }
    private volatile bool _scheduleHeld;

    /// <summary>Logic thread, after each applied event: its journal position, then a snapshot if one is due.</summary>
    public void Applied(long recordNo, long recordAddress, long correlationId)
    {
        Debug.Assert(recordNo > _recordNo, "journal records apply in order");
        _recordNo = recordNo;
        _recordAddress = recordAddress;
        if (correlationId > _maxCorrelationId) _maxCorrelationId = correlationId;
        _eventsSince++;
        if (_eventsSince == 1) Volatile.Write(ref _eventsSinceSeen, 1);
        if (_writing) return;
        if (_requested)
        {
            Take(null);
        }
        else if (_scheduleHeld)
        {
            // A cluster's primary: its standby takes the scheduled snapshots, so the primary never pauses for them.
        }
        else if (_options.EveryEvents > 0 && _eventsSince >= _options.EveryEvents)
        {
            Take("events");
        }
        else if (_options.AtBatchClose && _logic.OpenBatchId != _batchSeen)
        {
            Take("batch-close");
        }
    }

    /// <summary>The schedule's turn (<see cref="SnapshotOptions.Every"/>), any thread: a snapshot if events were applied
    /// since the last one (an idle switch's snapshot would be the same position again). Failures are told as any other.</summary>
    public void ScheduledTurn()
    {
        if (Volatile.Read(ref _eventsSinceSeen) == 0 || _writing || _requested || _scheduleHeld) return;
        _ = RequestAsync("schedule").ContinueWith(static t => _ = t.Exception, TaskContinuationOptions.OnlyOnFaulted);
    }

    /// <summary>Logic thread, on a nudge (no event applied): a requested snapshot is taken now.</summary>
    public void Between()
    {
        if (_requested && !_writing) Take(null);
    }

    /// <summary>The output side's views at the mark of snapshot <paramref name="recordNo"/>.</summary>
    public void ViewsCaptured(long recordNo, byte[] views)
    {
        TaskCompletionSource<byte[]>? pending = _views;
        if (pending is null || recordNo != Volatile.Read(ref _viewsRecordNo))
            throw new InvalidOperationException($"snapshots: views for snapshot {recordNo}, which is not being written");
        pending.TrySetResult(views);
    }

    /// <summary>The output side could not record its views for snapshot <paramref name="recordNo"/>: that snapshot fails now
    /// (instead of at the views' timeout), with the output side's reason.</summary>
    public void ViewsFailed(long recordNo, Exception reason)
    {
        TaskCompletionSource<byte[]>? pending = _views;
        if (pending is null || recordNo != Volatile.Read(ref _viewsRecordNo)) return;
        pending.TrySetException(reason);
    }

    private void Take(string? trigger)
    {
        List<(TaskCompletionSource<SnapshotResult> Done, string Trigger)> requests;
        lock (_lock)
        {
            requests = new(_requests);
            _requests.Clear();
            _requested = false;
        }
        trigger ??= requests.Count > 0 ? requests[0].Trigger : "operator";
        _eventsSince = 0;
        Volatile.Write(ref _eventsSinceSeen, 0);
        _batchSeen = _logic.OpenBatchId;
        var position = new SnapshotPosition(_recordNo, _recordAddress, _logic.EventsApplied, _maxCorrelationId);
        if (position.RecordNo < 1)
        {
            var nothing = new InvalidOperationException("SNAPSHOT_NOTHING_APPLIED: no event has been applied since the journal began");
            foreach (var r in requests) r.Done.TrySetException(nothing);
            return;
        }
        var pause = new PauseTimer();
        SwitchLogic.Capture capture;
        try
        {
            int capacityBytes = _state.CapacityBytes;
            capture = _logic.BeginCapture(_state, pause);
            if (_state.CapacityBytes != capacityBytes) StateBufferGrowths++;
        }
        catch (Exception e)
        {
            Fail(e, requests);
            return;
        }
        TaskCompletionSource<byte[]>? views = null;
        if (_options.WithViews)
        {
            views = NewViewsPromise();
            Volatile.Write(ref _viewsRecordNo, position.RecordNo);
            _views = views;
            _logic.EmitSnapshotMark(position.RecordNo);
        }
        pause.Lap(PausePart.Mark);
        _writing = true;
        // Handed over, not woken: the writer finds it within WriterPollMs; the logic makes no system call here.
        Volatile.Write(ref _toWrite, () => Write(position, capture, views, pause, trigger, requests));
        pause.Lap(PausePart.WriterStart); // read by the writer when the file is published: long after this
    }

    /// <summary>Where the output side hands a snapshot's views (<see cref="ViewsCaptured"/>); one made at start too
    /// (<see cref="SnapshotWarmUp"/>), so the first snapshot's pause does not load its types.</summary>
    internal static TaskCompletionSource<byte[]> NewViewsPromise() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private void Write(SnapshotPosition position, SwitchLogic.Capture capture, TaskCompletionSource<byte[]>? views,
        PauseTimer pause, string trigger, List<(TaskCompletionSource<SnapshotResult> Done, string Trigger)> requests)
    {
        long started = Stopwatch.GetTimestamp();
        string path = Path.Combine(_store.Directory, SnapshotFile.NameFor(position.RecordNo));
        bool ended = false;
        // When the archive's checkpoint and the views were ready, from the start of the writing: metrics only.
        var checkpointDone = new StrongBox<long>();
        var viewsDone = new StrongBox<long>();
        capture.Archive.Completion.ContinueWith(_ => Volatile.Write(ref checkpointDone.Value, Stopwatch.GetTimestamp()), TaskContinuationOptions.ExecuteSynchronously);
        views?.Task.ContinueWith(_ => Volatile.Write(ref viewsDone.Value, Stopwatch.GetTimestamp()), TaskContinuationOptions.ExecuteSynchronously);
        try
        {
            _options.TestWritePoint?.Invoke(SnapshotWritePoint.ArchiveCheckpointRunning);
            Journal.DirectorySync.CreateDirectory(_store.Directory);
            // The archive's part of the state, recorded by its writer thread at the capture's mark (the logic did not
            // wait for that thread in its pause): the state is whole from here.
            capture.Archive.WriteState(_state);
            TimeSpan sleptBefore = _pacer.Slept;
            long bytes = SnapshotFile.Write(path, position, _configJson, _state.Written, capture.Arrays,
                views: () =>
                {
                    if (views is null) return [];
                    if (!((IAsyncResult)views.Task).AsyncWaitHandle.WaitOne(_options.ViewsTimeoutMs))
                        throw new TimeoutException($"snapshots: the derived views did not arrive within {_options.ViewsTimeoutMs} ms of the mark");
                    return views.Task.GetAwaiter().GetResult(); // the output side's own reason if it failed
                },
                beforePublish: () =>
                {
                    capture.Archive.Completion.GetAwaiter().GetResult();
                    return capture.Archive.CheckpointToken;
                },
                _options.TestWritePoint, _options.SyncEveryBytes, _pacer);
            long published = Stopwatch.GetTimestamp();
            int aside = capture.Arrays.Sum(a => a.PagesCopiedAside);
            int allocatedPages = capture.Arrays.Sum(a => a.PagesAllocatedAside);
            long allocatedBytes = capture.Arrays.Sum(a => a.BytesAllocatedAside);
            capture.End();
            ended = true;
            HashSet<string> kept = _store.Retain(_options.Keep);
            (_archive as FasterTransactionArchive)?.PurgeCheckpointsExcept(kept);
            long retireStarted = Stopwatch.GetTimestamp();
            if (_options.RetireJournal) RetireBeforeOldestKept();
            long retired = Stopwatch.GetTimestamp();
            // The writer thread, not the logic: the wall clock decides nothing in the state.
            int deleted = _options.JournalArchiveRetentionDays > 0
                ? Journal.JournalArchive.DeleteWrittenBefore(_journalArchive, DateTime.UtcNow.AddDays(-_options.JournalArchiveRetentionDays))
                : 0;
            var result = new SnapshotResult(path, position, bytes, pause.Result(), (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds, aside, trigger)
            {
                JournalArchiveFilesDeleted = deleted,
                PagesAllocatedAside = allocatedPages,
                BytesAllocatedAside = allocatedBytes,
                ArchiveCheckpointMs = MsSince(started, Volatile.Read(ref checkpointDone.Value)),
                ViewsMs = views is null ? 0 : MsSince(started, Volatile.Read(ref viewsDone.Value)),
                PacedMs = (long)(_pacer.Slept - sleptBefore).TotalMilliseconds,
                ArchiveFoldOverBytes = capture.Archive.FoldOverBytes,
                PublishedMs = MsSince(started, published),
                RetireMs = _options.RetireJournal ? MsSince(retireStarted, retired) : 0,
            };
            Last = result;
            Taken++;
            _onTaken?.Invoke(result);
            foreach (var r in requests) r.Done.TrySetResult(result);
        }
        catch (Exception e)
        {
            if (!ended) capture.End();
            try
            {
                File.Delete(path + ".tmp");
            }
            catch (IOException)
            {
            }
            Fail(e, requests);
        }
        finally
        {
            _views = null;
            _writing = false;
            // A request that came while this one was written is taken at the next event: make there be one.
            if (_requested) _wake();
        }
    }

    private static long MsSince(long startTicks, long endTicks) =>
        endTicks <= startTicks ? 0 : (long)Stopwatch.GetElapsedTime(startTicks, endTicks).TotalMilliseconds;

    /// <summary>The records the oldest kept snapshot already holds leave the live journal for its archive: a start never
    /// needs them (it falls back at most to that snapshot), an audit reads them from the archive.</summary>
    private void RetireBeforeOldestKept()
    {
        IReadOnlyList<(long RecordNo, string Path)> kept = _store.List();
        if (kept.Count == 0) return;
        SnapshotPosition oldest;
        using (SnapshotFile.Opened opened = SnapshotFile.Open(kept[^1].Path)) oldest = opened.Position;
        // Under the snapshot's budget: a retirement copies every record since the last (at 180,000 a second, 10 M records
        // and over a GiB), which unpaced took a core and the disk for seconds right after the snapshot.
        _journal.Retire(oldest.RecordAddress, oldest.RecordNo, _journalArchive, _pacer.Wrote);
    }

    private void Fail(Exception e, List<(TaskCompletionSource<SnapshotResult> Done, string Trigger)> requests)
    {
        Failed++;
        LastFailure = e;
        _onFailed?.Invoke(e);
        foreach (var r in requests) r.Done.TrySetException(e);
    }
}
