using System.Globalization;

namespace Switch.LoadGen;

/// <summary>
/// The journal's group commits during a run, from the switch's /metrics (the operator HTTP API): the
/// <c>switch_journal_commit_seconds</c> histogram and <c>switch_journal_events_committed_total</c>, read before and
/// after the measured window. A closed loop of unary calls waits on these commits, so their rate, size and latency say
/// whether the loop is bound by the disk's write latency or by CPU.
/// </summary>
public sealed record JournalCommits(long Commits, long Events, double Seconds, IReadOnlyList<(double UpperSeconds, long Count)> Buckets)
{
    /// <summary>Parses the Prometheus text exposition; null when the journal's metrics are not in it.</summary>
    public static JournalCommits? Parse(string metrics)
    {
        long commits = -1, events = -1;
        double seconds = -1;
        var buckets = new List<(double, long)>();
        foreach (string raw in metrics.Split('\n'))
        {
            string line = raw.Trim();
            if (line.StartsWith("switch_journal_commit_seconds_count ", StringComparison.Ordinal)) commits = (long)Value(line);
            else if (line.StartsWith("switch_journal_commit_seconds_sum ", StringComparison.Ordinal)) seconds = Value(line);
            else if (line.StartsWith("switch_journal_events_committed_total ", StringComparison.Ordinal)) events = (long)Value(line);
            else if (line.StartsWith("switch_journal_commit_seconds_bucket{le=\"", StringComparison.Ordinal))
            {
                int start = line.IndexOf('"') + 1;
                string le = line[start..line.IndexOf('"', start)];
                double upper = le == "+Inf" ? double.PositiveInfinity : double.Parse(le, CultureInfo.InvariantCulture);
                buckets.Add((upper, (long)Value(line)));
            }
        }
        return commits < 0 || events < 0 || seconds < 0 ? null : new JournalCommits(commits, events, seconds, buckets);
    }

    private static double Value(string line) => double.Parse(line[(line.LastIndexOf(' ') + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture);

    /// <summary>What happened between two readings (cumulative counters and buckets).</summary>
    public JournalCommits Since(JournalCommits before) => new(Commits - before.Commits, Events - before.Events, Seconds - before.Seconds,
        Buckets.Select(b => (b.UpperSeconds, b.Count - before.Buckets.FirstOrDefault(x => x.UpperSeconds == b.UpperSeconds).Count)).ToList());

    /// <summary>The upper bound of the bucket holding the <paramref name="quantile"/> commit (the histogram's resolution).</summary>
    public double QuantileAtMostSeconds(double quantile)
    {
        long rank = (long)Math.Ceiling(quantile * Commits);
        foreach (var (upper, count) in Buckets.OrderBy(b => b.UpperSeconds))
        {
            if (count >= rank) return upper;
        }
        return double.PositiveInfinity;
    }

    /// <summary>One line for the report: commits a second, events a commit, mean and bucketed p50/p99/p99.9/max latency
    /// (the tail is what a burst of the disk's other writes shows in: an answer waits for its commit).</summary>
    public string Line(double runSeconds) => Commits <= 0 ? "no commits" : string.Create(CultureInfo.InvariantCulture,
        $"{Commits} commits ({Commits / runSeconds:F0}/s), {(double)Events / Commits:F1} events a commit, commit mean {Seconds * 1e3 / Commits:F2} ms, " +
        $"p50 <= {Bound(QuantileAtMostSeconds(0.5))}, p99 <= {Bound(QuantileAtMostSeconds(0.99))}, p99.9 <= {Bound(QuantileAtMostSeconds(0.999))}, " +
        $"max <= {Bound(QuantileAtMostSeconds(1))}");

    private static string Bound(double seconds) => double.IsPositiveInfinity(seconds) ? "+Inf" : (seconds * 1e3).ToString("0.###", CultureInfo.InvariantCulture) + " ms";
}
