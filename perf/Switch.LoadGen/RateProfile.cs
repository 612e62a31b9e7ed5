using System.Globalization;

namespace Switch.LoadGen;

/// <summary>A target rate over time (requests per second at t seconds from the start), for the open loop.</summary>
public abstract record RateProfile
{
    /// <summary>No profile asks for more: the generator's own bound, far above what one box can drive.</summary>
    public const double MaxRatePerSecond = 2_000_000;
    public const double MinRatePerSecond = 1;
    public const double MaxDurationSeconds = 24 * 3600;

    public abstract double DurationSeconds { get; }

    /// <summary>The target rate at t (0 &lt;= t &lt; DurationSeconds).</summary>
    public abstract double RateAt(double tSeconds);

    public abstract string Describe();

    protected static void CheckRate(string name, double perSecond)
    {
        if (!(perSecond is >= MinRatePerSecond and <= MaxRatePerSecond))
        {
            throw new ArgumentException($"{name}: a rate from {MinRatePerSecond} to {MaxRatePerSecond:F0} per second, got {perSecond}");
        }
    }

    protected static void CheckSeconds(string name, double seconds, double min = 0.001)
    {
        if (!(seconds >= min && seconds <= MaxDurationSeconds))
        {
            throw new ArgumentException($"{name}: a duration from {min} s to {MaxDurationSeconds} s, got {seconds}");
        }
    }

    /// <summary>The intended send times, in seconds from the start: request k+1 follows k by 1/rate(t_k), so
    /// the number sent up to t is the integral of the rate. Deterministic: no random arrivals.</summary>
    public IEnumerable<double> SendTimes()
    {
        double t = 0;
        double end = DurationSeconds - 1e-9; // Summing 1/rate drifts below the exact times: 10 x 0.01 < 0.1.
        while (t < end)
        {
            yield return t;
            t += 1.0 / RateAt(t);
        }
    }

    /// <summary>How many requests the schedule holds (the integral of the rate, to within one request per segment).</summary>
    public long CountRequests()
    {
        long n = 0;
        foreach (double _ in SendTimes()) n++;
        return n;
    }
}

public sealed record ConstantProfile : RateProfile
{
    public ConstantProfile(double ratePerSecond, double durationSeconds)
    {
        CheckRate("rate", ratePerSecond);
        CheckSeconds("duration", durationSeconds);
        RatePerSecond = ratePerSecond;
        Seconds = durationSeconds;
    }

    public double RatePerSecond { get; }
    public double Seconds { get; }
    public override double DurationSeconds => Seconds;
    public override double RateAt(double tSeconds) => RatePerSecond;
    public override string Describe() => $"constant {RatePerSecond:F0}/s for {Seconds:0.###} s";
}

/// <summary>From one rate to another, linearly, over the duration.</summary>
public sealed record RampProfile : RateProfile
{
    public RampProfile(double fromPerSecond, double toPerSecond, double durationSeconds)
    {
        CheckRate("ramp from", fromPerSecond);
        CheckRate("ramp to", toPerSecond);
        CheckSeconds("duration", durationSeconds);
        FromPerSecond = fromPerSecond;
        ToPerSecond = toPerSecond;
        Seconds = durationSeconds;
    }

    public double FromPerSecond { get; }
    public double ToPerSecond { get; }
    public double Seconds { get; }
    public override double DurationSeconds => Seconds;
    public override double RateAt(double tSeconds) => FromPerSecond + (ToPerSecond - FromPerSecond) * Math.Clamp(tSeconds / Seconds, 0, 1);
    public override string Describe() => $"ramp {FromPerSecond:F0}/s -> {ToPerSecond:F0}/s over {Seconds:0.###} s";
}

/// <summary>A sequence of (rate, duration) steps.</summary>
public sealed record StepProfile : RateProfile
{
    public const int MaxSteps = 1000;

    public StepProfile(IReadOnlyList<(double RatePerSecond, double Seconds)> steps)
    {
        if (steps.Count is 0 or > MaxSteps) throw new ArgumentException($"steps: 1 to {MaxSteps} steps, got {steps.Count}");
        for (int i = 0; i < steps.Count; i++)
        {
            CheckRate($"steps[{i}] rate", steps[i].RatePerSecond);
            CheckSeconds($"steps[{i}] duration", steps[i].Seconds);
        }
        Steps = steps.ToArray();
        CheckSeconds("steps total", Steps.Sum(s => s.Seconds));
    }

    public IReadOnlyList<(double RatePerSecond, double Seconds)> Steps { get; }
    public override double DurationSeconds => Steps.Sum(s => s.Seconds);

    public override double RateAt(double tSeconds)
    {
        double end = 0;
        foreach ((double rate, double seconds) in Steps)
        {
            end += seconds;
            if (tSeconds < end) return rate;
        }
        return Steps[^1].RatePerSecond;
    }

    public override string Describe() => "step " + string.Join(", ", Steps.Select(s => $"{s.RatePerSecond:F0}/s x {s.Seconds:0.###} s"));

