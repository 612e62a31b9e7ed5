namespace Switch.Grpc;

/// <summary>
/// The grpc-timeout header: 1 to 8 ASCII digits then a unit (H hours, M minutes, S seconds,
/// m milliseconds, u microseconds, n nanoseconds).
/// </summary>
public static class GrpcTimeout
{
    public const int MaxDigits = 8;
    public const long MaxValue = 99_999_999;

    /// <summary>Parses a header value; false on anything malformed.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out TimeSpan timeout)
    {
        timeout = default;
        if (text.Length < 2 || text.Length > MaxDigits + 1) return false;
        long value = 0;
        for (int i = 0; i < text.Length - 1; i++)
        {
            char c = text[i];
            if (c is < '0' or > '9') return false;
            value = value * 10 + (c - '0');
        }
        // 99,999,999 H = 3.6e18 ticks, inside long and TimeSpan: no overflow for any 8-digit value.
        long ticks;
        switch (text[^1])
        {
            case 'H': ticks = value * TimeSpan.TicksPerHour; break;
            case 'M': ticks = value * TimeSpan.TicksPerMinute; break;
            case 'S': ticks = value * TimeSpan.TicksPerSecond; break;
            case 'm': ticks = value * TimeSpan.TicksPerMillisecond; break;
            case 'u': ticks = value * 10; break;
            case 'n': ticks = (value + 99) / 100; break; // Round up: never shorten a deadline.
            default: return false;
        }
        timeout = TimeSpan.FromTicks(ticks);
        return true;
    }

    /// <summary>
    /// Formats a timeout in the finest unit whose value fits in 8 digits, rounding up so the peer never
    /// sees a shorter deadline than ours (longer ones saturate at 99999999H). Negative timeouts format as 0n.
    /// </summary>
    public static string Format(TimeSpan timeout)
    {
        long ticks = Math.Max(0, timeout.Ticks);
        // (unit ticks, suffix) from finest to coarsest; nanoseconds handled first since a tick is 100 ns.
        if (ticks <= MaxValue / 100) return (ticks * 100).ToString(System.Globalization.CultureInfo.InvariantCulture) + "n";
        ReadOnlySpan<long> units = [10, TimeSpan.TicksPerMillisecond, TimeSpan.TicksPerSecond, TimeSpan.TicksPerMinute, TimeSpan.TicksPerHour];
        ReadOnlySpan<char> suffixes = ['u', 'm', 'S', 'M', 'H'];
        for (int i = 0; i < units.Length; i++)
        {
            long value = ticks / units[i] + (ticks % units[i] != 0 ? 1 : 0); // Round up without overflow.
            if (value <= MaxValue)
                return value.ToString(System.Globalization.CultureInfo.InvariantCulture) + suffixes[i];
        }
        return "99999999H"; // Beyond ~11,400 years: the largest value the header can carry.
    }

    /// <summary>Deadline = now + timeout, saturating instead of overflowing.</summary>
    internal static DateTime DeadlineFrom(DateTime nowUtc, TimeSpan timeout) =>
        timeout >= DateTime.MaxValue - nowUtc ? DateTime.MaxValue : nowUtc + timeout;
}
