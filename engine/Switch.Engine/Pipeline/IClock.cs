namespace Switch.Engine.Pipeline;

/// <summary>Microseconds since the Unix epoch. Only publishers read it; the business logic reads event stamps.</summary>
public interface IClock
{
    long NowUs();
}

/// <summary>Wall time at start plus a monotonic stopwatch: never steps backwards when NTP adjusts the clock.</summary>
public sealed class SystemClock : IClock
{
    public static readonly SystemClock Instance = new();
    private readonly long _startUnixUs = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks / TimeSpan.TicksPerMicrosecond;
    private readonly long _startTimestamp = System.Diagnostics.Stopwatch.GetTimestamp();

    public long NowUs() =>
        _startUnixUs + (long)(System.Diagnostics.Stopwatch.GetElapsedTime(_startTimestamp).Ticks / TimeSpan.TicksPerMicrosecond);
}

/// <summary>A clock the test moves by hand.</summary>
public sealed class ManualClock(long startUs) : IClock
{
    private long _nowUs = startUs;
    public long NowUs() => Volatile.Read(ref _nowUs);
    public void Advance(long us) => Interlocked.Add(ref _nowUs, us);
}
