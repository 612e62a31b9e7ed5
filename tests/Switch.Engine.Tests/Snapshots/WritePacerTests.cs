using System.Diagnostics;
using Switch.Engine.Snapshots;

namespace Switch.Engine.Tests.Snapshots;

/// <summary>The snapshot writer's budget, on a clock the test moves: what it sleeps, not how fast the machine is.</summary>
public sealed class WritePacerTests
{
    private long _now = 1_000_000;

    private WritePacer Pacer(long bytesPerSecond, List<TimeSpan> slept) =>
        new(bytesPerSecond, () => _now, wait =>
        {
            slept.Add(wait);
            _now += (long)(wait.TotalSeconds * Stopwatch.Frequency);
        });

    [Fact]
    public void A_writer_with_no_pause_of_its_own_is_held_to_the_budget()
    {
        var slept = new List<TimeSpan>();
        WritePacer pacer = Pacer(64L << 20, slept);
        for (int i = 0; i < 64; i++) pacer.Wrote(1L << 20); // 64 MiB written instantly

        // 64 MiB at 64 MiB/s: one second in all, a sixty-fourth after each MiB.
        Assert.Equal(64, slept.Count);
        Assert.InRange(pacer.Slept.TotalMilliseconds, 999, 1001);
        Assert.All(slept, s => Assert.InRange(s.TotalMilliseconds, 15.6, 15.7));
    }

    [Fact]
    public void A_writer_that_fell_behind_catches_up_by_at_most_the_credit()
    {
        var slept = new List<TimeSpan>();
        WritePacer pacer = Pacer(1L << 20, slept); // 1 MiB/s: 50 ms of credit is 52,428 bytes
        _now += Stopwatch.Frequency * 10; // ten seconds lost (a busy machine): not ten seconds of burst
        pacer.Wrote(50_000);
        Assert.Empty(slept);
        pacer.Wrote(1L << 20); // beyond the credit: waits for the rest of it
        Assert.Single(slept);
        Assert.InRange(slept[0].TotalMilliseconds, 950, 1000);
    }

    [Fact]
    public void No_budget_never_sleeps_and_a_negative_one_is_refused()
    {
        var slept = new List<TimeSpan>();
        WritePacer pacer = Pacer(0, slept);
        for (int i = 0; i < 1000; i++) pacer.Wrote(1L << 30);
        Assert.Empty(slept);
        Assert.Throws<ArgumentOutOfRangeException>(() => new WritePacer(-1));
    }

    [Fact]
    public void The_engine_refuses_a_budget_out_of_range_naming_it()
    {
        var e = Assert.Throws<ArgumentException>(() => new SnapshotOptions { WriteMiBPerSecond = -1 }.Validate());
        Assert.Contains("writeMiBPerSecond", e.Message);
        new SnapshotOptions { WriteMiBPerSecond = 0 }.Validate();
        new SnapshotOptions { WriteMiBPerSecond = SnapshotOptions.MaxWriteMiBPerSecond }.Validate();
    }
}
