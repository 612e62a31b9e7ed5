using System.Numerics;
using Switch.Engine.Business;
using Switch.Engine.Events;

namespace Switch.Host.Admin;

/// <summary>Counts over a span of seconds, one endpoint or summed over a bank, with a latency histogram.</summary>
public sealed class WindowFigures
{
    public long Requests;
    public long Succeeded;
    public long Failed;
    public long TimedOut;
    internal readonly long[] Latency = new long[LatencyHistogram.Buckets];

    /// <summary>Transactions that got their first answer in the span (final, or unknown at the deadline).</summary>
    public long Answered => Succeeded + Failed + TimedOut;
    /// <summary>Share of the answered that succeeded, 0..1; 0 when none.</summary>
    public double SuccessRate => Answered == 0 ? 0 : (double)Succeeded / Answered;
    public double TimeoutRate => Answered == 0 ? 0 : (double)TimedOut / Answered;
    public long LatencyPercentileUs(double q) => LatencyHistogram.Percentile(Latency, q);

    public void Clear()
    {
        Requests = Succeeded = Failed = TimedOut = 0;
        Array.Clear(Latency);
    }

    public void Add(WindowFigures other)
    {
        Requests += other.Requests;
        Succeeded += other.Succeeded;
        Failed += other.Failed;
        TimedOut += other.TimedOut;
        for (int i = 0; i < Latency.Length; i++) Latency[i] += other.Latency[i];
    }
}

/// <summary>
/// Log-linear latency buckets: exact below 8 µs, then 4 buckets per power of two (about ±12% resolution) up to
/// 2^31 µs (36 minutes); anything longer lands in the last bucket.
/// </summary>
public static class LatencyHistogram
{
    private const int SubBits = 2;
    private const int Linear = 1 << (SubBits + 1); // 8: values below are their own bucket
    private const int MaxExponent = 30;
    public const int Buckets = Linear + (MaxExponent - SubBits) * (1 << SubBits); // 120

    public static int Index(long us)
    {
        if (us < Linear) return us < 0 ? 0 : (int)us;
        int exponent = 63 - BitOperations.LeadingZeroCount((ulong)us);
        if (exponent > MaxExponent) return Buckets - 1;
        int sub = (int)(us >> (exponent - SubBits)) & ((1 << SubBits) - 1);
        return Linear + (exponent - SubBits - 1) * (1 << SubBits) + sub;
    }

    /// <summary>The middle of a bucket's range, in µs.</summary>
    public static long Representative(int index)
    {
        if (index < Linear) return index;
        int exponent = (index - Linear) / (1 << SubBits) + SubBits + 1;
        int sub = (index - Linear) % (1 << SubBits);
        long width = 1L << (exponent - SubBits);
        long low = (1L << exponent) + sub * width;
        return low + width / 2;
    }

    /// <summary>The value at quantile q (0..1) of the counts, 0 when there are none.</summary>
    public static long Percentile(long[] counts, double q) => Percentile(counts, q, Representative);

    /// <summary>The value at quantile q (0..1) of any bucketed counts, by each bucket's representative; 0 when none.</summary>
    public static long Percentile(long[] counts, double q, Func<int, long> representative)
    {
        long total = 0;
        foreach (long c in counts) total += c;
        if (total == 0) return 0;
        long rank = Math.Max(1, (long)Math.Ceiling(q * total));
        long seen = 0;
        for (int i = 0; i < counts.Length; i++)
        {
            seen += counts[i];
            if (seen >= rank) return representative(i);
        }
        return representative(counts.Length - 1);
    }
}

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
    private readonly int[] _latency = new int[SpanSeconds * LatencyHistogram.Buckets];
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
            _latency[slot * LatencyHistogram.Buckets + LatencyHistogram.Index(latencyUs)]++;
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
            int offset = slot * LatencyHistogram.Buckets;
            for (int i = 0; i < LatencyHistogram.Buckets; i++) into.Latency[i] += _latency[offset + i];
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
            Array.Clear(_latency, slot * LatencyHistogram.Buckets, LatencyHistogram.Buckets);
        }
        return slot;
    }
}

/// <summary>
/// Per bank and endpoint statistics from the engine's outputs, on the output thread. Counted: each transaction's
/// first bank request (not queries, reversals or retries) as a request; its first answer as succeeded, failed
/// (the final outcome, from the outcome feed) or timed out (the "unknown" answer at its deadline). Duplicates and
/// an institution's Query calls are not counted: a transaction already counted as timed out is remembered (by id, in
/// a direct-mapped table) so a later query answer or final outcome does not count it twice.
/// </summary>
public sealed class LiveStats
{
    public static readonly int[] WindowSeconds = [10, 60, 900];
    /// <summary>How far back the per-second figures go (the ring's span).</summary>
    public const int HistorySeconds = EndpointMeter.SpanSeconds;
    private const int TimedOutMemory = 1 << 16;
    private readonly EndpointMeter[][] _meters;
    // Direct-mapped by transaction id (a collision forgets the older one: bounded memory, a figure skipped at worst).
    private readonly long[] _timedOut = new long[TimedOutMemory];
    private readonly long[] _timedOutUs = new long[TimedOutMemory];
    private readonly long[] _sent = new long[TimedOutMemory];
    private readonly long[] _sentUs = new long[TimedOutMemory];
    private readonly long _bankTimeoutUs;
    private volatile TransactionMetrics? _metrics;

