using System.Diagnostics;
using Prometheus;
using Switch.Engine.Pipeline;
using Switch.Grpc;

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

/// <summary>gRPC calls by the status they ended with, per port; each child resolved once (an array index per call).</summary>
public sealed class GrpcMetrics
{
    private readonly Counter.Child[] _byCode;

    public GrpcMetrics(Counter calls, string port)
    {
        StatusCode[] codes = Enum.GetValues<StatusCode>();
        _byCode = new Counter.Child[(int)codes.Max() + 1];
        foreach (StatusCode code in codes) _byCode[(int)code] = calls.WithLabels(port, AdminWebServer.CodeName(code));
    }

    public static Counter Family(IMetricFactory factory) =>
        factory.CreateCounter("switch_grpc_calls_total", "gRPC calls served, by port (institution, admin) and the status they ended with.", ["port", "code"]);

    public void Completed(StatusCode code)
    {
        if ((uint)code < (uint)_byCode.Length) _byCode[(int)code].Inc();
    }
}
