using Switch.Engine.Snapshots;
using Switch.Engine.Events;
using Switch.Engine.Hashing;

namespace Switch.Engine.Business;

/// <summary>
/// One endpoint's circuit breaker, inside the logic: it reads only event time, so a replay rebuilds it exactly.
/// Closed, it counts calls (first answers of debits and credits) and failures (timeouts, system failures) over a
/// sliding window of one-second buckets; when enough calls fail it opens (no new traffic). After the open time it
/// half-opens: a trickle of probes, and a run of good answers closes it, one failure opens it again.
/// Every operation is O(1) (advancing the window clears at most one bucket per second passed, at most the window)
/// and allocation-free; the buckets are allocated once.
/// </summary>
public sealed class EndpointBreaker
{
    private const long MicrosPerSecond = 1_000_000;
    private const long MicrosPerMs = 1_000;

    private readonly RulesConfig _rules;
    private readonly int[] _bucketCalls;
    private readonly int[] _bucketFailures;
    /// <summary>The newest second (event time) the window covers; buckets hold seconds (newest - n, newest].</summary>
    private long _newestSecond;

    public EndpointBreaker(RulesConfig rules)
    {
        _rules = rules;
        int buckets = rules.BreakerWindowMs / 1_000;
        if (buckets < 1) throw new ArgumentOutOfRangeException(nameof(rules), "breaker: window below one second");
        _bucketCalls = new int[buckets];
        _bucketFailures = new int[buckets];
    }

    public BreakerState State { get; private set; }
    /// <summary>Calls and failures in the window (Closed only; cleared on every transition).</summary>
    public int WindowCalls { get; private set; }
    public int WindowFailures { get; private set; }
    /// <summary>Open: when it half-opens (event time, µs).</summary>
    public long OpenUntilUs { get; private set; }
    /// <summary>HalfOpen: transactions that would have gone to it so far (every BreakerProbeEvery-th is a probe).</summary>
    public long ProbeTurns { get; private set; }
    /// <summary>HalfOpen: good answers in a row.</summary>
    public int ProbeSuccesses { get; private set; }
    /// <summary>What the last opening was judged on (for its audit note): calls and failures counted.</summary>
    public int TripCalls { get; private set; }
    public int TripFailures { get; private set; }

    /// <summary>A call's outcome. Returns true when the state changed (the caller writes the audit entry).</summary>
    public bool Record(long nowUs, bool failed)
    {
        switch (State)
        {
            case BreakerState.Closed:
                Slide(nowUs);
                int bucket = (int)(_newestSecond % _bucketCalls.Length);
                _bucketCalls[bucket]++;
                WindowCalls++;
                if (failed)
                {
                    _bucketFailures[bucket]++;
                    WindowFailures++;
                }
                // Widened: calls × 100 cannot overflow an int count's range in a long.
                if (WindowCalls >= _rules.BreakerMinCalls
                    && (long)WindowFailures * 100 >= (long)_rules.BreakerErrorRatePct * WindowCalls)
                {
                    (TripCalls, TripFailures) = (WindowCalls, WindowFailures);
                    Open(nowUs);
                    return true;
                }
                return false;
            case BreakerState.HalfOpen:
                if (failed)
                {
                    (TripCalls, TripFailures) = (ProbeSuccesses + 1, 1);
                    Open(nowUs);
                    return true;
                }
                ProbeSuccesses++;
                if (ProbeSuccesses >= _rules.BreakerProbeSuccesses)
                {
                    Reset(BreakerState.Closed);
                    return true;
                }
                return false;
            default:
                // Open: answers of calls sent before it opened say nothing about now.
                return false;
        }
    }

    /// <summary>Open → HalfOpen once the open time has passed. Returns true when the state changed.</summary>
    public bool Advance(long nowUs)
    {
        if (State != BreakerState.Open || nowUs < OpenUntilUs)
        {
            return false;
        }
        Reset(BreakerState.HalfOpen);
        return true;
    }

