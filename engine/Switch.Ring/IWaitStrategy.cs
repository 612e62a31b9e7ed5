namespace Switch.Ring;

/// <summary>
/// How a consumer waits for a sequence to become available behind its <see cref="SequenceBarrier"/>.
/// </summary>
/// <remarks>
/// An implementation loops on <see cref="SequenceBarrier.HighestAvailable"/> and, on every turn it
/// does not see the sequence, calls <see cref="SequenceBarrier.ShouldStopWaiting"/>, which throws
/// <see cref="RingHaltedException"/> when the ring is halted and returns true when the barrier was
/// alerted (its processor is halting), so no wait outlives a halt.
/// </remarks>
public interface IWaitStrategy
{
    /// <summary>
    /// Waits until <paramref name="sequence"/> is available behind <paramref name="barrier"/> and
    /// returns the highest available sequence (at least <paramref name="sequence"/>), or a lower
    /// value if the barrier was alerted.
    /// </summary>
    /// <exception cref="RingHaltedException">The ring was halted.</exception>
    long WaitFor(long sequence, SequenceBarrier barrier);

    /// <summary>
    /// True if waiters sleep and must be woken by <see cref="Signal"/> after every publish and
    /// every consumer progress. False lets the ring and processors skip the call entirely.
    /// </summary>
    bool RequiresSignal { get; }

    /// <summary>Wakes waiting consumers after a publish, a consumer's progress, an alert or a halt.</summary>
    void Signal();
}
