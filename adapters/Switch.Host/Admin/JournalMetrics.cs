using System.Diagnostics;
using Prometheus;
using Switch.Engine.Pipeline;

namespace Switch.Host.Admin;

/// <summary>The journal's group commits as a histogram (told by the journal thread: one observation per commit).</summary>
public sealed class JournalMetrics : ICommitObserver
{
    // Seconds: an fsync on a fast disk is tens of microseconds, on a slow or busy one tens of milliseconds.
    private static readonly double[] Buckets = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
    private readonly Histogram _commit;
    private readonly Counter _events;

    public JournalMetrics(IMetricFactory factory)
    {
        _commit = factory.CreateHistogram("switch_journal_commit_seconds", "The journal's group commits: how long each took (appended events made durable).",
            new HistogramConfiguration { Buckets = Buckets });
        _events = factory.CreateCounter("switch_journal_events_committed_total", "Input events made durable by the journal's commits since the process started.");
    }

    public void Committed(long elapsedTicks, int events)
    {
        _commit.Observe((double)elapsedTicks / Stopwatch.Frequency);
        _events.Inc(events);
    }
}
