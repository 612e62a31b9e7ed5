namespace Switch.Ring;

/// <summary>
/// Sleeps on a monitor until signalled: no CPU while idle, at the cost of a wake-up latency of
/// microseconds. Producers and processors signal only when a waiter exists, so an un-contended
/// publish costs one fence and one read, not a lock.
/// </summary>
public sealed class BlockingWaitStrategy : IWaitStrategy
{
    private readonly object _gate = new();

    // Count of consumers inside WaitFor that may sleep. Read by signallers without the lock.
    private int _waiterCount;

    public bool RequiresSignal => true;

    public long WaitFor(long sequence, SequenceBarrier barrier)
    {
        long available = barrier.HighestAvailable(sequence);
        if (available >= sequence)
        {
            return available;
        }

        lock (_gate)
        {
            // Announce the waiter before re-checking the condition. Paired with the fence in
            // Signal (Dekker style): either this re-check sees the new sequence, or the
            // signaller sees the waiter and pulses, which it can only do once we are in Wait.
            Interlocked.Increment(ref _waiterCount);
            try
            {
                while ((available = barrier.HighestAvailable(sequence)) < sequence)
                {
                    if (barrier.ShouldStopWaiting())
                    {
                        return available;
                    }
                    Monitor.Wait(_gate);
                }
            }
            finally
            {
                Interlocked.Decrement(ref _waiterCount);
            }
        }
        return available;
    }

    public void Signal()
    {
        // The caller's preceding write (cursor, available flag, consumer sequence, halt flag)
        // must be visible before we read the waiter count, or a waiter could miss it and sleep.
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _waiterCount) != 0)
        {
            lock (_gate)
            {
                Monitor.PulseAll(_gate);
            }
        }
    }
}
