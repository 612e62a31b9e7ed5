namespace Switch.LoadGen.Tests;

public sealed class JournalCommitsTests
{
    private static string Metrics(long commits, double seconds, long events, long underOneMs) => $$"""
        # HELP switch_journal_commit_seconds The journal's group commits.
        # TYPE switch_journal_commit_seconds histogram
        switch_journal_commit_seconds_sum {{seconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}}
        switch_journal_commit_seconds_count {{commits}}
        switch_journal_commit_seconds_bucket{le="0.001"} {{underOneMs}}
        switch_journal_commit_seconds_bucket{le="0.0025"} {{commits - commits / 200}}
        switch_journal_commit_seconds_bucket{le="0.1"} {{commits - commits / 1000}}
        switch_journal_commit_seconds_bucket{le="+Inf"} {{commits}}
        switch_journal_events_committed_total {{events}}
        switch_journal_behind_events 0
        """;

    [Fact]
    public void The_commits_between_two_readings_give_rate_size_and_latency()
    {
        JournalCommits before = JournalCommits.Parse(Metrics(100, 0.2, 1_000, 50))!;
        JournalCommits after = JournalCommits.Parse(Metrics(1_100, 2.2, 31_000, 850))!;
        JournalCommits run = after.Since(before);

        Assert.Equal(1_000, run.Commits);
        Assert.Equal(30_000, run.Events);
        Assert.Equal(0.001, run.QuantileAtMostSeconds(0.5)); // 800 of 1,000 under 1 ms
        Assert.Equal(0.0025, run.QuantileAtMostSeconds(0.99)); // 995 of 1,000
        Assert.Equal(0.1, run.QuantileAtMostSeconds(0.999)); // 999 of 1,000
        Assert.Equal("1000 commits (100/s), 30.0 events a commit, commit mean 2.00 ms, p50 <= 1 ms, p99 <= 2.5 ms, p99.9 <= 100 ms, max <= +Inf",
            run.Line(10));
    }

    [Fact]
    public void Metrics_without_the_journal_give_nothing() =>
        Assert.Null(JournalCommits.Parse("switch_journal_behind_events 0\n"));
}

public sealed class SwitchHeapTests
{
    private static string Metrics(long allocated, long gen0, long gen2, double pause) => $$"""
        # TYPE dotnet_collection_count_total counter
        dotnet_collection_count_total{generation="1"} 3
        dotnet_collection_count_total{generation="0"} {{gen0}}
        dotnet_collection_count_total{generation="2"} {{gen2}}
        dotnet_gc_pause_seconds_total {{pause.ToString(System.Globalization.CultureInfo.InvariantCulture)}}
        dotnet_gc_allocated_bytes_total {{allocated}}
        """;

    [Fact]
    public void The_heap_between_two_readings_gives_bytes_a_transaction_and_collections()
    {
        SwitchHeap run = SwitchHeap.Parse(Metrics(3_000_000_000, 500, 1, 1.5))!.Since(SwitchHeap.Parse(Metrics(1_000_000_000, 100, 1, 0.5))!);

        Assert.Equal(new SwitchHeap(2_000_000_000, 400, 0, 0, 1.0), run);
        Assert.Equal("allocated 2000 bytes/tx (191 MiB/s), collections gen0 400 gen1 0 gen2 0, GC pause 1000 ms (10.00% of the run)",
            run.Line(transactions: 1_000_000, runSeconds: 10));
    }

    [Fact]
    public void Metrics_of_a_switch_without_the_allocation_counter_give_nothing() =>
        Assert.Null(SwitchHeap.Parse("dotnet_gc_pause_seconds_total 1\n"));
}

public sealed class MachineTimesTests
{
    private const string Stat = """
        cpu  1000 20 300 500 40 10 30 100 0 0
        cpu0 500 10 150 250 20 5 15 50 0 0
        intr 12345
        """;

    private const string Later = """
        cpu  1780 20 500 600 50 15 45 190 0 0
        cpu0 890 10 250 300 25 8 22 95 0 0
        """;

    [Fact]
    public void The_machine_between_two_readings_gives_each_share_and_the_memory_handed_back()
    {
        MachineTimes before = MachineTimes.Parse(Stat, "1048576\n")!;
        MachineTimes after = MachineTimes.Parse(Later, "1572864\n")!;
        MachineTimes run = after.Since(before);
        // 1,200 ticks: user 780, system 200, irq 5 + softirq 15, idle 100, iowait 10, steal 90.
        Assert.Equal(new MachineTimes(780, 0, 200, 100, 10, 5, 15, 90, 524288), run);
        Assert.Equal("user 65.0%, system 16.7%, interrupts 1.7%, idle 8.3%, iowait 0.8%, steal 7.5%; free memory handed back to the host 512 MiB",
            run.Line());
        Assert.Equal(run.Line(), MachineTimes.Between(before, after));
        Assert.Null(MachineTimes.Between(null, after)); // a reading missing: no line rather than a wrong one
        Assert.Null(MachineTimes.Between(before, null));
    }

    [Fact]
    public void Without_free_page_reporting_the_line_says_nothing_of_it()
    {
        MachineTimes run = MachineTimes.Parse(Later, null)!.Since(MachineTimes.Parse(Stat, "1048576")!);
        Assert.Equal(-1, run.ReportedKib);
        Assert.DoesNotContain("handed back", run.Line());
    }

    [Theory]
    [InlineData("")]
    [InlineData("cpu0 1 2 3 4 5 6 7 8\n")] // not the all-cores line
    [InlineData("cpu  1 2 3 4 5 6 7\n")] // no steal
    [InlineData("cpu  1 2 x 4 5 6 7 8\n")]
    [InlineData("cpu  1 2 -3 4 5 6 7 8\n")]
    public void A_stat_that_is_not_the_kernels_gives_nothing(string stat) => Assert.Null(MachineTimes.Parse(stat, null));

    [Fact]
    public void This_machine_is_read_where_it_runs_Linux()
    {
        MachineTimes? now = MachineTimes.Read();
        if (!OperatingSystem.IsLinux())
        {
            Assert.Null(now);
            return;
        }
        Assert.NotNull(now);
        Assert.True(now.User + now.System + now.Idle > 0);
    }
}
