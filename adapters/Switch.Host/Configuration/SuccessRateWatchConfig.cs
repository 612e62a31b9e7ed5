using Switch.Engine.Business;

namespace Switch.Host.Configuration;

/// <summary>
/// The success-rate watch per bank (DOMAIN.md): each window's success rate against a baseline from the same time of
/// day on past days of the same kind (working or not), outliers excluded by taking the median; an alert when the
/// rate stays <see cref="DropPercent"/>% below it for <see cref="WindowsInARow"/> windows in a row.
/// </summary>
public sealed record SuccessRateWatchConfig
{
    public bool Enabled { get; init; } = true;
    /// <summary>Length of one window (1 s for tests; at most 900 s, the live statistics' span).</summary>
    public int WindowSeconds { get; init; } = 60;
    /// <summary>How far below the baseline (percent of it) a window must fall to count.</summary>
    public double DropPercent { get; init; } = 10;
    /// <summary>Windows in a row below the threshold before the alert is raised.</summary>
    public int WindowsInARow { get; init; } = 3;
    /// <summary>Past days of the same kind whose same-time window forms the baseline.</summary>
    public int HistoryDays { get; init; } = 7;
    /// <summary>Samples needed before a baseline is trusted; before that, recent windows, then <see cref="DefaultBaseline"/>.</summary>
    public int MinHistory { get; init; } = 3;
    /// <summary>The cold-start baseline, before any history exists.</summary>
    public double DefaultBaseline { get; init; } = 0.95;
    /// <summary>A window with fewer answered transactions says nothing: neither judged nor kept as history.</summary>
    public int MinRequestsPerWindow { get; init; } = 20;
    /// <summary>Extra non-working days ("yyyy-MM-dd", in the switch's day zone) besides Saturdays and Sundays.</summary>
    public IReadOnlyList<string> NonWorkingDates { get; init; } = [];

    public void Validate()
    {
        Require(WindowSeconds is >= 1 and <= 900, "windowSeconds", "1 to 900");
        Require(DropPercent is > 0 and < 100, "dropPercent", "greater than 0 and less than 100");
        Require(WindowsInARow is >= 1 and <= 1_000, "windowsInARow", "1 to 1000");
        Require(HistoryDays is >= 1 and <= 365, "historyDays", "1 to 365");
        Require(MinHistory >= 1 && MinHistory <= HistoryDays, "minHistory", "1 to historyDays");
        Require(DefaultBaseline is > 0 and <= 1, "defaultBaseline", "greater than 0, at most 1");
        Require(MinRequestsPerWindow is >= 1 and <= 1_000_000, "minRequestsPerWindow", "1 to 1000000");
        Require(NonWorkingDates is not null && NonWorkingDates.Count <= 10_000, "nonWorkingDates", "a list of at most 10000 dates");
        for (int i = 0; i < NonWorkingDates!.Count; i++)
        {
            Require(DateOnly.TryParseExact(NonWorkingDates[i], "yyyy-MM-dd", out _), $"nonWorkingDates[{i}]",
                $"a date as yyyy-MM-dd, got '{NonWorkingDates[i]}'");
        }
    }

    private static void Require(bool ok, string field, string why)
    {
        if (!ok) throw new ConfigException($"configuration: successRateWatch.{field}: {why}");
    }
}
