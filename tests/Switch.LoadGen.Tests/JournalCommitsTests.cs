namespace Switch.LoadGen.Tests;

public sealed class JournalCommitsTests
{
    private static string Metrics(long commits, double seconds, long events, long underOneMs) => $$"""
        # HELP switch_journal_commit_seconds The journal's group commits.
        # TYPE switch_journal_commit_seconds histogram
        switch_journal_commit_seconds_sum {{seconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}}
        switch_journal_commit_seconds_count {{commits}}
        switch_journal_commit_seconds_bucket{le="0.001"} {{underOneMs}}
        switch_journal_commit_seconds_bucket{le="0.0025"} {{commits - 1}}
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
        Assert.Equal(0.0025, run.QuantileAtMostSeconds(0.99));
        Assert.Equal("1000 commits (100/s), 30.0 events a commit, commit mean 2.00 ms, p50 <= 1 ms, p99 <= 2.5 ms", run.Line(10));
    }

    [Fact]
    public void Metrics_without_the_journal_give_nothing() =>
        Assert.Null(JournalCommits.Parse("switch_journal_behind_events 0\n"));
}
