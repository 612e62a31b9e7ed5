using System.Collections.Concurrent;
using System.Diagnostics;
using Switch.Journal;

namespace Switch.Host.Tests.Logging;

/// <summary>The stall watchdog: a stage held with work waiting is reported once, with what was seen; an idle or
/// progressing switch is reported never.</summary>
public sealed class StallWatchdogTests
{
    private const int StallMs = 150;

    [Fact]
    public void A_stage_held_with_work_waiting_is_one_stall_record_with_its_device_writes()
    {
        long progress = 0, backlog = 0;
        var reports = new ConcurrentQueue<StallReport>();
        var writes = new DeviceActivity();
        using var output = new StringWriter();
        var log = new Log(output, output);
        using (var watchdog = new StallWatchdog([new WatchedStage("journal", () => Volatile.Read(ref progress), () => Volatile.Read(ref backlog))],
                   StallMs, r => { reports.Enqueue(r); r.WriteTo(log); }, journalWrites: writes, watchPool: false))
        {
            var since = Stopwatch.StartNew(); // before the watchdog's first look: no stall it reports can be longer
            watchdog.Start();
            Volatile.Write(ref backlog, 10);
            writes.Started(4096); // a commit's write the device holds
            WaitUntil(() => watchdog.Stalls == 1, "the held stage counted as a stall");
            Thread.Sleep(StallMs);
            Assert.Empty(reports); // reported when it ends, not at every tick
            writes.Finished(4096);
            Volatile.Write(ref backlog, 0); // the work done: the stage moved and nothing waits any more
            Interlocked.Increment(ref progress);
            WaitUntil(() => !reports.IsEmpty, "the stall reported once the stage moved");
            long sinceMs = since.ElapsedMilliseconds;
            Thread.Sleep(3 * StallWatchdog.IntervalMs);
            StallReport report = Assert.Single(reports);
            Assert.Equal("journal", report.Stage);
            Assert.False(report.Ongoing);
            // Counted as a stall after StallMs, held StallMs more: at least twice; timing on a busy machine bounds no more.
            Assert.InRange(report.StalledMs, 2 * StallMs, sinceMs);
            Assert.Equal(10, report.BacklogMax);
            Assert.Equal(1, report.JournalWritesMax);
            Assert.True(report.JournalWriteWaitMsMax >= StallMs, $"the device's write waited {report.JournalWriteWaitMsMax} ms");
            Assert.Equal(1, watchdog.Stalls);
        }
        LogRecord record = Assert.Single(output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(LogRecord.TryParse).OfType<LogRecord>());
        Assert.Equal("stall", record.Event);
        Assert.Equal("warn", record.Level);
        Assert.Equal("journal", record["stage"]);
        Assert.Equal("false", record["ongoing"]);
        Assert.NotNull(record["pool_threads"]);
        Assert.NotNull(record["gc_pause_ms"]);
    }

    [Fact]
    public void Stages_that_progress_or_have_no_work_are_never_a_stall()
    {
        long moving = 0;
        var reports = new ConcurrentQueue<StallReport>();
        using var watchdog = new StallWatchdog(
        [
            new WatchedStage("idle", () => 7, () => 0), // standing still with nothing to do
            new WatchedStage("busy", () => Interlocked.Increment(ref moving), () => 1_000), // work waiting, moving at every look
        ], StallMs, reports.Enqueue, watchPool: false); // the pool: alone, below (tests sleeping on pool threads starve it)
        watchdog.Start();
        // Many looks, each far apart enough to be a stall had anything stood still with work (however late the thread wakes).
        WaitUntil(() => Volatile.Read(ref moving) >= 4 * StallMs / StallWatchdog.IntervalMs, "the watchdog's looks");
        Assert.Empty(reports);
        Assert.Equal(0, watchdog.Stalls);
    }

    [Fact]
    public void A_stage_still_held_is_reported_while_it_lasts_and_again_when_it_ends()
    {
        // The ongoing period is 10 s: this waits for it.
        long progress = 0;
        var reports = new ConcurrentQueue<StallReport>();
        using var watchdog = new StallWatchdog([new WatchedStage("logic", () => Volatile.Read(ref progress), () => 1)], StallMs, reports.Enqueue, watchPool: false);
        watchdog.Start();
        WaitUntil(() => reports.Any(r => r.Ongoing), "an ongoing report", StallWatchdog.OngoingReportMs + 5_000);
        Interlocked.Increment(ref progress);
        WaitUntil(() => reports.Any(r => !r.Ongoing), "the final report");
        Assert.Equal(1, watchdog.Stalls);
        StallReport last = reports.Last();
        Assert.False(last.Ongoing);
        Assert.True(last.StalledMs >= StallWatchdog.OngoingReportMs, $"stalled {last.StalledMs} ms");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(StallWatchdog.MinStallMs - 1)]
    [InlineData(StallWatchdog.MaxStallMs + 1)]
    public void A_threshold_out_of_bounds_is_refused(int stallMs) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new StallWatchdog([], stallMs, _ => { }));

    internal static void WaitUntil(Func<bool> condition, string what, int timeoutMs = 10_000)
    {
        var waited = Stopwatch.StartNew();
        while (!condition())
        {
            if (waited.ElapsedMilliseconds > timeoutMs) throw new TimeoutException($"waited {timeoutMs} ms for: {what}");
            Thread.Sleep(10);
        }
    }
}

/// <summary>A thread pool whose threads are all blocked runs nothing queued: the watchdog's probe waits and it says "pool".
/// Alone: it starves the process's pool for a second, which would stall other tests.</summary>
[Collection(StarvesThePool.Name)]
public sealed class StallWatchdogPoolTests
{
    [Fact]
    public void A_starved_pool_is_a_pool_stall_with_its_queue()
    {
        var reports = new ConcurrentQueue<StallReport>();
        var release = new ManualResetEventSlim(); // not disposed: blockers not yet run still wait on it after the test
        using var watchdog = new StallWatchdog([], StallWatchdog.MinStallMs, reports.Enqueue);
        watchdog.Start();
        Thread.Sleep(3 * StallWatchdog.IntervalMs);
        Assert.Empty(reports); // an idle pool runs the probe at once
        // More blocked work items than the pool has threads, each blocked as a device's synchronous write blocks; the
        // pool adds threads slowly (it cannot know they are blocked), so the queue behind them waits.
        int blockers = ThreadPool.ThreadCount + Environment.ProcessorCount + 8;
        int started = 0;
        for (int i = 0; i < blockers; i++)
        {
            ThreadPool.UnsafeQueueUserWorkItem(_ =>
            {
                Interlocked.Increment(ref started);
                release.Wait(TimeSpan.FromSeconds(10));
            }, null);
        }
        StallWatchdogTests.WaitUntil(() => watchdog.Stalls >= 1, "the pool counted as stalled");
        release.Set();
        StallWatchdogTests.WaitUntil(() => reports.Any(r => r.Stage == "pool"), "the pool stall reported");
        StallReport pool = reports.First(r => r.Stage == "pool");
        Assert.True(pool.StalledMs >= StallWatchdog.MinStallMs, $"stalled {pool.StalledMs} ms");
        Assert.True(pool.PoolQueueMax >= 1, "the queue seen behind the blocked threads");
        Assert.All(reports, r => Assert.Equal("pool", r.Stage));
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class StarvesThePool
{
    public const string Name = "starves the thread pool";
}
