using System.Numerics;

namespace Switch.Host.Admin;

/// <summary>
/// The member report's latency histogram: small, for many cells. Below 256 µs one bucket, then two per power of two
/// (about ±20%) up to 2^26 µs (67 s); longer in the last bucket.
/// </summary>
public static class CellHistogram
{
    private const int FirstExponent = 8, LastExponent = 26;
    public const int Buckets = 2 + (LastExponent - FirstExponent) * 2; // 38

    public static int Index(long us)
    {
        if (us < 1L << FirstExponent) return 0;
        int exponent = 63 - BitOperations.LeadingZeroCount((ulong)us);
        if (exponent >= LastExponent) return Buckets - 1;
        int half = (int)(us >> (exponent - 1)) & 1;
        return 1 + (exponent - FirstExponent) * 2 + half;
    }

    /// <summary>The middle of a bucket's range, in µs.</summary>
    public static long Representative(int index)
    {
        if (index == 0) return (1L << FirstExponent) / 2;
        if (index == Buckets - 1) return 1L << LastExponent;
        int exponent = FirstExponent + (index - 1) / 2;
        long width = 1L << (exponent - 1);
        long low = (1L << exponent) + (index - 1) % 2 * width;
        return low + width / 2;
    }

    /// <summary>The value at quantile q (0..1) of the counts, by each bucket's representative; 0 when there are none.</summary>
    public static long Percentile(long[] counts, double q)
    {
        long total = 0;
        foreach (long c in counts) total += c;
        if (total == 0) return 0;
        long rank = Math.Max(1, (long)Math.Ceiling(q * total));
        long seen = 0;
        for (int i = 0; i < counts.Length; i++)
        {
            seen += counts[i];
            if (seen >= rank) return Representative(i);
        }
        return Representative(counts.Length - 1);
    }
}
