using System.Globalization;

namespace Switch.BankSim;

/// <summary>
/// How long the simulated bank takes to execute a request, in milliseconds. Written as text in the
/// configuration and on the command line: <c>0</c>, <c>fixed:5</c>, <c>uniform:1-10</c>, <c>lognormal:5,0.5</c>.
/// </summary>
public abstract record LatencyModel
{
    /// <summary>No sample is ever longer: a bank that takes longer than this is a silent bank, not a slow one.</summary>
    public const double MaxLatencyMs = 60_000;

    /// <summary>Sigma beyond this makes the tail nothing but the clip at <see cref="MaxLatencyMs"/>.</summary>
    public const double MaxSigma = 5;

    public const string Syntax = "0, fixed:MS, uniform:MIN-MAX or lognormal:MEDIAN,SIGMA (milliseconds)";

    public static LatencyModel Immediate { get; } = new Fixed(0);

    private LatencyModel() { }

    /// <summary>One latency sample in milliseconds, in [0, MaxLatencyMs]. Not thread-safe: the caller owns <paramref name="random"/>.</summary>
    public abstract double SampleMs(Random random);

    /// <summary>Why this model is unusable, or null when it is fine.</summary>
    public abstract string? Problem();

    /// <summary>Every model answers at once, after a constant time, or after a random one.</summary>
    public sealed record Fixed(double LatencyMs) : LatencyModel
    {
        public override double SampleMs(Random random) => LatencyMs;

        public override string? Problem() => InRange(LatencyMs, "fixed latency");

        public override string ToString() => LatencyMs == 0 ? "0" : $"fixed:{Format(LatencyMs)}";
    }

    public sealed record Uniform(double MinMs, double MaxMs) : LatencyModel
    {
        public override double SampleMs(Random random) => MinMs + random.NextDouble() * (MaxMs - MinMs);

        public override string? Problem() =>
            InRange(MinMs, "uniform minimum") ?? InRange(MaxMs, "uniform maximum")
            ?? (MinMs > MaxMs ? $"uniform minimum {Format(MinMs)} ms is above the maximum {Format(MaxMs)} ms" : null);

        public override string ToString() => $"uniform:{Format(MinMs)}-{Format(MaxMs)}";
    }

    /// <summary>Heavy-tailed, like real front-ends: half the samples under the median, a few far above it.</summary>
    public sealed record LogNormal(double MedianMs, double Sigma) : LatencyModel
    {
        public override double SampleMs(Random random)
        {
            // Box-Muller: 1 - NextDouble() is in (0, 1], so the log is finite.
            double normal = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
            return Math.Min(MaxLatencyMs, MedianMs * Math.Exp(Sigma * normal));
        }

        public override string? Problem()
        {
            if (!(MedianMs > 0) || MedianMs > MaxLatencyMs)
                return $"lognormal median must be above 0 and at most {Format(MaxLatencyMs)} ms, got {Format(MedianMs)}";
            if (!(Sigma >= 0) || Sigma > MaxSigma)
                return $"lognormal sigma must be between 0 and {Format(MaxSigma)}, got {Format(Sigma)}";
            return null;
        }

        public override string ToString() => $"lognormal:{Format(MedianMs)},{Format(Sigma)}";
    }

    /// <summary>Parses the text form; throws FormatException whose message starts with "latency".</summary>
    public static LatencyModel Parse(string text) =>
        TryParse(text, out var model, out string? error) ? model : throw new FormatException(error);

    public static bool TryParse(string? text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out LatencyModel? model, out string? error)
    {
        model = null;
        error = null;
        string value = (text ?? "").Trim();
        int colon = value.IndexOf(':');
        string kind = colon < 0 ? value : value[..colon];
        string args = colon < 0 ? "" : value[(colon + 1)..];
        switch (kind.ToLowerInvariant())
        {
            case "0" when colon < 0:
                model = Immediate;
                break;
            case "fixed" when Numbers(args, ',', 1) is [var ms]:
                model = new Fixed(ms);
                break;
            case "uniform" when Numbers(args, '-', 2) is [var min, var max]:
                model = new Uniform(min, max);
                break;
            case "lognormal" when Numbers(args, ',', 2) is [var median, var sigma]:
                model = new LogNormal(median, sigma);
                break;
            default:
                error = $"latency: expected {Syntax}, got '{value}'.";
                return false;
        }
        if (model.Problem() is { } problem)
        {
            error = $"latency: {problem} in '{value}'.";
            model = null;
            return false;
        }
        return true;
    }

    private static double[]? Numbers(string text, char separator, int count)
    {
        string[] parts = text.Split(separator);
        if (parts.Length != count) return null;
        var numbers = new double[count];
        for (int i = 0; i < count; i++)
        {
            if (!double.TryParse(parts[i].Trim(), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out numbers[i])
                || !double.IsFinite(numbers[i]))
                return null;
        }
        return numbers;
    }

    private static string? InRange(double ms, string what) =>
        ms >= 0 && ms <= MaxLatencyMs ? null : $"{what} must be between 0 and {Format(MaxLatencyMs)} ms, got {Format(ms)}";

    private static string Format(double value) => value.ToString("0.###", CultureInfo.InvariantCulture);
}
