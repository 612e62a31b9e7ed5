using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Telemetry;

namespace Switch.LoadGen;

/// <summary>
/// Checks every answer against what was sent (the order book) and records its latency and outcome. Answers come
/// in on many threads: each records into one of a few stripes (by thread), each stripe under its own lock, so
/// recording is uncontended and allocation-free; the stripes are merged for the progress line and the report.
/// </summary>
public sealed class ResultRecorder
{
    public const int OutcomeCount = 6;
    private const int KindCount = 4;

    private sealed class Stripe(int banks)
    {
        public readonly LatencyHistogram Total = new();
        public readonly LatencyHistogram Interval = new();
        public readonly LatencyHistogram[] ByBank = Enumerable.Range(0, banks).Select(_ => new LatencyHistogram()).ToArray();
        /// <summary>Split by whether the request's intended send time fell while a snapshot was taken (with windows only).</summary>
        public readonly LatencyHistogram DuringSnapshot = new();
        public readonly LatencyHistogram OutsideSnapshot = new();
        /// <summary>[kind, bank, outcome].</summary>
        public readonly long[] Counts = new long[KindCount * banks * OutcomeCount];
        public long LastAnswerTicks;
        public long LastSuccessTicks;
    }

    private readonly OrderBook _book;
    private readonly Stripe[] _stripes;
    private readonly int _banks;
    private readonly RecentOrders[] _refundable;
    private readonly RecentOrders[] _queryable;
    private readonly SnapshotWindows? _snapshots;
    private long _unexpected;

