using System.Globalization;

namespace Switch.Operator;

/// <summary>Parsing of the values operators type: bank codes, weights, durations. Every failure is a UsageException naming the input.</summary>
public static class OperatorArgs
{
    public const int TotalWeightBps = 10_000;
    public const int MaxRampSteps = 100;
    public const long MaxRampDurationMs = 24L * 60 * 60 * 1000;
    public const int MinWatchIntervalMs = 250;
    public const int MaxEndpointNameLength = 32;
    public const int MaxReasonBytes = 64;

    /// <summary>A 3-digit bank code, e.g. "102".</summary>
    public static string Bank(string text)
    {
        if (text.Length != 3 || !text.All(char.IsAsciiDigit))
            throw new UsageException($"bank '{text}' is not a 3-digit bank code (e.g. 102)");
        return text;
    }

    /// <summary>"NAME=BPS" or "NAME=PCT%" per endpoint (25% = 2,500 bps; 0.01% = 1 bps). The sum is the switch's to check.</summary>
    public static Dictionary<string, int> Weights(IReadOnlyList<string> items)
    {
        if (items.Count == 0) throw new UsageException("weights: give at least one NAME=BPS (or NAME=PCT%)");
        var weights = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (string item in items)
        {
            int eq = item.IndexOf('=');
            if (eq <= 0 || eq == item.Length - 1)
                throw new UsageException($"weights: '{item}' is not NAME=BPS or NAME=PCT% (e.g. a=9500 or a=95%)");
            string name = item[..eq];
            if (name.Length > MaxEndpointNameLength)
                throw new UsageException($"weights: endpoint name '{name}' is longer than {MaxEndpointNameLength} characters");
            int bps = WeightBps(item[(eq + 1)..], item);
            if (!weights.TryAdd(name, bps)) throw new UsageException($"weights: endpoint '{name}' is given twice");
        }
        return weights;
    }

    private static int WeightBps(string value, string item)
    {
        if (value.EndsWith('%'))
        {
            if (!decimal.TryParse(value[..^1], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal percent))
                throw new UsageException($"weights: '{item}': '{value}' is not a percentage (e.g. 25% or 12.5%)");
            decimal bps = percent * 100m;
            if (bps != decimal.Truncate(bps))
                throw new UsageException($"weights: '{item}': {value} is not a whole number of basis points (0.01% = 1 bps)");
            return InRange(bps, item);
        }
        if (!long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long raw))
            throw new UsageException($"weights: '{item}': '{value}' is not a whole number of basis points (or a percentage like 25%)");
        return InRange(raw, item);
    }

    private static int InRange(decimal bps, string item)
    {
        if (bps < 0 || bps > TotalWeightBps)
            throw new UsageException($"weights: '{item}' is outside 0..{TotalWeightBps} bps (0%..100%)");
        return (int)bps;
    }

    /// <summary>"90s", "10m", "1h30m", "500ms": at least 1 ms, at most 24 hours.</summary>
    public static long DurationMs(string text, string what)
    {
        long totalMs = 0;
        int i = 0;
        if (text.Length == 0) throw new UsageException($"{what}: empty duration (e.g. 90s, 10m, 1h30m)");
        while (i < text.Length)
        {
            int start = i;
            while (i < text.Length && char.IsAsciiDigit(text[i])) i++;
            if (i == start || i - start > 9) throw new UsageException($"{what}: '{text}' is not a duration (e.g. 500ms, 90s, 10m, 1h30m)");
            long n = long.Parse(text.AsSpan(start, i - start), CultureInfo.InvariantCulture);
            int unitStart = i;
            while (i < text.Length && char.IsAsciiLetter(text[i])) i++;
            long unitMs = text[unitStart..i] switch
            {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                _ => throw new UsageException($"{what}: '{text}' has no unit or an unknown one (use ms, s, m, h)"),
            };
            totalMs += n * unitMs;
            if (totalMs > MaxRampDurationMs) throw new UsageException($"{what}: '{text}' is longer than 24h");
        }
        if (totalMs < 1) throw new UsageException($"{what}: '{text}' must be longer than zero");
        return totalMs;
    }

    /// <summary>The reason every change carries: required, printable, at most 64 bytes of UTF-8.</summary>
    public static string Reason(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) throw new UsageException("--reason: say why (e.g. --reason \"INC-4521 move to DR\")");
        if (text.Any(char.IsControl)) throw new UsageException("--reason: control characters are not allowed");
        int bytes = System.Text.Encoding.UTF8.GetByteCount(text);
        if (bytes > MaxReasonBytes) throw new UsageException($"--reason: {bytes} bytes, at most {MaxReasonBytes}");
        return text;
    }
}
