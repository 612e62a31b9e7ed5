namespace Switch.Engine.Snapshots;

/// <summary>
/// What an archive hands a snapshot at its capture instant: arrays the writer copies afterwards, and for an archive on
/// disk the checkpoint of its store that holds exactly the writes made before that instant (<see cref="CheckpointToken"/>,
/// complete once <see cref="Completion"/> has finished).
/// </summary>
public sealed class ArchiveCapture(ICapturedArray[] arrays, string? checkpointToken, Task completion, Action end)
{
    public static ArchiveCapture None { get; } = new([], null, Task.CompletedTask, static () => { });

    public ICapturedArray[] Arrays { get; } = arrays;
    /// <summary>The store's checkpoint (null: the archive keeps nothing on disk, all of it is in the snapshot).</summary>
    public string? CheckpointToken { get; } = checkpointToken;
    /// <summary>The store's checkpoint written and made durable.</summary>
    public Task Completion { get; } = completion;
    /// <summary>The store's log bytes the checkpoint's fold-over writes at once (its mutable region at the capture).</summary>
    public long FoldOverBytes { get; init; }
    /// <summary>The writer has every page: the archive stops copying pages aside.</summary>
    public void End() => end();
}
