using System.Diagnostics;
using HdrHistogram;

namespace Switch.Telemetry;

/// <summary>How finely a <see cref="LatencyHistogram"/> tells values apart.</summary>
public enum LatencyPrecision
{
    /// <summary>3 significant digits (a reported value within 0.1%), 64-bit counts, about 230 KB: a run's totals.</summary>
    Fine,
    /// <summary>1 significant digit (within 6.25%), 32-bit counts, about 2 KB: one of many small windows (a second of
    /// one endpoint). A window holds at most 2^31 - 1 values in one bucket.</summary>
    Coarse,
}

/// <summary>
/// Latencies in microseconds from 0 to <see cref="HighestTrackableUs"/> (19 hours), on HdrHistogram's counts: the
/// field's standard, and cheaper to record into than the project's own histograms were (see
/// perf/Switch.Benchmarks/Latency). Recording allocates nothing and takes no lock: one writer, or a lock around it
/// (merge per-thread histograms with <see cref="Add"/>). A negative value (a clock stepped back) counts as 0, a larger
/// one as the highest; the exact minimum, maximum and sum are kept beside the counts.
/// </summary>
public sealed class LatencyHistogram
{
    public const long HighestTrackableUs = (1L << 36) - 1;

    private readonly HistogramBase _counts;

    public LatencyHistogram(LatencyPrecision precision = LatencyPrecision.Fine)
    {
        Precision = precision;
        _counts = precision switch
        {
            LatencyPrecision.Fine => new LongHistogram(HighestTrackableUs, 3),
            LatencyPrecision.Coarse => new IntHistogram(HighestTrackableUs, 1),
            _ => throw new ArgumentOutOfRangeException(nameof(precision), precision, "no such precision"),
        };
    }

    public LatencyPrecision Precision { get; }

    /// <summary>The most a reported value differs from the one recorded, relative to it.</summary>
    public static double RelativePrecision(LatencyPrecision precision) => precision == LatencyPrecision.Fine ? 1.0 / 1024 : 1.0 / 16;

    public long Count => _counts.TotalCount;
    public long MaxUs { get; private set; }
    public long MinUs { get; private set; } = long.MaxValue;
    public double SumUs { get; private set; }
    public double MeanUs => Count == 0 ? 0 : SumUs / Count;

    public void Record(long valueUs)
    {
        if (valueUs < 0) valueUs = 0;
        _counts.RecordValue(Math.Min(valueUs, HighestTrackableUs));
        SumUs += valueUs;
        if (valueUs > MaxUs) MaxUs = valueUs;
        if (valueUs < MinUs) MinUs = valueUs;
    }

    /// <summary>The value at quantile q (0..1]: the ceil(q*count)-th smallest value recorded, as its bucket tells it,
    /// within the recorded minimum and maximum (the largest is the exact maximum). 0 when empty.</summary>
    public long ValueAt(double q)
    {
        if (q is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(q), q, "a quantile in [0, 1]");
        long count = Count;
        if (count == 0) return 0;
        long rank = Math.Max(1, (long)Math.Ceiling(q * count));
        if (rank >= count) return MaxUs;
        // HdrHistogram turns a percentile into a rank by rounding; a quarter below the rank lands on it whether the
        // rounding is to nearest or up, whatever the floating-point error.
        long value = _counts.GetValueAtPercentile(100.0 * (rank - 0.25) / count);
        Debug.Assert(value >= 0);
        return Math.Clamp(value, MinUs, MaxUs);
    }

    /// <summary>Adds another histogram's values: the same as having recorded them here.</summary>
    public void Add(LatencyHistogram other)
    {
        // Same buckets only: HdrHistogram adds those count by count (a different layout it re-records value by value).
        if (other.Precision != Precision) throw new ArgumentException($"latency histogram: cannot add {other.Precision} counts to {Precision} ones", nameof(other));
        if (other.Count == 0) return;
        _counts.Add(other._counts);
        SumUs += other.SumUs;
        MaxUs = Math.Max(MaxUs, other.MaxUs);
        MinUs = Math.Min(MinUs, other.MinUs);
    }

    public void Reset()
    {
        if (Count == 0) return;
        _counts.Reset();
        SumUs = 0;
        MaxUs = 0;
        MinUs = long.MaxValue;
    }

    public LatencySummary Summary() =>
        new(Count, ValueAt(0.50), ValueAt(0.90), ValueAt(0.99), ValueAt(0.999), Count == 0 ? 0 : MaxUs, Math.Round(MeanUs, 1));
}

/// <summary>Latency percentiles in microseconds.</summary>
public sealed record LatencySummary(long Count, long P50Us, long P90Us, long P99Us, long P999Us, long MaxUs, double MeanUs);
