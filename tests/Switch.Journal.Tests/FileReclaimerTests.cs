namespace Switch.Journal.Tests;

/// <summary>What <see cref="FileReclaimer"/> does with a file: gone from its name at once, its blocks freed in steps,
/// then unlinked; what a stop left aside is taken up again; past its queue's bound a file is deleted at once; a removed
/// log segment goes through it.</summary>
public sealed class FileReclaimerTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private readonly TempJournalDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_file_leaves_its_name_at_once_and_is_unlinked_after_its_steps()
    {
        using var reclaimer = new FileReclaimer("test-reclaim");
        string path = Path.Combine(_dir.Path, "old.snap");
        long bytes = 3 * FileReclaimer.StepBytes + 4096; // four steps, the last a short one
        WriteSparse(path, bytes);

        Assert.True(reclaimer.Delete(path));
        Assert.False(File.Exists(path));

        Assert.True(reclaimer.WaitIdle(Bound));
        Assert.False(File.Exists(path + FileReclaimer.Suffix));
        Assert.Equal(1, reclaimer.Reclaimed);
        Assert.Equal(bytes, reclaimer.ReclaimedBytes);
        Assert.Equal(0, reclaimer.Failures);
        Assert.Equal(0, reclaimer.DeletedAtOnce);
    }

    [Fact]
    public void A_missing_file_is_refused_and_changes_nothing()
    {
        using var reclaimer = new FileReclaimer("test-reclaim");
        Assert.False(reclaimer.Delete(Path.Combine(_dir.Path, "never.snap")));
        Assert.False(reclaimer.Delete(Path.Combine(_dir.Path, "no-such-directory", "never.snap")));
        Assert.True(reclaimer.WaitIdle(Bound));
        Assert.Equal(0, reclaimer.Reclaimed);
        Assert.Equal(0, reclaimer.Failures);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dir.Path));
    }

    [Fact]
    public void A_stop_leaves_the_file_in_hand_aside_and_the_next_reclaimer_takes_it_up()
    {
        string path = Path.Combine(_dir.Path, "log.3");
        // 2,048 steps with a pause after each: far longer than the stop below takes to come.
        WriteSparse(path, 2048 * FileReclaimer.StepBytes);
        var first = new FileReclaimer("test-reclaim");
        Assert.True(first.Delete(path));
        WaitUntil(() => first.Queued == 0); // in hand
        first.Dispose();
        Assert.True(File.Exists(path + FileReclaimer.Suffix));
        Assert.Equal(0, first.Reclaimed);

        using var next = new FileReclaimer("test-reclaim");
        Assert.Equal(0, next.ReclaimLeftovers(_dir.Path, "snapshot-*")); // another name's leftovers only
        Assert.Equal(1, next.ReclaimLeftovers(_dir.Path, "log.*"));
        Assert.Equal(0, next.ReclaimLeftovers(_dir.Path, "log.*")); // queued or in hand already: taken once
        next.Dispose(); // the same file again: a stop within a step, whatever is left of it stays aside
        Assert.True(File.Exists(path + FileReclaimer.Suffix));
    }

    [Fact]
    public void Past_the_queue_s_bound_a_file_is_deleted_at_once()
    {
        string big = Path.Combine(_dir.Path, "big.snap");
        WriteSparse(big, 2048 * FileReclaimer.StepBytes);
        string queued = Path.Combine(_dir.Path, "queued.snap");
        string over = Path.Combine(_dir.Path, "over.snap");
        File.WriteAllBytes(queued, new byte[4096]);
        File.WriteAllBytes(over, new byte[4096]);
        using var reclaimer = new FileReclaimer("test-reclaim", maxQueued: 1);
        Assert.True(reclaimer.Delete(big));
        WaitUntil(() => reclaimer.Queued == 0); // the big one in hand for seconds

        Assert.True(reclaimer.Delete(queued));
        Assert.True(reclaimer.Delete(over));

        Assert.Equal(1, reclaimer.Queued);
        Assert.True(File.Exists(queued + FileReclaimer.Suffix));
        Assert.False(File.Exists(over) || File.Exists(over + FileReclaimer.Suffix));
        Assert.Equal(1, reclaimer.DeletedAtOnce);
    }

    [Fact]
    public void Bounds_outside_their_limits_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new FileReclaimer("test-reclaim", maxQueued: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FileReclaimer("test-reclaim", maxQueued: FileReclaimer.MaxQueued + 1));
        Assert.Throws<ArgumentException>(() => new FileReclaimer(""));
    }

    [Fact]
    public void A_removed_segment_is_gone_from_its_name_and_a_start_takes_up_what_an_earlier_run_left_aside()
    {
        using var reclaimer = new FileReclaimer("test-reclaim");
        string baseName = Path.Combine(_dir.Path, "log");
        WriteSparse(baseName + ".9" + FileReclaimer.Suffix, FileReclaimer.StepBytes + 1); // an earlier run's, unfinished
        for (int segment = 0; segment < 3; segment++) File.WriteAllBytes($"{baseName}.{segment}", new byte[8192]);

        using (var device = new DirectLogDevice(baseName, recover: true, reclaimer: reclaimer))
        {
            Assert.Equal(0, device.StartSegment); // the file aside is no segment
            Assert.Equal(2, device.EndSegment);
            device.RemoveSegment(0);
            Assert.False(File.Exists(baseName + ".0"));
            Assert.True(reclaimer.WaitIdle(Bound));
        }

        Assert.Equal(2, reclaimer.Reclaimed);
        Assert.Equal(FileReclaimer.StepBytes + 1 + 8192, reclaimer.ReclaimedBytes);
        Assert.Equal(["log.1", "log.2"], Directory.EnumerateFiles(_dir.Path).Select(Path.GetFileName).Order());
    }

    private static void WriteSparse(string path, long bytes)
    {
        using var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write);
        RandomAccess.SetLength(file, bytes);
    }

    private static void WaitUntil(Func<bool> condition)
    {
        long deadline = Environment.TickCount64 + (long)Bound.TotalMilliseconds;
        while (!condition())
        {
            Assert.True(Environment.TickCount64 < deadline, "not within the bound");
            Thread.Sleep(1);
        }
    }
}
