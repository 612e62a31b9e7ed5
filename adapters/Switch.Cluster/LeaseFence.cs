using System.Diagnostics;

namespace Switch.Cluster;

/// <summary>The fencing deadline of one term, in local monotonic time (<see cref="Stopwatch"/> ticks): the leader may
/// act (acknowledge, accept) only before it.
///
/// Why it is safe: etcd moves a lease's expiry to (the moment it handles a renewal) + TTL. It handles a renewal after
/// we send it, so the lease cannot expire at etcd before (send time + TTL). The deadline is (send time of the newest
/// ANSWERED renewal + TTL − margin), counted from the request, never from the answer, so a slow answer never buys
/// time. The margin covers: the two clocks' rate difference over one TTL (quartz and NTP slew stay under 0.1%, i.e.
/// 2 ms of a 2 s TTL), the host's gap between reading <see cref="MayAct"/> and its acknowledgement leaving (a GC pause,
/// a descheduled thread), and the timer that fires <c>Fenced</c> running late on a loaded machine. Once fenced, the
/// deadline never moves again: a new term needs a new campaign.</summary>
public sealed class LeaseFence
{
    /// <summary>The deadline after fencing: below every timestamp.</summary>
    const long FencedTicks = long.MinValue;

    readonly long _ttlTicks;
    long _deadlineTicks;

    /// <param name="ttlMs">The lease's TTL as etcd granted it (never more than asked for, see the caller).</param>
    /// <param name="marginMs">How long before the earliest possible expiry the leader stops.</param>
    /// <param name="grantSentTicks">When the lease's grant request was sent: its first expiry is at least that + TTL.</param>
    public LeaseFence(long ttlMs, long marginMs, long grantSentTicks)
    {
        if (ttlMs <= 0 || marginMs <= 0 || marginMs >= ttlMs) throw new ArgumentOutOfRangeException(nameof(marginMs), $"margin {marginMs} ms must be within the TTL {ttlMs} ms");
        _ttlTicks = (ttlMs - marginMs) * Stopwatch.Frequency / 1_000;
        _deadlineTicks = grantSentTicks + _ttlTicks;
        LastRenewalSentTicks = grantSentTicks;
    }

    /// <summary>The deadline in <see cref="Stopwatch"/> ticks; <see cref="long.MinValue"/> once fenced.</summary>
    public long DeadlineTicks => Volatile.Read(ref _deadlineTicks);

    /// <summary>When the newest renewal that etcd answered was sent (or the grant, before any renewal).</summary>
    public long LastRenewalSentTicks { get; private set; }

    public bool IsFenced => DeadlineTicks == FencedTicks;

    /// <summary>True while the deadline lies ahead: read it before every acknowledgement.</summary>
    public bool MayAct => Stopwatch.GetTimestamp() < DeadlineTicks;

    /// <summary>etcd answered the renewal sent at <paramref name="sentTicks"/>: the deadline moves forward (only
    /// forward, and never after fencing).</summary>
    public bool Renewed(long sentTicks)
    {
        var proposed = sentTicks + _ttlTicks;
        while (true)
        {
            var current = Volatile.Read(ref _deadlineTicks);
            if (current == FencedTicks) return false;
            if (proposed <= current) return true;
            if (Interlocked.CompareExchange(ref _deadlineTicks, proposed, current) == current)
            {
                LastRenewalSentTicks = sentTicks;
                return true;
            }
        }
    }

    /// <summary>Ends the term for good; true the first time only (so the caller reports it once).</summary>
    public bool Fence() => Interlocked.Exchange(ref _deadlineTicks, FencedTicks) != FencedTicks;

    public static long MsToTicks(long ms) => ms * Stopwatch.Frequency / 1_000;
    public static double TicksToMs(long ticks) => ticks * 1_000.0 / Stopwatch.Frequency;
}