    /// <summary>HalfOpen: a transaction would go here; true when it is the trickle's turn (the first one always is).</summary>
    public bool TakeProbeTurn()
    {
        if (State != BreakerState.HalfOpen) throw new InvalidOperationException("breaker: probe turn while not half-open");
        bool probe = IsProbeTurn;
        ProbeTurns++;
        return probe;
    }

    /// <summary>HalfOpen: whether the next transaction that lands here is a probe (looked at, not taken).</summary>
    public bool IsProbeTurn => ProbeTurns % _rules.BreakerProbeEvery == 0;

    /// <summary>One probe in this many turns while half-open.</summary>
    public int ProbeEvery => _rules.BreakerProbeEvery;

    public ulong Hash(ulong h)
    {
        h = StableHash.Combine(h, (ulong)State);
        h = StableHash.Combine(h, (ulong)(uint)WindowCalls | (ulong)(uint)WindowFailures << 32);
        h = StableHash.Combine(h, (ulong)OpenUntilUs);
        h = StableHash.Combine(h, (ulong)ProbeTurns);
        h = StableHash.Combine(h, (ulong)ProbeSuccesses);
        return StableHash.Combine(h, (ulong)_newestSecond);
    }

    public void Save(StateWriter w)
    {
        w.Int((int)State);
        w.Int(WindowCalls);
        w.Int(WindowFailures);
        w.Long(OpenUntilUs);
        w.Long(ProbeTurns);
        w.Int(ProbeSuccesses);
        w.Int(TripCalls);
        w.Int(TripFailures);
        w.Long(_newestSecond);
        w.Array<int>(_bucketCalls);
        w.Array<int>(_bucketFailures);
    }

    public void Restore(ref StateReader r)
    {
        int state = r.Int();
        if (!Enum.IsDefined((BreakerState)state)) throw new InvalidDataException($"snapshot: breaker state {state}");
        State = (BreakerState)state;
        WindowCalls = r.Int();
        WindowFailures = r.Int();
        OpenUntilUs = r.Long();
        ProbeTurns = r.Long();
        ProbeSuccesses = r.Int();
        TripCalls = r.Int();
        TripFailures = r.Int();
        _newestSecond = r.Long();
        r.ExactArray<int>(_bucketCalls, "breaker window (rules.breakerWindowMs)");
        r.ExactArray<int>(_bucketFailures, "breaker window (rules.breakerWindowMs)");
    }

    private void Open(long nowUs)
    {
        Reset(BreakerState.Open);
        OpenUntilUs = nowUs + _rules.BreakerOpenMs * MicrosPerMs;
    }

    private void Reset(BreakerState state)
    {
        State = state;
        Array.Clear(_bucketCalls);
        Array.Clear(_bucketFailures);
        WindowCalls = 0;
        WindowFailures = 0;
        OpenUntilUs = 0;
        ProbeTurns = 0;
        ProbeSuccesses = 0;
    }

    /// <summary>Moves the window's head to the second of <paramref name="nowUs"/>, dropping the buckets it leaves behind.</summary>
    private void Slide(long nowUs)
    {
        long second = nowUs / MicrosPerSecond;
        if (second < _newestSecond) throw new InvalidOperationException("breaker: event time went backwards");
        int n = _bucketCalls.Length;
        // At most n buckets to clear, however long the gap.
        for (long s = Math.Max(_newestSecond + 1, second - n + 1); s <= second; s++)
        {
            int bucket = (int)(s % n);
            WindowCalls -= _bucketCalls[bucket];
            WindowFailures -= _bucketFailures[bucket];
            _bucketCalls[bucket] = 0;
            _bucketFailures[bucket] = 0;
        }
        _newestSecond = second;
        if (WindowCalls < 0 || WindowFailures < 0 || WindowFailures > WindowCalls)
        {
            throw new InvalidOperationException("breaker: window counts out of range");
        }
    }

    /// <summary>Bank reasons that say the endpoint failed, not the customer's account (those are business declines).</summary>
    public static bool IsSystemFailure(ReadOnlySpan<byte> reason) =>
        reason.SequenceEqual("BANK_BUSY"u8) || reason.SequenceEqual("SYSTEM_ERROR"u8) || reason.SequenceEqual("LEDGER_FULL"u8);
}
