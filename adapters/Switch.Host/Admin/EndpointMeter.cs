using Switch.Telemetry;

namespace Switch.Host.Admin;

/// <summary>
/// Live figures of one endpoint: a ring of one-second buckets over the last 15 minutes. Written only by the engine's
/// output thread, in O(1) with no allocation; readers take the endpoint's lock one bucket at a time, so the writer
/// never waits for more than one bucket's copy.
/// </summary>
internal sealed class EndpointMeter
{
    public const int SpanSeconds = 900;
    private const int Requests = 0, Succeeded = 1, Failed = 2, TimedOut = 3, Counters = 4;
    private readonly object _lock = new();
    private readonly long[] _second = new long[SpanSeconds];
    private readonly int[] _counts = new int[SpanSeconds * Counters];
    // One histogram per second of the ring, made up front (about 2 KB each): recording never allocates.
    private readonly LatencyHistogram[] _latency = Enumerable.Range(0, SpanSeconds).Select(_ => new LatencyHistogram(LatencyPrecision.Coarse)).ToArray();
    private long _inFlight;
    private long _requestsTotal, _succeededTotal, _failedTotal, _timedOutTotal;

    /// <summary>Since the process started: requests, succeeded, failed, timed out (Prometheus counters).</summary>
    public (long Requests, long Succeeded, long Failed, long TimedOut) Totals =>
        (Volatile.Read(ref _requestsTotal), Volatile.Read(ref _succeededTotal), Volatile.Read(ref _failedTotal), Volatile.Read(ref _timedOutTotal));

    /// <summary>Dispatched and not yet answered (never below 0: answers of work dispatched before a restart).</summary>
    public long InFlight => Math.Max(0, Volatile.Read(ref _inFlight));

    // One writer (the output thread): a plain add published with a volatile write, no atomic instruction needed.
    private static void Add(ref long counter, long delta) => Volatile.Write(ref counter, counter + delta);

    public void Request(long second)
    {
        Add(ref _inFlight, 1);
        Add(ref _requestsTotal, 1);
        lock (_lock) _counts[Slot(second) * Counters + Requests]++;
    }

    public void Final(long second, bool succeeded, long latencyUs)
    {
        Add(ref _inFlight, -1);
        Add(ref succeeded ? ref _succeededTotal : ref _failedTotal, 1);
        lock (_lock)
        {
            int slot = Slot(second);
            _counts[slot * Counters + (succeeded ? Succeeded : Failed)]++;
            _latency[slot].Record(latencyUs);
        }
    }

    public void TimeOut(long second)
    {
        Add(ref _inFlight, -1);
        Add(ref _timedOutTotal, 1);
        lock (_lock) _counts[Slot(second) * Counters + TimedOut]++;
    }

    /// <summary>Adds the seconds [fromSecond, toSecond) still in the ring into <paramref name="into"/>.</summary>
    public void Sum(long fromSecond, long toSecond, WindowFigures into)
    {
        fromSecond = Math.Max(fromSecond, toSecond - SpanSeconds);
        for (long s = fromSecond; s < toSecond; s++) AddSecond(s, into);
    }

    /// <summary>Adds one second's figures into <paramref name="into"/> (nothing when it has left the ring).</summary>
    public void AddSecond(long second, WindowFigures into)
    {
        int slot = (int)(second % SpanSeconds);
        lock (_lock)
        {
            if (_second[slot] != second) return;
            into.Requests += _counts[slot * Counters + Requests];
            into.Succeeded += _counts[slot * Counters + Succeeded];
            into.Failed += _counts[slot * Counters + Failed];
            into.TimedOut += _counts[slot * Counters + TimedOut];
            into.Latency.Add(_latency[slot]);
        }
    }

    // Caller holds the lock. A bucket left from an older lap of the ring is cleared before reuse.
    private int Slot(long second)
    {
        int slot = (int)(second % SpanSeconds);
        if (_second[slot] != second)
        {
            _second[slot] = second;
            Array.Clear(_counts, slot * Counters, Counters);
            _latency[slot].Reset();
        }
        return slot;
    }
}