    /// <param name="snapshots">When set, latencies are also split by whether their request was sent while a snapshot was taken.</param>
    public ResultRecorder(OrderBook book, int institutions, int banks, SnapshotWindows? snapshots = null)
    {
        _snapshots = snapshots;
        Debug.Assert(banks is > 0 and <= WorkloadOptions.MaxBanks);
        _book = book;
        _banks = banks;
        int stripes = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(2, Environment.ProcessorCount * 2));
        _stripes = Enumerable.Range(0, stripes).Select(_ => new Stripe(banks)).ToArray();
        _refundable = Enumerable.Range(0, institutions).Select(_ => new RecentOrders(1 << 14)).ToArray();
        _queryable = Enumerable.Range(0, institutions).Select(_ => new RecentOrders(1 << 14)).ToArray();
    }

    public OrderBook Book => _book;
    /// <summary>Answers that name no order this run sent.</summary>
    public long Unexpected => Volatile.Read(ref _unexpected);
    internal RecentOrders Refundable(int institution) => _refundable[institution];
    internal RecentOrders Queryable(int institution) => _queryable[institution];

    public static Outcome OutcomeOf(TransactionStatus status) => status switch
    {
        TransactionStatus.Succeeded => Outcome.Succeeded,
        TransactionStatus.Failed => Outcome.Failed,
        TransactionStatus.Unknown => Outcome.Unknown,
        TransactionStatus.Rejected => Outcome.Rejected,
        TransactionStatus.Processing => Outcome.Processing,
        _ => Outcome.RpcError,
    };

    /// <summary>Rejects and errors by code ("REJECTED DAILY_LIMIT_EXCEEDED", "RPC DeadlineExceeded"): rare, so a dictionary.</summary>
    public ConcurrentDictionary<string, long> Codes { get; } = new();

    /// <summary>A result on a Transact stream: it names its order; a second answer for a transfer is the answer
    /// to the query outstanding on it, or else a duplicate.</summary>
    public void OnStreamResult(TransferResult result, long nowTicks) =>
        OnStreamResult(Encoding.UTF8.GetBytes(result.OrderNo), result.Status, Encoding.UTF8.GetBytes(result.RejectCode), nowTicks);

    /// <summary>As <see cref="OnStreamResult(TransferResult, long)"/>, from the fields the stream decoded (UTF-8 in the
    /// result message's bytes: a string is made only for a reject code, which is rare).</summary>
    public void OnStreamResult(ReadOnlySpan<byte> orderNo, TransactionStatus status, ReadOnlySpan<byte> rejectCode, long nowTicks)
    {
        long seq = _book.SeqOf(orderNo);
        if (seq < 0 || !_book.TryAt(seq, out OrderBook.Entry[] page, out int index) || page[index].Kind == Kind.Query)
        {
            Interlocked.Increment(ref _unexpected);
            return;
        }
        ref OrderBook.Entry e = ref page[index];
        if (Interlocked.Increment(ref e.Answers) > 1)
        {
            long query = Interlocked.Exchange(ref e.PendingQuery, -1);
            if (query < 0) return; // A duplicate: the audit counts it.
            Interlocked.Decrement(ref e.Answers);
            seq = query;
            e = ref _book.At(query);
            Interlocked.Increment(ref e.Answers);
        }
        Record(seq, ref e, OutcomeOf(status), rejectCode.IsEmpty ? "" : Encoding.UTF8.GetString(rejectCode), nowTicks);
    }

    /// <summary>A unary call's answer (result, or the status of a refused or failed call).</summary>
    public void OnUnaryResult(long seq, TransferResult? result, RpcException? error, long nowTicks)
    {
        ref OrderBook.Entry e = ref _book.At(seq);
        Debug.Assert(e.Sent);
        if (result is not null && result.OrderNo != _book.OrderNo(e.Kind == Kind.Query ? e.Target : seq))
        {
            Interlocked.Increment(ref _unexpected); // Answered, but about another order.
        }
        Interlocked.Increment(ref e.Answers);
        if (e.Kind == Kind.Query) Interlocked.CompareExchange(ref _book.At(e.Target).PendingQuery, -1, seq);
        if (result is not null)
        {
            Record(seq, ref e, OutcomeOf(result.Status), result.RejectCode, nowTicks);
            return;
        }
        Debug.Assert(error is not null);
        string? reject = RejectCodeOf(error!.Status);
        Record(seq, ref e, reject is null ? Outcome.RpcError : Outcome.Rejected, reject ?? error.StatusCode.ToString(), nowTicks);
    }

    /// <summary>The switch's reject code leads a refusal's message ("DAILY_LIMIT_EXCEEDED: amount_fen ..."); any
    /// other failure (deadline, transport) has none.</summary>
    internal static string? RejectCodeOf(Status status)
    {
        string m = status.Detail;
        int colon = m.IndexOf(':');
        if (colon <= 0 || status.Code is StatusCode.DeadlineExceeded or StatusCode.Cancelled or StatusCode.Internal or StatusCode.Unknown) return null;
        for (int i = 0; i < colon; i++)
        {
            if (!(char.IsAsciiLetterUpper(m[i]) || m[i] == '_' || char.IsAsciiDigit(m[i]))) return null;
        }
        return m[..colon];
    }

    private void Record(long seq, ref OrderBook.Entry e, Outcome outcome, string code, long nowTicks)
    {
        long latencyUs = (long)Stopwatch.GetElapsedTime(e.IntendedTicks, nowTicks).TotalMicroseconds;
        Stripe s = _stripes[Environment.CurrentManagedThreadId & (_stripes.Length - 1)];
        lock (s)
        {
            s.Total.Record(latencyUs);
            s.Interval.Record(latencyUs);
            s.ByBank[e.Bank].Record(latencyUs);
            if (_snapshots is not null) (_snapshots.Contains(e.IntendedTicks) ? s.DuringSnapshot : s.OutsideSnapshot).Record(latencyUs);
            s.Counts[((int)e.Kind * _banks + e.Bank) * OutcomeCount + (int)outcome]++;
            if (nowTicks > s.LastAnswerTicks) s.LastAnswerTicks = nowTicks;
            if (outcome == Outcome.Succeeded && nowTicks > s.LastSuccessTicks) s.LastSuccessTicks = nowTicks;
        }
        if (outcome is Outcome.Rejected or Outcome.RpcError)
        {
            Codes.AddOrUpdate((outcome == Outcome.Rejected ? "REJECTED " : "RPC ") + code, 1, (_, n) => n + 1);
        }
        if (e.Kind == Kind.Query) return;
        if (outcome is Outcome.Succeeded && e.Kind == Kind.Payment) _refundable[e.Institution].Add(seq);
        if (outcome is Outcome.Succeeded or Outcome.Failed) _queryable[e.Institution].Add(seq);
    }

    /// <summary>Moves every stripe's interval histogram into into (reset first); returns the answers so far by outcome.</summary>
    public long[] TakeInterval(LatencyHistogram into)
    {
        into.Reset();
        var byOutcome = new long[OutcomeCount];
        foreach (Stripe s in _stripes)
        {
            lock (s)
            {
                into.Add(s.Interval);
                s.Interval.Reset();
                for (int i = 0; i < s.Counts.Length; i++) byOutcome[i % OutcomeCount] += s.Counts[i];
            }
        }
        return byOutcome;
    }

    /// <summary>When the latest success was recorded (0: none yet): where a switch-over's time with no success begins.</summary>
    public long LastSuccessTicks()
    {
        long last = 0;
        foreach (Stripe s in _stripes)
        {
            lock (s) last = Math.Max(last, s.LastSuccessTicks);
        }
        return last;
    }

    /// <summary>Everything merged, for the report.</summary>
    public Totals Merge()
    {
        var total = new LatencyHistogram();
        var byBank = Enumerable.Range(0, _banks).Select(_ => new LatencyHistogram()).ToArray();
        var during = new LatencyHistogram();
        var outside = new LatencyHistogram();
        var counts = new long[KindCount, _banks, OutcomeCount];
        long last = 0;
        foreach (Stripe s in _stripes)
        {
            lock (s)
            {
                total.Add(s.Total);
                for (int b = 0; b < _banks; b++) byBank[b].Add(s.ByBank[b]);
                during.Add(s.DuringSnapshot);
                outside.Add(s.OutsideSnapshot);
                for (int i = 0; i < s.Counts.Length; i++) counts[i / (OutcomeCount * _banks), i / OutcomeCount % _banks, i % OutcomeCount] += s.Counts[i];
                last = Math.Max(last, s.LastAnswerTicks);
            }
        }
        return new Totals(total, byBank, counts, last) { DuringSnapshot = during, OutsideSnapshot = outside };
    }

    public sealed record Totals(LatencyHistogram Latency, LatencyHistogram[] ByBank, long[,,] Counts, long LastAnswerTicks)
    {
        /// <summary>Requests sent while a snapshot was taken, and the rest (empty without snapshot windows).</summary>
        public LatencyHistogram DuringSnapshot { get; init; } = new();
        public LatencyHistogram OutsideSnapshot { get; init; } = new();
    }
}
