using System.Diagnostics;
using Switch.Host.Cluster;

namespace Switch.Host.Tests.Cluster;

/// <summary>A node's graceful stop waits for each part at most its limit: one that never finishes is named in the log,
/// with why leaving it is safe, and the stop goes on; one that finishes (or fails) is waited for as before.</summary>
public sealed class StopPartTests
{
    [Fact]
    public async Task A_part_that_never_finishes_is_logged_by_name_and_left_after_its_limit()
    {
        var errors = new StringWriter();
        var never = new TaskCompletionSource();
        var waited = Stopwatch.StartNew();
        bool finished = await StopPart.WaitAsync(new Log(TextWriter.Null, errors), "the engine (stop snapshot)", () => never.Task, 200);
        Assert.False(finished);
        // The runtime's timers count milliseconds of a coarser clock than the Stopwatch's: by it one fired after 199 ms in CI.
        Assert.True(waited.ElapsedMilliseconds >= 195, $"left after {waited.ElapsedMilliseconds} ms, before its limit");
        string line = errors.ToString();
        Assert.Contains("event=stop_part_abandoned", line);
        Assert.Contains("part=\"the engine (stop snapshot)\"", line);
        Assert.Contains("limit_ms=200", line);
        Assert.Contains("a stop without its snapshot loses nothing", line);
    }

    [Fact]
    public async Task A_part_that_blocks_its_caller_before_it_awaits_is_still_left_after_its_limit()
    {
        // As an engine's synchronous close: blocks, then returns a task. Called on the caller's thread, it held the wait.
        using var release = new ManualResetEventSlim();
        var errors = new StringWriter();
        // Blocks 5 s at most: a wait it held would see it finish, not leave it.
        bool finished = await StopPart.WaitAsync(new Log(TextWriter.Null, errors), "blocking", () => { release.Wait(5_000); return Task.CompletedTask; }, 200);
        Assert.False(finished, "the wait was held by the blocking part");
        release.Set();
        Assert.Contains("part=blocking", errors.ToString());
    }

    [Fact]
    public async Task A_part_that_finishes_or_fails_in_time_is_waited_for_and_nothing_is_logged()
    {
        var errors = new StringWriter();
        var log = new Log(TextWriter.Null, errors);
        Assert.True(await StopPart.WaitAsync(log, "quick", () => Task.Delay(10), 60_000));
        var failure = await Assert.ThrowsAsync<IOException>(() => StopPart.WaitAsync(log, "failing", () => Task.FromException(new IOException("disk gone")), 60_000));
        Assert.Equal("disk gone", failure.Message);
        Assert.Equal("", errors.ToString());
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => StopPart.WaitAsync(log, "no limit", () => Task.CompletedTask, 0));
    }
}
