using System.Numerics;
using Switch.Engine.Business;
using Switch.Engine.Events;

namespace Switch.Host.Admin;

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
