using System.Diagnostics;
using Switch.Journal;

namespace Switch.Host;

/// <summary>
/// One thing the <see cref="StallWatchdog"/> watches: a counter that moves whenever it does work (a sequence, a count
/// of commits) and how much work waits for it (0: none, so standing still is not a stall). Both are read from the
/// watchdog's thread: they must be cheap, thread-safe reads that allocate nothing.
/// </summary>
public sealed record WatchedStage(string Name, Func<long> Progress, Func<long> Backlog);

/// <summary>
/// Finds the stalls behind a tail latency: one thread wakes every <see cref="IntervalMs"/> and looks whether each
/// watched stage (the journal's commits, the logic, the output) has progressed while it had work, and whether the
/// thread pool still runs what is queued to it (a probe work item, one at a time: its wait is the pool's queueing
/// delay). A stage with work that did not move for <c>stallMs</c> is a stall; when it moves again, one
/// <c>event=stall</c> record says which stage, for how long, and what was seen meanwhile: the pool's threads and queue,
/// the collections and GC pause, the journal's and the archive's device writes outstanding and how long none completed.
/// A stall still going after <see cref="OngoingReportMs"/> is also reported while it lasts (<c>ongoing=true</c>).
/// Sampling allocates nothing; only a record does. Its clock is the host's (the logic's determinism is not touched).
/// </summary>
public sealed class StallWatchdog : IDisposable
{
    public const int IntervalMs = 50;
    public const int MinStallMs = 2 * IntervalMs;
    public const int MaxStallMs = 600_000;
    /// <summary>A stall that lasts is reported this often until it ends (an operator must not wait for its end).</summary>
    public const int OngoingReportMs = 10_000;
    public const int MaxStages = 16;

    private readonly WatchedStage[] _stages;
    private readonly StageState[] _states;
    private readonly DeviceActivity? _journalWrites;
    private readonly DeviceActivity? _archiveWrites;
    private readonly Action<StallReport> _report;
    private readonly long _stallTicks;
    private readonly long _ongoingTicks;
    private readonly PoolProbe _probe = new();
    private readonly bool _watchPool;
    /// <summary>No spinning before each wait: the watchdog waits on it every IntervalMs for its life (the default spin made
    /// it call sched_yield about 400 times a second).</summary>
    private readonly ManualResetEventSlim _stop = new(initialState: false, spinCount: 0);
    private readonly Thread _thread;
    private long _stalls;

    /// <param name="stages">The stages to watch.</param>
    /// <param name="report">Told of each stall (on the watchdog's thread).</param>
    /// <param name="watchPool">Adds the thread pool's probe as stage "pool".</param>
    public StallWatchdog(IReadOnlyList<WatchedStage> stages, int stallMs, Action<StallReport> report,
        DeviceActivity? journalWrites = null, DeviceActivity? archiveWrites = null, bool watchPool = true)
    {
        if (stallMs is < MinStallMs or > MaxStallMs) throw new ArgumentOutOfRangeException(nameof(stallMs), stallMs, $"{MinStallMs} to {MaxStallMs}");
        if (stages.Count + 1 > MaxStages) throw new ArgumentException($"at most {MaxStages - 1} stages", nameof(stages));
        _watchPool = watchPool;
        _stages = watchPool ? [.. stages, new WatchedStage("pool", _probe.Ran, _probe.Waiting)] : [.. stages];
        _states = new StageState[_stages.Length];
        _journalWrites = journalWrites;
        _archiveWrites = archiveWrites;
        _report = report;
        StallMs = stallMs;
        _stallTicks = stallMs * Stopwatch.Frequency / 1000;
        _ongoingTicks = OngoingReportMs * Stopwatch.Frequency / 1000;
        _thread = new Thread(Run) { IsBackground = true, Name = "stall-watchdog" };
    }

    public int StallMs { get; }

    /// <summary>Stalls reported since the start (an ongoing one counted once).</summary>
    public long Stalls => Volatile.Read(ref _stalls);

    public void Start() => _thread.Start();

    public void Dispose()
    {
        _stop.Set();
        if (_thread.IsAlive) _thread.Join();
        _stop.Dispose();
    }

    private void Run()
    {
        Sample now = Sample.Take(_journalWrites, _archiveWrites);
        for (int i = 0; i < _stages.Length; i++) _states[i].Reset(_stages[i].Progress(), now);
        while (!_stop.Wait(IntervalMs))
        {
            if (_watchPool) _probe.QueueIfIdle();
            now = Sample.Take(_journalWrites, _archiveWrites);
            for (int i = 0; i < _stages.Length; i++) Check(i, now);
        }
    }