    /// <summary>"1000:5s,2000:10s" (the "s" is optional).</summary>
    public static StepProfile Parse(string text)
    {
        var steps = new List<(double, double)>();
        foreach (string part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            string[] pair = part.Split(':');
            if (pair.Length != 2 || !double.TryParse(pair[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double rate))
            {
                throw new ArgumentException($"steps: '{part}' is not RATE:DURATION (e.g. 1000:5s)");
            }
            steps.Add((rate, Durations.ParseSeconds(pair[1], "steps duration")));
        }
        return new StepProfile(steps);
    }
}

/// <summary>
/// The Double-11 surge: the base rate, then up to factor x base within riseSeconds, held, back down within
/// fallSeconds, and the base rate again until the end.
/// </summary>
public sealed record SurgeProfile : RateProfile
{
    public const double MaxFactor = 100;

    public SurgeProfile(double basePerSecond, double factor, double beforeSeconds, double riseSeconds, double holdSeconds, double fallSeconds, double afterSeconds)
    {
        CheckRate("base rate", basePerSecond);
        if (!(factor is >= 1 and <= MaxFactor)) throw new ArgumentException($"surge factor: 1 to {MaxFactor}, got {factor}");
        CheckRate("surge peak", basePerSecond * factor);
        CheckSeconds("surge before", beforeSeconds, 0);
        CheckSeconds("surge rise", riseSeconds, 0);
        CheckSeconds("surge hold", holdSeconds);
        CheckSeconds("surge fall", fallSeconds, 0);
        CheckSeconds("surge after", afterSeconds, 0);
        BasePerSecond = basePerSecond;
        Factor = factor;
        BeforeSeconds = beforeSeconds;
        RiseSeconds = riseSeconds;
        HoldSeconds = holdSeconds;
        FallSeconds = fallSeconds;
        AfterSeconds = afterSeconds;
    }

    public double BasePerSecond { get; }
    public double Factor { get; }
    public double BeforeSeconds { get; }
    public double RiseSeconds { get; }
    public double HoldSeconds { get; }
    public double FallSeconds { get; }
    public double AfterSeconds { get; }
    public double PeakPerSecond => BasePerSecond * Factor;
    /// <summary>When the peak ends and the fall begins.</summary>
    public double PeakEndSeconds => BeforeSeconds + RiseSeconds + HoldSeconds;
    public override double DurationSeconds => PeakEndSeconds + FallSeconds + AfterSeconds;

    /// <summary>Shaped from a total duration: 20% at base, a rise of riseSeconds, 30% held at the peak, a fall
    /// of fallSeconds, the rest at base (so the recovery after the peak is seen).</summary>
    public static SurgeProfile Shaped(double basePerSecond, double durationSeconds, double factor = 10, double riseSeconds = 2, double fallSeconds = 2)
    {
        CheckSeconds("duration", durationSeconds);
        double before = durationSeconds * 0.2;
        double hold = durationSeconds * 0.3;
        double after = durationSeconds - before - riseSeconds - hold - fallSeconds;
        if (after < 0) throw new ArgumentException($"duration: a surge with {riseSeconds} s rise and {fallSeconds} s fall needs at least {(riseSeconds + fallSeconds) / 0.5:0.#} s, got {durationSeconds}");
        return new SurgeProfile(basePerSecond, factor, before, riseSeconds, hold, fallSeconds, after);
    }

    public override double RateAt(double t)
    {
        double peak = PeakPerSecond;
        if (t < BeforeSeconds) return BasePerSecond;
        t -= BeforeSeconds;
        if (t < RiseSeconds) return BasePerSecond + (peak - BasePerSecond) * t / RiseSeconds;
        t -= RiseSeconds;
        if (t < HoldSeconds) return peak;
        t -= HoldSeconds;
        if (t < FallSeconds) return peak - (peak - BasePerSecond) * t / FallSeconds;
        return BasePerSecond;
    }

    public override string Describe() =>
        $"surge base {BasePerSecond:F0}/s x {Factor:0.#} (peak {PeakPerSecond:F0}/s): {BeforeSeconds:0.#} s base, {RiseSeconds:0.#} s rise, " +
        $"{HoldSeconds:0.#} s hold, {FallSeconds:0.#} s fall, {AfterSeconds:0.#} s base";
}

public static class Durations
{
    /// <summary>"30s", "2m", "1500ms", "10" (seconds).</summary>
    public static double ParseSeconds(string text, string name)
    {
        text = text.Trim();
        double scale = 1;
        if (text.EndsWith("ms", StringComparison.Ordinal)) { scale = 0.001; text = text[..^2]; }
        else if (text.EndsWith('s')) text = text[..^1];
        else if (text.EndsWith('m')) { scale = 60; text = text[..^1]; }
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || value < 0 || double.IsInfinity(value))
        {
            throw new ArgumentException($"{name}: not a duration (e.g. 30s, 2m, 500ms): '{text}'");
        }
        return value * scale;
    }
}
