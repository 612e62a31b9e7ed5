namespace Switch.Grpc.Client;

/// <summary>Per-call options: custom metadata, deadline (absolute or relative; the earlier wins), cancellation.</summary>
public readonly record struct CallOptions
{
    public Metadata? Headers { get; init; }

    /// <summary>Absolute UTC deadline.</summary>
    public DateTime? Deadline { get; init; }

    /// <summary>Relative deadline from the start of the call.</summary>
    public TimeSpan? Timeout { get; init; }

    public CancellationToken CancellationToken { get; init; }

    /// <summary>A deadline further away than this arms no timer (a timer's limit is about 49.7 days).</summary>
    internal static readonly TimeSpan MaxTimerTimeout = TimeSpan.FromDays(49);

    internal DateTime? EffectiveDeadline(DateTime nowUtc)
    {
        DateTime? fromTimeout = Timeout is { } t ? GrpcTimeout.DeadlineFrom(nowUtc, t) : null;
        if (Deadline is { } d) return fromTimeout is { } f && f < d ? f : d.ToUniversalTime();
        return fromTimeout;
    }
}