    private void Check(int index, in Sample now)
    {
        ref StageState state = ref _states[index];
        WatchedStage stage = _stages[index];
        long progress = stage.Progress();
        long backlog = stage.Backlog();
        if (progress != state.Progress || backlog <= 0)
        {
            if (state.Stalled) Report(stage, ref state, now, ongoing: false);
            state.Reset(progress, now);
            return;
        }
        state.Seen(backlog, now);
        long stalledTicks = now.Timestamp - state.Start.Timestamp;
        if (!state.Stalled && stalledTicks >= _stallTicks)
        {
            state.Stalled = true;
            state.ReportedAt = now.Timestamp;
            Interlocked.Increment(ref _stalls);
        }
        else if (state.Stalled && now.Timestamp - state.ReportedAt >= _ongoingTicks)
        {
            state.ReportedAt = now.Timestamp;
            Report(stage, ref state, now, ongoing: true);
        }
    }

    private void Report(WatchedStage stage, ref StageState state, in Sample now, bool ongoing)
    {
        Sample start = state.Start;
        _report(new StallReport
        {
            Stage = stage.Name,
            Ongoing = ongoing,
            StalledMs = Ms(now.Timestamp - start.Timestamp),
            BacklogMax = state.BacklogMax,
            PoolThreads = now.PoolThreads,
            PoolThreadsMin = state.PoolThreadsMin,
            PoolThreadsMax = state.PoolThreadsMax,
            PoolQueueMax = state.PoolQueueMax,
            PoolCompleted = now.PoolCompleted - start.PoolCompleted,
            Gen0 = now.Gen0 - start.Gen0,
            Gen1 = now.Gen1 - start.Gen1,
            Gen2 = now.Gen2 - start.Gen2,
            GcPauseMs = (long)(now.GcPause - start.GcPause).TotalMilliseconds,
            JournalWritesMax = state.JournalWritesMax,
            JournalWritingMax = state.JournalWritingMax,
            JournalWriteWaitMsMax = state.JournalWaitMsMax,
            ArchiveWritesMax = state.ArchiveWritesMax,
            ArchiveWritingMax = state.ArchiveWritingMax,
            ArchiveWriteBytesMax = state.ArchiveBytesMax,
            ArchiveWriteWaitMsMax = state.ArchiveWaitMsMax,
        });
    }

    private static long Ms(long ticks) => ticks * 1000 / Stopwatch.Frequency;

    /// <summary>What the process looked like at one tick.</summary>
    private readonly struct Sample
    {
        public long Timestamp { get; private init; }
        public int PoolThreads { get; private init; }
        public long PoolQueue { get; private init; }
        public long PoolCompleted { get; private init; }
        public int Gen0 { get; private init; }
        public int Gen1 { get; private init; }
        public int Gen2 { get; private init; }
        public TimeSpan GcPause { get; private init; }
        public long JournalWrites { get; private init; }
        public long JournalWriting { get; private init; }
        public long JournalWaitMs { get; private init; }
        public long ArchiveWrites { get; private init; }
        public long ArchiveWriting { get; private init; }
        public long ArchiveBytes { get; private init; }
        public long ArchiveWaitMs { get; private init; }

        public static Sample Take(DeviceActivity? journal, DeviceActivity? archive)
        {
            long now = Stopwatch.GetTimestamp();
            return new Sample
            {
                Timestamp = now,
                PoolThreads = ThreadPool.ThreadCount,
                PoolQueue = ThreadPool.PendingWorkItemCount,
                PoolCompleted = ThreadPool.CompletedWorkItemCount,
                Gen0 = GC.CollectionCount(0),
                Gen1 = GC.CollectionCount(1),
                Gen2 = GC.CollectionCount(2),
                GcPause = GC.GetTotalPauseDuration(),
                JournalWrites = journal?.InFlight ?? 0,
                JournalWriting = journal?.Writing ?? 0,
                JournalWaitMs = journal?.WaitingMs(now) ?? 0,
                ArchiveWrites = archive?.InFlight ?? 0,
                ArchiveWriting = archive?.Writing ?? 0,
                ArchiveBytes = archive?.BytesInFlight ?? 0,
                ArchiveWaitMs = archive?.WaitingMs(now) ?? 0,
            };
        }
    }

    /// <summary>A stage's progress as last seen, and the worst of what was seen since it last moved.</summary>
    private struct StageState
    {
        public long Progress;
        public Sample Start;
        public bool Stalled;
        public long ReportedAt;
        public long BacklogMax;
        public int PoolThreadsMin;
        public int PoolThreadsMax;
        public long PoolQueueMax;
        public long JournalWritesMax;
        public long JournalWritingMax;
        public long JournalWaitMsMax;
        public long ArchiveWritesMax;
        public long ArchiveWritingMax;
        public long ArchiveBytesMax;
        public long ArchiveWaitMsMax;

