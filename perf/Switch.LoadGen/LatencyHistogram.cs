using System.Diagnostics;
using System.Numerics;

namespace Switch.LoadGen;

/// <summary>
/// A log-bucketed latency histogram in microseconds (HDR-like). Values below 256 us are counted exactly; above,
/// each power of two is split into 128 equal sub-buckets, so a bucket is at most 1/128 of its values wide and a
/// reported percentile (the bucket's midpoint) is within 0.4% of the true value. Values up to 2^36 us (19 hours)
/// are tracked; larger ones are clamped into the last bucket (the exact maximum is kept apart). Recording is a
/// few shifts and an increment: no allocation, no lock (one histogram per thread, merged afterwards).
/// </summary>
public sealed class LatencyHistogram
{
    private const int ExactBits = 8;                       // 0..255 us exact
    private const int SubBucketBits = 7;                   // 128 sub-buckets per power of two above that
    private const int SubBuckets = 1 << SubBucketBits;
    private const int MaxPower = 36;                       // 2^36 us ~ 19 h
    public const long HighestTrackableUs = (1L << MaxPower) - 1;
    /// <summary>Relative error bound of a reported value (half a bucket over the bucket's lowest value).</summary>
    public const double RelativePrecision = 1.0 / (2 * SubBuckets);
    public const int BucketCount = (1 << ExactBits) + (MaxPower - ExactBits) * SubBuckets;

    private readonly long[] _counts = new long[BucketCount];

    public long Count { get; private set; }
    public long MaxUs { get; private set; }
    public long MinUs { get; private set; } = long.MaxValue;
    public double SumUs { get; private set; }
    public double MeanUs => Count == 0 ? 0 : SumUs / Count;

    public void Record(long valueUs)
    {
        if (valueUs < 0) valueUs = 0; // A clock step backwards; never a negative latency.
        _counts[IndexOf(Math.Min(valueUs, HighestTrackableUs))]++;
        Count++;
        SumUs += valueUs;
        if (valueUs > MaxUs) MaxUs = valueUs;
        if (valueUs < MinUs) MinUs = valueUs;
    }

    internal static int IndexOf(long valueUs)
    {
        Debug.Assert(valueUs is >= 0 and <= HighestTrackableUs);
        if (valueUs < 1 << ExactBits) return (int)valueUs;
        int power = 63 - BitOperations.LeadingZeroCount((ulong)valueUs); // >= ExactBits
        int sub = (int)(valueUs >> (power - SubBucketBits)) & (SubBuckets - 1);
        return (1 << ExactBits) + (power - ExactBits) * SubBuckets + sub;
    }

    /// <summary>The lowest value of a bucket and its width.</summary>
    internal static (long LowUs, long WidthUs) BucketOf(int index)
    {
        if (index < 1 << ExactBits) return (index, 1);
        int power = (index - (1 << ExactBits)) / SubBuckets + ExactBits;
        int sub = (index - (1 << ExactBits)) % SubBuckets;
        long width = 1L << (power - SubBucketBits);
        return ((1L << power) + sub * width, width);
    }

    /// <summary>The value at quantile q (0..1]: the midpoint of the bucket holding the ceil(q*count)-th value,
    /// within the recorded minimum and maximum (the last one is the exact maximum). 0 when empty.</summary>
    public long ValueAt(double q)
    {
        if (Count == 0) return 0;
        if (q is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(q), q, "a quantile in [0, 1]");
        long rank = Math.Max(1, (long)Math.Ceiling(q * Count));
        if (rank >= Count) return MaxUs; // The largest value is kept exactly.
        long seen = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                (long low, long width) = BucketOf(i);
                long mid = low + (width - 1) / 2;
                return Math.Clamp(mid, MinUs, MaxUs);
            }
        }
        return MaxUs;
    }

    /// <summary>Adds another histogram's counts: the same as having recorded its values here.</summary>
    public void Add(LatencyHistogram other)
    {
        if (other.Count == 0) return;
        long[] theirs = other._counts;
        for (int i = 0; i < _counts.Length; i++) _counts[i] += theirs[i];
        Count += other.Count;
        SumUs += other.SumUs;
        MaxUs = Math.Max(MaxUs, other.MaxUs);
        MinUs = Math.Min(MinUs, other.MinUs);
    }

    public void Reset()
    {
        if (Count == 0) return;
        Array.Clear(_counts);
        Count = 0;
        SumUs = 0;
        MaxUs = 0;
        MinUs = long.MaxValue;
    }

    public LatencySummary Summary() => new(Count, ValueAt(0.50), ValueAt(0.90), ValueAt(0.99), ValueAt(0.999), Count == 0 ? 0 : MaxUs, Math.Round(MeanUs, 1));
}

/// <summary>Latency percentiles in microseconds.</summary>
public sealed record LatencySummary(long Count, long P50Us, long P90Us, long P99Us, long P999Us, long MaxUs, double MeanUs);
