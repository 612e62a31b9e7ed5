using Switch.Telemetry;

namespace Switch.LoadGen.Tests;

public sealed class HistogramTests
{
    private static readonly double[] Quantiles = [0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0];

    private static long Exact(long[] sorted, double q) => sorted[Math.Max(1, (long)Math.Ceiling(q * sorted.Length)) - 1];

    [Theory]
    [InlineData(1, LatencyPrecision.Fine)]
    [InlineData(7, LatencyPrecision.Fine)]
    [InlineData(42, LatencyPrecision.Fine)]
    [InlineData(1, LatencyPrecision.Coarse)]
    [InlineData(7, LatencyPrecision.Coarse)]
    public void Percentiles_are_within_the_stated_precision_of_a_sorted_array(int seed, LatencyPrecision precision)
    {
        var random = new Random(seed);
        var h = new LatencyHistogram(precision);
        // Log-uniform from 1 us to ~60 s: every range of buckets is exercised.
        long[] values = Enumerable.Range(0, 200_000).Select(_ => (long)Math.Exp(random.NextDouble() * Math.Log(60_000_000))).ToArray();
        foreach (long v in values) h.Record(v);
        Array.Sort(values);
        double relative = LatencyHistogram.RelativePrecision(precision);
        foreach (double q in Quantiles)
        {
            long exact = Exact(values, q);
            long got = h.ValueAt(q);
            Assert.True(Math.Abs(got - exact) <= exact * relative + 1, $"q {q}: histogram {got}, exact {exact}");
        }
        Assert.Equal(values[^1], h.MaxUs);
        Assert.Equal(values[0], h.MinUs);
        Assert.Equal(values.Length, h.Count);
        Assert.True(LatencyHistogram.RelativePrecision(LatencyPrecision.Fine) <= 0.001);
    }

    [Fact]
    public void Small_values_are_exact_and_huge_ones_are_clamped_but_the_max_is_kept()
    {
        var h = new LatencyHistogram();
        for (long v = 0; v < 256; v++) h.Record(v);
        Assert.Equal(127, h.ValueAt(0.5));
        Assert.Equal(255, h.ValueAt(1.0));
        h.Record(LatencyHistogram.HighestTrackableUs * 4);
        Assert.Equal(LatencyHistogram.HighestTrackableUs * 4, h.MaxUs);
        Assert.Equal(LatencyHistogram.HighestTrackableUs * 4, h.ValueAt(1.0));
        h.Record(-5); // A clock step backwards counts as 0, never negative.
        Assert.Equal(0, h.MinUs);
    }

    [Fact]
    public void Histograms_of_different_precision_do_not_add()
    {
        var fine = new LatencyHistogram(LatencyPrecision.Fine);
        var coarse = new LatencyHistogram(LatencyPrecision.Coarse);
        coarse.Record(1_000);
        Assert.Throws<ArgumentException>(() => fine.Add(coarse));
        Assert.Equal(0, fine.Count);
    }

    [Fact]
    public void Merging_per_thread_histograms_equals_recording_together()
    {
        var together = new LatencyHistogram();
        var parts = Enumerable.Range(0, 4).Select(_ => new LatencyHistogram()).ToArray();
        Parallel.For(0, 4, t =>
        {
            var random = new Random(100 + t);
            for (int i = 0; i < 50_000; i++) parts[t].Record(random.NextInt64(1, 5_000_000));
        });
        for (int t = 0; t < 4; t++)
        {
            var random = new Random(100 + t);
            for (int i = 0; i < 50_000; i++) together.Record(random.NextInt64(1, 5_000_000));
        }
        var merged = new LatencyHistogram();
        foreach (LatencyHistogram p in parts) merged.Add(p);
        Assert.Equal(together.Count, merged.Count);
        Assert.Equal(together.MaxUs, merged.MaxUs);
        Assert.Equal(together.MinUs, merged.MinUs);
        Assert.Equal(together.SumUs, merged.SumUs);
        foreach (double q in Quantiles) Assert.Equal(together.ValueAt(q), merged.ValueAt(q));
        merged.Reset();
        Assert.Equal(0, merged.Count);
        Assert.Equal(0, merged.ValueAt(0.99));
    }
}
