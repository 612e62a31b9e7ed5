using Switch.Host.Admin;
using Switch.Host.Configuration;

namespace Switch.Host.Tests.Admin;

/// <summary>The success-rate watch's baseline and alert logic, driven window by window with a made-up clock.</summary>
public sealed class SuccessRateWatchTests
{
    private const int W = 60;
    private const int OffsetHours = 8;
    // Monday 2026-03-02 10:00 in the switch's zone (UTC+8), in unix seconds.
    private static readonly long Monday10 = new DateTimeOffset(2026, 3, 2, 10, 0, 0, TimeSpan.FromHours(OffsetHours)).ToUnixTimeSeconds();

    private readonly Dictionary<long, (long Answered, long Succeeded)> _figures = new();

    private SuccessRateWatch Watch(SuccessRateWatchConfig config) =>
        new(config, ["102"], OffsetHours, (bank, from, to) =>
        {
            Assert.Equal(0, bank);
            Assert.Equal(W, to - from);
            return _figures.GetValueOrDefault(from);
        });

    private static readonly SuccessRateWatchConfig Config = new()
    {
        WindowSeconds = W, DropPercent = 10, WindowsInARow = 3, HistoryDays = 7, MinHistory = 3, DefaultBaseline = 0.95, MinRequestsPerWindow = 20,
    };

    /// <summary>Gives window <paramref name="start"/> its figures and lets the clock pass its end (and the grace second).</summary>
    private void Window(SuccessRateWatch watch, long start, double rate, long answered = 1_000)
    {
        _figures[start] = (answered, (long)Math.Round(rate * answered));
        watch.Evaluate((start + W + 1) * 1_000_000);
    }

    [Fact]
    public void An_alert_comes_after_X_windows_in_a_row_below_the_baseline_and_clears_when_the_rate_recovers()
    {
        SuccessRateWatch watch = Watch(Config);
        long t = Monday10;
        watch.Evaluate(t * 1_000_000); // the first window judged is the one open now
        for (int i = 0; i < 10; i++, t += W) Window(watch, t, 0.99);
        Assert.Empty(watch.Alerts());
        Assert.Equal(0.99, watch.BaselineAt(0, t), 3); // the recent windows' median, while same-time history is short

        Window(watch, t, 0.80); t += W;
        Window(watch, t, 0.80); t += W;
        Assert.Empty(watch.Alerts()); // two below: not yet
        Window(watch, t, 0.95); t += W; // 0.95 is within 10% of 0.99: the run is broken
        Window(watch, t, 0.80); t += W;
        Window(watch, t, 0.80); t += W;
        Assert.Empty(watch.Alerts());
        Window(watch, t, 0.79); t += W;
        SuccessRateAlert alert = Assert.Single(watch.Alerts());
        Assert.True(alert.Active);
        Assert.Equal("102", alert.Bank);
        Assert.Equal(3, alert.WindowsBelow);
        Assert.Equal(0.99, alert.BaselineSuccessRate, 3);
        Assert.Equal(0.79, alert.ActualSuccessRate, 3);
        Assert.Equal(t * 1000, alert.SinceUnixMs);
        Assert.Contains("102", alert.Message);

        Window(watch, t, 0.10, answered: 5); t += W; // too few transactions: says nothing
        Assert.True(Assert.Single(watch.Alerts()).Active);
        Window(watch, t, 0.70); t += W;
        Assert.Equal(4, Assert.Single(watch.Alerts()).WindowsBelow);

        Window(watch, t, 0.98); t += W;
        SuccessRateAlert cleared = Assert.Single(watch.Alerts());
        Assert.False(cleared.Active);
        Assert.Equal(t * 1000, cleared.ClearedUnixMs);
        Assert.Equal(alert.SinceUnixMs, cleared.SinceUnixMs);
    }

    [Fact]
    public void A_cold_start_uses_the_configured_baseline_and_windows_not_judged_in_time_are_caught_up()
    {
        SuccessRateWatch watch = Watch(Config with { WindowsInARow = 1 });
        long t = Monday10;
        watch.Evaluate(t * 1_000_000);
        Assert.Equal(0.95, watch.BaselineAt(0, t));
        _figures[t] = (100, 84); // 0.84 < 0.95 * 0.9
        _figures[t + W] = (100, 99);
        watch.Evaluate((t + 2 * W + 1) * 1_000_000); // both windows closed: judged in order
        SuccessRateAlert alert = Assert.Single(watch.Alerts());
        Assert.False(alert.Active); // raised by the first, cleared by the second
        Assert.Equal(0.95, alert.BaselineSuccessRate);
    }

    [Fact]
    public void The_baseline_is_the_median_of_the_same_window_on_past_days_of_the_same_kind()
    {
        SuccessRateWatch watch = Watch(Config with { WindowsInARow = 1 });
        const long day = 86_400;
        long slot = Monday10 + W; // 10:01
        watch.Evaluate(slot * 1_000_000);
        // Monday to Wednesday at 10:01 this bank runs at about 70% (one bad day: an outlier the median ignores).
        Window(watch, slot, 0.70);
        Window(watch, slot + day, 0.72);
        Window(watch, slot + 2 * day, 0.10);
        // Wednesday late morning: 0.99 for a while, so the recent windows disagree with the 10:01 history.
        for (int i = 0; i < 5; i++) Window(watch, Monday10 + 2 * day + 3_600 + i * W, 0.99);

        Assert.Equal(0.70, watch.BaselineAt(0, slot + 3 * day), 3); // Thursday 10:01: working-day history
        Assert.Equal(0.99, watch.BaselineAt(0, slot + 5 * day), 3); // Saturday 10:01: no history of its kind, recent windows
        // A configured holiday on Thursday is a non-working day: no working-day history applies.
        SuccessRateWatch holiday = Watch(Config with { NonWorkingDates = ["2026-03-05"] });
        holiday.Evaluate(slot * 1_000_000);
        Window(holiday, slot, 0.70);
        Window(holiday, slot + day, 0.70);
        Window(holiday, slot + 2 * day, 0.70);
        Assert.Equal(0.70, holiday.BaselineAt(0, slot + 3 * day), 3); // recent windows (all 0.70)
        Window(holiday, slot + 2 * day + W, 0.99);
        Window(holiday, slot + 2 * day + 2 * W, 0.99);
        Window(holiday, slot + 2 * day + 3 * W, 0.99);
        Window(holiday, slot + 2 * day + 4 * W, 0.99);
        Assert.Equal(0.99, holiday.BaselineAt(0, slot + 3 * day), 3); // not the working days' 0.70
        Assert.Equal(0.70, holiday.BaselineAt(0, slot + 7 * day), 3); // the next Monday is a working day again
    }

    [Fact]
    public void A_bad_watch_configuration_is_refused_naming_the_field()
    {
        var e = Assert.Throws<Switch.Engine.Business.ConfigException>(() => (Config with { WindowSeconds = 0 }).Validate());
        Assert.Contains("successRateWatch.windowSeconds", e.Message);
        e = Assert.Throws<Switch.Engine.Business.ConfigException>(() => (Config with { NonWorkingDates = ["2026-13-01"] }).Validate());
        Assert.Contains("successRateWatch.nonWorkingDates[0]", e.Message);
        e = Assert.Throws<Switch.Engine.Business.ConfigException>(() => (Config with { MinHistory = 8 }).Validate());
        Assert.Contains("minHistory", e.Message);
    }
}
