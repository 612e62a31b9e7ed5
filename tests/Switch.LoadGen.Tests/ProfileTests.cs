namespace Switch.LoadGen.Tests;

public sealed class ProfileTests
{
    /// <summary>How many intended send times fall in [from, to).</summary>
    private static long CountIn(RateProfile p, double from, double to) => p.SendTimes().LongCount(t => t >= from && t < to);

    private static void Near(double expected, double actual, double relative, string what) =>
        Assert.True(Math.Abs(actual - expected) <= Math.Max(2, expected * relative), $"{what}: expected about {expected}, got {actual}");

    [Fact]
    public void Constant_sends_rate_times_duration_evenly_spaced()
    {
        var p = new ConstantProfile(2_000, 3);
        double[] times = p.SendTimes().ToArray();
        Assert.Equal(6_000, times.Length);
        Assert.Equal(6_000, p.CountRequests());
        Assert.All(times.Zip(times.Skip(1)), pair => Assert.Equal(1.0 / 2_000, pair.Second - pair.First, 9));
    }

    [Fact]
    public void Ramp_rises_linearly_from_one_rate_to_the_other()
    {
        var p = new RampProfile(1_000, 5_000, 4);
        Assert.Equal(1_000, p.RateAt(0));
        Assert.Equal(3_000, p.RateAt(2));
        // Second k holds about the mean of the rate over it.
        for (int k = 0; k < 4; k++) Near(1_000 + 1_000 * (k + 0.5), CountIn(p, k, k + 1), 0.01, $"second {k}");
        Near(12_000, p.CountRequests(), 0.01, "total");
    }

    [Fact]
    public void Step_holds_each_rate_for_its_duration()
    {
        StepProfile p = StepProfile.Parse("500:2s, 3000:1s ,1000:1500ms");
        Assert.Equal(4.5, p.DurationSeconds, 9);
        Near(1_000, CountIn(p, 0, 2), 0.005, "first step");
        Near(3_000, CountIn(p, 2, 3), 0.005, "second step");
        Near(1_500, CountIn(p, 3, 4.5), 0.005, "third step");
        Assert.Throws<ArgumentException>(() => StepProfile.Parse("500"));
        Assert.Throws<ArgumentException>(() => StepProfile.Parse("0:1s"));
        Assert.Throws<ArgumentException>(() => StepProfile.Parse("100:-1s"));
    }

    [Fact]
    public void Surge_goes_from_base_to_ten_times_within_the_rise_holds_and_falls_back()
    {
        SurgeProfile p = SurgeProfile.Shaped(1_000, 20, factor: 10, riseSeconds: 2, fallSeconds: 2);
        Assert.Equal(20, p.DurationSeconds, 9);
        Assert.Equal(4, p.BeforeSeconds, 9);   // 20% at base
        Assert.Equal(6, p.HoldSeconds, 9);     // 30% at the peak
        Assert.Equal(12, p.PeakEndSeconds, 9);
        Near(4_000, CountIn(p, 0, 4), 0.005, "base before");
        Near(11_000, CountIn(p, 4, 6), 0.01, "rise (mean of base and peak)");
        Near(60_000, CountIn(p, 6, 12), 0.005, "hold at 10x");
        Near(11_000, CountIn(p, 12, 14), 0.01, "fall");
        Near(6_000, CountIn(p, 14, 20), 0.005, "base after");
        Assert.Equal(10_000, p.RateAt(9));
        Assert.Throws<ArgumentException>(() => SurgeProfile.Shaped(1_000, 5)); // too short for a 2 s rise and fall
        Assert.Throws<ArgumentException>(() => SurgeProfile.Shaped(1_000, 20, factor: 0.5));
    }

    [Theory]
    [InlineData("30s", 30)]
    [InlineData("2m", 120)]
    [InlineData("250ms", 0.25)]
    [InlineData("7", 7)]
    public void Durations_parse_with_units(string text, double seconds) => Assert.Equal(seconds, Durations.ParseSeconds(text, "d"), 9);

    [Fact]
    public void Wrong_rates_and_durations_are_refused_naming_them()
    {
        Assert.Contains("rate", Assert.Throws<ArgumentException>(() => new ConstantProfile(0, 1)).Message);
        Assert.Contains("duration", Assert.Throws<ArgumentException>(() => new ConstantProfile(10, 0)).Message);
        Assert.Contains("duration", Assert.Throws<ArgumentException>(() => Durations.ParseSeconds("soon", "duration")).Message);
    }
}
