using Switch.Host.Gateway;

namespace Switch.Host.Clearing;

/// <summary>Where a batch's files stand.</summary>
public enum BatchFiles
{
    /// <summary>No such closed batch: it is open, in the future, or not a batch id.</summary>
    NotClosed,
    /// <summary>Closed, its files queued or being written.</summary>
    Pending,
    /// <summary>Closed, and file generation failed (it stops until the cause is fixed and the switch restarted).</summary>
    Faulted,
    Complete,
}

/// <summary>A batch (or a participant of it) has no files to read: why, for the operator.</summary>
public sealed class BatchFilesException(long batchId, BatchFiles state, string message) : Exception(message)
{
    public long BatchId { get; } = batchId;
    public BatchFiles State { get; } = state;
}
