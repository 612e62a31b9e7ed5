namespace Switch.Ring;

/// <summary>
/// Spins briefly, yields a while, then sleeps a millisecond at a time: no signal from the producers (a publish costs
/// them nothing), at the price of up to about a millisecond before an idle consumer sees new events. For a consumer
/// nobody waits on, whose ring is large enough to hold what arrives while it sleeps (a store writer behind the logic).
/// </summary>
public sealed class SleepingWaitStrategy : IWaitStrategy
{
    private const int SpinTries = 100;
    private const int YieldTries = 100;
    private readonly int _sleepMs;

    /// <param name="sleepMs">Each sleep once spinning and yielding found nothing (1 to 100).</param>
    public SleepingWaitStrategy(int sleepMs = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sleepMs, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(sleepMs, 100);
        _sleepMs = sleepMs;
    }

    public bool RequiresSignal => false;

    public long WaitFor(long sequence, SequenceBarrier barrier)
    {
        int tries = 0;
        long available;
        while ((available = barrier.HighestAvailable(sequence)) < sequence)
        {
            if (barrier.ShouldStopWaiting())
            {
                return available;
            }
            if (tries < SpinTries)
            {
                tries++;
            }
            else if (tries < SpinTries + YieldTries)
            {
                tries++;
                Thread.Yield();
            }
            else
            {
                Thread.Sleep(_sleepMs);
            }
        }
        return available;
    }

    public void Signal()
    {
    }
}
