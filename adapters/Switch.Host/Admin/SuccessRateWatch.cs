using Switch.Host.Configuration;

namespace Switch.Host.Admin;

/// <summary>A success-rate alert of one bank, as it stands.</summary>
public sealed record SuccessRateAlert(int BankIndex, string Bank, bool Active, long SinceUnixMs, long ClearedUnixMs,
    double BaselineSuccessRate, double ActualSuccessRate, int WindowsBelow, string Message);

/// <summary>
/// The success-rate watch (DOMAIN.md): every closed window, each bank's success rate is compared with a baseline, the
/// median (outliers do not move it) of the same window of the day on the last days of the same kind, working days and
/// non-working days kept apart. Cold start: until that history has enough samples, the median of the bank's recent
/// windows; before those, a configured default. An alert is raised when the rate stays more than the configured
/// percentage below the baseline for that many windows in a row, and cleared by the first window that is not.
/// Windows with too few answered transactions say nothing and change nothing. Time comes from the caller
/// (<see cref="Evaluate"/>), so a test drives it; the figures come from <paramref name="figures"/>
/// (answered and succeeded of a bank over [fromSecond, toSecond)). History lives in memory: a restart starts cold.
/// </summary>
public sealed class SuccessRateWatch(SuccessRateWatchConfig config, IReadOnlyList<string> bankCodes, int dayUtcOffsetHours,
    Func<int, long, long, (long Answered, long Succeeded)> figures)
{
    /// <summary>Recent windows kept per bank for the cold-start baseline.</summary>
    public const int RecentWindows = 60;
    /// <summary>Cleared alerts kept for the API; active ones are always kept.</summary>
    public const int MaxClearedAlerts = 100;
    /// <summary>After a long pause, windows older than this many are skipped, not judged one by one.</summary>
    private const int MaxCatchUpWindows = 900;
    public const string Kind = "SUCCESS_RATE_LOW";

    private readonly object _lock = new();
    private readonly BankWatch[] _banks = bankCodes.Select(_ => new BankWatch(config.HistoryDays)).ToArray();
    private readonly HashSet<DateOnly> _nonWorking = config.NonWorkingDates.Select(d => DateOnly.ParseExact(d, "yyyy-MM-dd")).ToHashSet();
    private readonly List<SuccessRateAlert> _cleared = new();
    private long _nextWindowStartSecond = -1;

    public int WindowSeconds => config.WindowSeconds;

    /// <summary>Judges every window that closed by <paramref name="nowUs"/> (one second of grace for late outputs).</summary>
    public void Evaluate(long nowUs)
    {
        long nowSecond = nowUs / 1_000_000;
        int w = config.WindowSeconds;
        lock (_lock)
        {
            if (_nextWindowStartSecond < 0)
            {
                _nextWindowStartSecond = nowSecond / w * w; // the window now open is the first judged
                return;
            }
            long latestStart = (nowSecond - 1) / w * w - w;
            if (latestStart - _nextWindowStartSecond > (long)MaxCatchUpWindows * w) _nextWindowStartSecond = latestStart;
            while (_nextWindowStartSecond <= latestStart)
            {
                for (int b = 0; b < _banks.Length; b++) Judge(b, _nextWindowStartSecond);
                _nextWindowStartSecond += w;
            }
        }
    }

    /// <summary>Active alerts first, then cleared ones, newest first.</summary>
    public IReadOnlyList<SuccessRateAlert> Alerts()
    {
        lock (_lock)
        {
            var all = new List<SuccessRateAlert>();
            foreach (BankWatch bank in _banks)
            {
                if (bank.Active is { } active) all.Add(active);
            }
            for (int i = _cleared.Count - 1; i >= 0; i--) all.Add(_cleared[i]);
            return all;
        }
    }

    /// <summary>The baseline the next window of the bank would be judged against (for the API and tests).</summary>
    public double BaselineAt(int bankIndex, long windowStartSecond)
    {
        lock (_lock) return Baseline(_banks[bankIndex], windowStartSecond);
    }

    private void Judge(int bankIndex, long startSecond)
    {
        BankWatch bank = _banks[bankIndex];
        (long answered, long succeeded) = figures(bankIndex, startSecond, startSecond + config.WindowSeconds);
        if (answered < config.MinRequestsPerWindow) return;
        double rate = (double)succeeded / answered;
        double baseline = Baseline(bank, startSecond);
        double threshold = baseline * (1 - config.DropPercent / 100);
        long endMs = (startSecond + config.WindowSeconds) * 1000;
        if (rate < threshold)
        {
            bank.Below++;
            if (bank.Active is { } active)
            {
                bank.Active = active with { ActualSuccessRate = rate, WindowsBelow = bank.Below };
            }
            else if (bank.Below >= config.WindowsInARow)
            {
                bank.Active = new SuccessRateAlert(bankIndex, bankCodes[bankIndex], true, endMs, 0, baseline, rate, bank.Below,
                    $"bank {bankCodes[bankIndex]}: success rate {rate:P1} is more than {config.DropPercent}% below its baseline " +
                    $"{baseline:P1} for {bank.Below} windows of {config.WindowSeconds} s in a row");
            }
        }
        else
        {
            bank.Below = 0;
            if (bank.Active is { } active)
            {
                _cleared.Add(active with { Active = false, ClearedUnixMs = endMs, ActualSuccessRate = rate });
                if (_cleared.Count > MaxClearedAlerts) _cleared.RemoveAt(0);
                bank.Active = null;
            }
        }
        // Every judged window becomes history; the median keeps a bad one from moving the baseline.
        (bool working, int slot, int day) = SlotOf(startSecond);
        bank.History(working, slot).Add(day, rate);
        bank.Recent.Add(0, rate);
    }

    private double Baseline(BankWatch bank, long startSecond)
    {
        (bool working, int slot, _) = SlotOf(startSecond);
        if (bank.TryHistory(working, slot) is { } same && same.Count >= config.MinHistory) return same.Median();
        if (bank.Recent.Count >= config.MinHistory) return bank.Recent.Median();
        return config.DefaultBaseline;
    }

    private (bool Working, int Slot, int Day) SlotOf(long startSecond)
    {
        long local = startSecond + dayUtcOffsetHours * 3600L;
        long day = Math.DivRem(local, 86_400L, out long secondOfDay);
        if (secondOfDay < 0) { secondOfDay += 86_400; day--; }
        DateOnly date = DateOnly.FromDayNumber((int)(day + DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber));
        bool working = date.DayOfWeek is not (DayOfWeek.Saturday or DayOfWeek.Sunday) && !_nonWorking.Contains(date);
        return (working, (int)(secondOfDay / config.WindowSeconds), (int)day);
    }

    private sealed class BankWatch(int historyDays)
    {
        private readonly Dictionary<(bool, int), RateRing> _history = new();
        public readonly RateRing Recent = new(RecentWindows, perDay: false);
        public int Below;
        public SuccessRateAlert? Active;

        public RateRing? TryHistory(bool working, int slot) => _history.GetValueOrDefault((working, slot));

        public RateRing History(bool working, int slot)
        {
            if (!_history.TryGetValue((working, slot), out RateRing? ring)) _history[(working, slot)] = ring = new RateRing(historyDays, perDay: true);
            return ring;
        }
    }

    /// <summary>The last N rates; per day: one per day (a second sample on the same day replaces the first).</summary>
    private sealed class RateRing(int capacity, bool perDay)
    {
        private readonly double[] _rates = new double[capacity];
        private int _next;
        private int _lastDay = int.MinValue;
        public int Count { get; private set; }

        public void Add(int day, double rate)
        {
            if (perDay && day == _lastDay && Count > 0)
            {
                _rates[(_next - 1 + capacity) % capacity] = rate;
                return;
            }
            _lastDay = day;
            _rates[_next] = rate;
            _next = (_next + 1) % capacity;
            Count = Math.Min(Count + 1, capacity);
        }

        public double Median()
        {
            double[] sorted = new double[Count];
            for (int i = 0; i < Count; i++) sorted[i] = _rates[(_next - Count + i + capacity) % capacity];
            Array.Sort(sorted);
            return Count % 2 == 1 ? sorted[Count / 2] : (sorted[Count / 2 - 1] + sorted[Count / 2]) / 2;
        }
    }
}
