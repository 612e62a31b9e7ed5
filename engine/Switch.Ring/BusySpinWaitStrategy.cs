namespace Switch.Ring;

/// <summary>
/// Spins on the barrier without ever giving up the core: the lowest latency, but it burns a whole
/// core per waiting consumer. Use only with a core to spare for each consumer.
/// </summary>
public sealed class BusySpinWaitStrategy : IWaitStrategy
{
    public bool RequiresSignal => false;

    public long WaitFor(long sequence, SequenceBarrier barrier)
    {
        long available;
        while ((available = barrier.HighestAvailable(sequence)) < sequence)
        {
            if (barrier.ShouldStopWaiting())
            {
                return available;
            }
        }
        return available;
    }

    public void Signal()
    {
    }
}
