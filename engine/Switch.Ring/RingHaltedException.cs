namespace Switch.Ring;

/// <summary>
/// Thrown by every claim and every barrier wait on a ring that was halted (poisoned), typically
/// because an event handler threw. The original failure is <see cref="Reason"/> (also the inner exception).
/// </summary>
public sealed class RingHaltedException : Exception
{
    public RingHaltedException(Exception reason)
        : base("The ring was halted: " + reason.Message, reason)
    {
    }

    /// <summary>Why the ring was halted.</summary>
    public Exception Reason => InnerException!;
}