        public void Reset(long progress, in Sample now)
        {
            this = default;
            Progress = progress;
            Start = now;
            PoolThreadsMin = int.MaxValue;
            Seen(0, now);
        }

        public void Seen(long backlog, in Sample now)
        {
            BacklogMax = Math.Max(BacklogMax, backlog);
            PoolThreadsMin = Math.Min(PoolThreadsMin, now.PoolThreads);
            PoolThreadsMax = Math.Max(PoolThreadsMax, now.PoolThreads);
            PoolQueueMax = Math.Max(PoolQueueMax, now.PoolQueue);
            JournalWritesMax = Math.Max(JournalWritesMax, now.JournalWrites);
            JournalWritingMax = Math.Max(JournalWritingMax, now.JournalWriting);
            JournalWaitMsMax = Math.Max(JournalWaitMsMax, now.JournalWaitMs);
            ArchiveWritesMax = Math.Max(ArchiveWritesMax, now.ArchiveWrites);
            ArchiveWritingMax = Math.Max(ArchiveWritingMax, now.ArchiveWriting);
            ArchiveBytesMax = Math.Max(ArchiveBytesMax, now.ArchiveBytes);
            ArchiveWaitMsMax = Math.Max(ArchiveWaitMsMax, now.ArchiveWaitMs);
        }
    }

    /// <summary>One work item queued to the pool at a time; it only counts that it ran. While it waits, the pool runs
    /// nothing queued after it: its wait is what any work queued then waits.</summary>
    private sealed class PoolProbe : IThreadPoolWorkItem
    {
        private long _queued;
        private long _ran;

        public long Ran() => Volatile.Read(ref _ran);

        public long Waiting() => Volatile.Read(ref _queued) - Volatile.Read(ref _ran);

        public void QueueIfIdle()
        {
            if (Waiting() != 0) return;
            _queued++;
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }

        public void Execute() => Interlocked.Increment(ref _ran);
    }
}

/// <summary>One stall: which stage stood still with work waiting, for how long, and what the process looked like
/// meanwhile (maxima and minima over the stall; counts are what happened during it).</summary>
public sealed record StallReport
{
    public required string Stage { get; init; }
    /// <summary>Still going (reported every <see cref="StallWatchdog.OngoingReportMs"/>); false: it ended.</summary>
    public bool Ongoing { get; init; }
    public long StalledMs { get; init; }
    public long BacklogMax { get; init; }
    public int PoolThreads { get; init; }
    public int PoolThreadsMin { get; init; }
    public int PoolThreadsMax { get; init; }
    public long PoolQueueMax { get; init; }
    public long PoolCompleted { get; init; }
    public int Gen0 { get; init; }
    public int Gen1 { get; init; }
    public int Gen2 { get; init; }
    public long GcPauseMs { get; init; }
    public long JournalWritesMax { get; init; }
    /// <summary>Of the journal's writes outstanding, the most in the write system call at once (the rest waited for a thread).</summary>
    public long JournalWritingMax { get; init; }
    public long JournalWriteWaitMsMax { get; init; }
    public long ArchiveWritesMax { get; init; }
    public long ArchiveWritingMax { get; init; }
    public long ArchiveWriteBytesMax { get; init; }
    public long ArchiveWriteWaitMsMax { get; init; }

    /// <summary>The log record's fields.</summary>
    public void WriteTo(Log log) => log.Warn("stall", Ongoing ? $"the {Stage} stage has not progressed for {StalledMs} ms with work waiting"
        : $"the {Stage} stage stood still for {StalledMs} ms with work waiting",
        ("stage", Stage), ("stalled_ms", StalledMs), ("ongoing", Ongoing ? "true" : "false"), ("backlog_max", BacklogMax),
        ("pool_threads", PoolThreads), ("pool_threads_min", PoolThreadsMin), ("pool_threads_max", PoolThreadsMax),
        ("pool_queue_max", PoolQueueMax), ("pool_completed", PoolCompleted),
        ("gen0", Gen0), ("gen1", Gen1), ("gen2", Gen2), ("gc_pause_ms", GcPauseMs),
        ("journal_writes_max", JournalWritesMax), ("journal_writing_max", JournalWritingMax), ("journal_write_wait_ms_max", JournalWriteWaitMsMax),
        ("archive_writes_max", ArchiveWritesMax), ("archive_writing_max", ArchiveWritingMax), ("archive_write_mib_max", ArchiveWriteBytesMax >> 20),
        ("archive_write_wait_ms_max", ArchiveWriteWaitMsMax));
}
