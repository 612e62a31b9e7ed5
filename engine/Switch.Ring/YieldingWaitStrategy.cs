namespace Switch.Ring;

/// <summary>
/// Spins briefly (an event usually arrives within a few hundred nanoseconds under load), then
/// calls <see cref="Thread.Yield"/> on every turn so other threads on a busy core can run.
/// A good default when cores are shared.
/// </summary>
public sealed class YieldingWaitStrategy : IWaitStrategy
{
    private const int SpinTriesBeforeYield = 100;

    public bool RequiresSignal => false;

    public long WaitFor(long sequence, SequenceBarrier barrier)
    {
        int spinTries = SpinTriesBeforeYield;
        long available;
        while ((available = barrier.HighestAvailable(sequence)) < sequence)
        {
            if (barrier.ShouldStopWaiting())
            {
                return available;
            }
            if (spinTries > 0)
            {
                spinTries--;
            }
            else
            {
                Thread.Yield();
            }
        }
        return available;
    }

    public void Signal()
    {
    }
}
