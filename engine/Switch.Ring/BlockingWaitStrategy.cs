namespace Switch.Ring;

/// <summary>
/// Sleeps on a monitor until signalled: no CPU while idle, at the cost of a wake-up latency of
/// microseconds. A signal takes the lock only when a consumer is asleep and has not been woken
/// since, so an un-contended publish costs one fence and two reads, and a burst of publishes
/// while a consumer is waking pulses it once rather than fighting it for the lock.
/// </summary>
public sealed class BlockingWaitStrategy : IWaitStrategy
{
    private readonly object _gate = new();

    // Count of consumers inside WaitFor that may sleep. Read by signallers without the lock.
    private int _waiterCount;

    // 1 from a pulse until a woken waiter (or a new one) clears it before its re-check: while it is
    // set, every waiter asleep was pulsed and will re-check, so further signals can skip the lock.
    private int _pulsePending;

    // Written under _gate only; figures for benchmarks and the engine's counters.
    private long _sleeps;
    private long _pulses;

    public bool RequiresSignal => true;

    /// <summary>Times a consumer went to sleep on this strategy (each costs a context switch and a wake).</summary>
    public long Sleeps => Volatile.Read(ref _sleeps);

    /// <summary>Signals that found a sleeping consumer and pulsed it (took the lock).</summary>
    public long Pulses => Volatile.Read(ref _pulses);

    public long WaitFor(long sequence, SequenceBarrier barrier)
    {
        long available = barrier.HighestAvailable(sequence);
        if (available >= sequence)
        {
            return available;
        }

        lock (_gate)
        {
            // Announce the waiter, then clear any stale pulse, then re-check the condition. Paired
            // with the fence in Signal (Dekker style): either this re-check sees the new sequence,
            // or the signaller sees the waiter with no pulse pending and pulses, which it can only
            // do once we are in Wait (it needs the lock).
            Interlocked.Increment(ref _waiterCount);
            try
            {
                while (true)
                {
                    Interlocked.Exchange(ref _pulsePending, 0);
                    if ((available = barrier.HighestAvailable(sequence)) >= sequence || barrier.ShouldStopWaiting())
                    {
                        return available;
                    }
                    _sleeps++;
                    Monitor.Wait(_gate);
                }
            }
            finally
            {
                Interlocked.Decrement(ref _waiterCount);
            }
        }
    }

    public void Signal()
    {
        // The caller's preceding write (cursor, available flag, consumer sequence, halt flag)
        // must be visible before we read the waiter count, or a waiter could miss it and sleep.
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _waiterCount) != 0 && Volatile.Read(ref _pulsePending) == 0)
        {
            lock (_gate)
            {
                _pulses++;
                Volatile.Write(ref _pulsePending, 1);
                Monitor.PulseAll(_gate);
            }
        }
    }
}
