using System.Globalization;

namespace Switch.Engine.Business;

/// <summary>
/// When clearing batches close by themselves: times of day ("HH:mm") in the configured zone. Evaluated on tick
/// events only, against the tick's timestamp, so a replay closes the same batches at the same ticks.
/// </summary>
public sealed class BatchSchedule
{
    public const int MaxClosesPerDay = 48;
    private const long MicrosPerMinute = 60_000_000;
    private const long MicrosPerDay = 86_400_000_000;

    /// <summary>Minutes after local midnight, ascending, distinct.</summary>
    private readonly int[] _minutesOfDay;
    private readonly long _offsetUs;

    public BatchSchedule(IReadOnlyList<string> closeTimes, int dayUtcOffsetHours)
    {
        _minutesOfDay = new int[closeTimes.Count];
        for (int i = 0; i < closeTimes.Count; i++)
        {
            if (!TryParse(closeTimes[i], out _minutesOfDay[i]))
            {
                throw new ConfigException($"configuration: rules.batchCloseTimes[{i}]: \"HH:mm\" from 00:00 to 23:59, got '{closeTimes[i]}'");
            }
        }
        Array.Sort(_minutesOfDay);
        for (int i = 1; i < _minutesOfDay.Length; i++)
        {
            if (_minutesOfDay[i] == _minutesOfDay[i - 1]) throw new ConfigException("configuration: rules.batchCloseTimes: duplicate time");
        }
        _offsetUs = dayUtcOffsetHours * 3_600_000_000L;
    }

    public bool IsEmpty => _minutesOfDay.Length == 0;

    /// <summary>Exactly "HH:mm", two digits each: no culture, no leniency.</summary>
    public static bool TryParse(string? text, out int minuteOfDay)
    {
        minuteOfDay = -1;
        if (text is not { Length: 5 } || text[2] != ':'
            || !int.TryParse(text.AsSpan(0, 2), NumberStyles.None, CultureInfo.InvariantCulture, out int hours)
            || !int.TryParse(text.AsSpan(3, 2), NumberStyles.None, CultureInfo.InvariantCulture, out int minutes)
            || hours > 23 || minutes > 59)
        {
            return false;
        }
        minuteOfDay = hours * 60 + minutes;
        return true;
    }

    /// <summary>The first scheduled close strictly after <paramref name="afterUs"/> (UTC microseconds); long.MaxValue if none.</summary>
    public long NextCloseUs(long afterUs)
    {
        if (IsEmpty) return long.MaxValue;
        long localUs = afterUs + _offsetUs;
        long dayStartLocalUs = localUs >= 0 ? localUs / MicrosPerDay * MicrosPerDay : (localUs - MicrosPerDay + 1) / MicrosPerDay * MicrosPerDay;
        for (int day = 0; day < 2; day++)
        {
            foreach (int minute in _minutesOfDay)
            {
                long candidateLocalUs = dayStartLocalUs + day * MicrosPerDay + minute * MicrosPerMinute;
                if (candidateLocalUs > localUs) return candidateLocalUs - _offsetUs;
            }
        }
        throw new InvalidOperationException("batch schedule: no close within two days");
    }
}
