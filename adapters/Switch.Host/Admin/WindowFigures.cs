using Switch.Telemetry;

namespace Switch.Host.Admin;

/// <summary>Counts over a span of seconds, one endpoint or summed over a bank, with a latency histogram (coarse: one
/// per second and endpoint is kept for 15 minutes).</summary>
public sealed class WindowFigures
{
    public long Requests;
    public long Succeeded;
    public long Failed;
    public long TimedOut;
    internal readonly LatencyHistogram Latency = new(LatencyPrecision.Coarse);

    /// <summary>Transactions that got their first answer in the span (final, or unknown at the deadline).</summary>
    public long Answered => Succeeded + Failed + TimedOut;
    /// <summary>Share of the answered that succeeded, 0..1; 0 when none.</summary>
    public double SuccessRate => Answered == 0 ? 0 : (double)Succeeded / Answered;
    public double TimeoutRate => Answered == 0 ? 0 : (double)TimedOut / Answered;
    public long LatencyPercentileUs(double q) => Latency.ValueAt(q);

    public void Clear()
    {
        Requests = Succeeded = Failed = TimedOut = 0;
        Latency.Reset();
    }

    public void Add(WindowFigures other)
    {
        Requests += other.Requests;
        Succeeded += other.Succeeded;
        Failed += other.Failed;
        TimedOut += other.TimedOut;
        Latency.Add(other.Latency);
    }
}