    public LiveStats(SwitchConfig config)
    {
        _meters = config.Banks.Select(b => b.Endpoints.Select(_ => new EndpointMeter()).ToArray()).ToArray();
        _bankTimeoutUs = config.Rules.BankTimeoutMs * 1000L;
    }

    public int BankCount => _meters.Length;
    public int EndpointCount(int bankIndex) => _meters[bankIndex].Length;

    /// <summary>The Prometheus histograms and counters fed from the same decisions as the live figures.</summary>
    public void Attach(TransactionMetrics metrics) => _metrics = metrics;

    /// <summary>From the engine's output thread only.</summary>
    public void Record(in OutputEvent o)
    {
        int slot = (int)(o.TransactionId & (TimedOutMemory - 1));
        switch (o.Kind)
        {
            case OutputKind.BankRequest when o.Attempt == 1 && o.Operation is BankOperation.Debit or BankOperation.Credit:
                _sent[slot] = o.TransactionId;
                _sentUs[slot] = o.TimestampUs;
                Meter(o).Request(SecondOf(o.TimestampUs));
                break;
            case OutputKind.Answer when o.Status == TransactionStatus.Unknown && !o.Duplicate && o.Reject == RejectCode.None:
                if (_timedOut[slot] == o.TransactionId) break; // a query answer for a transaction already counted
                _timedOut[slot] = o.TransactionId;
                _timedOutUs[slot] = o.TimestampUs;
                Meter(o).TimeOut(SecondOf(o.TimestampUs));
                _metrics?.WentUnknown(o);
                break;
            case OutputKind.Answer when o.Reject != RejectCode.None && !o.Duplicate:
                _metrics?.Refused(o);
                break;
            case OutputKind.Feed when o.Status is TransactionStatus.Succeeded or TransactionStatus.Failed:
                long latencyUs = o.FinalUs - o.ReceivedUs;
                bool timedOut = _timedOut[slot] == o.TransactionId;
                _metrics?.Final(o, _sent[slot] == o.TransactionId ? _sentUs[slot] : -1, timedOut ? _timedOutUs[slot] : -1);
                // Final after being answered unknown: its first answer was the timeout, already counted.
                if (timedOut || latencyUs > _bankTimeoutUs + 1_000_000) break;
                Meter(o).Final(SecondOf(o.FinalUs), o.Status == TransactionStatus.Succeeded, latencyUs);
                break;
        }
    }

    private EndpointMeter Meter(in OutputEvent o) => _meters[o.BankIndex][o.EndpointIndex];

    public static long SecondOf(long unixUs) => unixUs / 1_000_000;

    public long InFlight(int bankIndex, int endpointIndex) => _meters[bankIndex][endpointIndex].InFlight;

    public (long Requests, long Succeeded, long Failed, long TimedOut) Totals(int bankIndex, int endpointIndex) =>
        _meters[bankIndex][endpointIndex].Totals;

    public long BankInFlight(int bankIndex) => _meters[bankIndex].Sum(m => m.InFlight);

    /// <summary>One endpoint's figures over [fromSecond, toSecond); endpointIndex -1 = the whole bank.</summary>
    public WindowFigures Sum(int bankIndex, int endpointIndex, long fromSecond, long toSecond)
    {
        var figures = new WindowFigures();
        EndpointMeter[] meters = _meters[bankIndex];
        for (int e = 0; e < meters.Length; e++)
        {
            if (endpointIndex < 0 || endpointIndex == e) meters[e].Sum(fromSecond, toSecond, figures);
        }
        return figures;
    }

    /// <summary>
    /// Each second of [fromSecond, fromSecond + seconds), oldest first, one endpoint or (endpointIndex -1) the whole
    /// bank: <paramref name="visit"/> gets the second's index from 0 and its figures (one object, reused: read it, keep nothing).
    /// </summary>
    public void EachSecond(int bankIndex, int endpointIndex, long fromSecond, int seconds, Action<int, WindowFigures> visit)
    {
        if (seconds is < 1 or > EndpointMeter.SpanSeconds) throw new ArgumentOutOfRangeException(nameof(seconds), seconds, $"1 to {EndpointMeter.SpanSeconds}");
        var figures = new WindowFigures();
        EndpointMeter[] meters = _meters[bankIndex];
        for (int i = 0; i < seconds; i++)
        {
            figures.Clear();
            for (int e = 0; e < meters.Length; e++)
            {
                if (endpointIndex < 0 || endpointIndex == e) meters[e].AddSecond(fromSecond + i, figures);
            }
            visit(i, figures);
        }
    }

    /// <summary>The last <paramref name="windowSeconds"/> seconds up to and including the current one.</summary>
    public WindowFigures Window(int bankIndex, int endpointIndex, int windowSeconds, long nowUs)
    {
        long next = SecondOf(nowUs) + 1;
        return Sum(bankIndex, endpointIndex, next - windowSeconds, next);
    }
}
