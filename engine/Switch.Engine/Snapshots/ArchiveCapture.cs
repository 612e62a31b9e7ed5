namespace Switch.Engine.Snapshots;

/// <summary>An archive store's checkpoint for a snapshot: its token, and the store's log bytes its fold-over wrote at
/// once (its mutable region at the capture).</summary>
public sealed record ArchiveCheckpoint(string Token, long FoldOverBytes);

/// <summary>
/// What an archive hands a snapshot at its capture instant: the rest of its part of the state, written after the pause
/// (<see cref="WriteState"/>), arrays the writer copies afterwards, and for an archive on disk the checkpoint of its
/// store that holds exactly the writes made before that instant (<see cref="Checkpoint"/>: started off the logic thread,
/// known once written and made durable).
/// </summary>
public sealed class ArchiveCapture(ICapturedArray[] arrays, Task<ArchiveCheckpoint?> checkpoint, Action end, Action<StateWriter>? writeState = null)
{
    public static ArchiveCapture None { get; } = new([], Task.FromResult<ArchiveCheckpoint?>(null), static () => { });

    /// <summary>On the snapshot's writer thread, before <see cref="End"/>: appends the archive's part of the state as of
    /// the capture instant to <paramref name="w"/> (the state the logic wrote in its pause), waiting, bounded, for what
    /// the archive's writer thread records when it reaches the capture's mark. Throws if it never does (the writer
    /// failed or is stuck): the snapshot fails. Nothing to append for an archive that wrote its part in the pause.</summary>
    public void WriteState(StateWriter w) => writeState?.Invoke(w);

    public ICapturedArray[] Arrays { get; } = arrays;
    /// <summary>The store's checkpoint written and made durable (null: the archive keeps nothing on disk, all of it is in
    /// the snapshot). Faults if the checkpoint could not be taken: the snapshot fails, the switch goes on.</summary>
    public Task<ArchiveCheckpoint?> Checkpoint { get; } = checkpoint;
    public Task Completion => Checkpoint;
    /// <summary>The store's checkpoint's token; only once <see cref="Completion"/> has succeeded.</summary>
    public string? CheckpointToken => Done()?.Token;
    /// <summary>The store's log bytes the checkpoint's fold-over wrote at once; only once <see cref="Completion"/> has succeeded.</summary>
    public long FoldOverBytes => Done()?.FoldOverBytes ?? 0;
    /// <summary>The writer has every page: the archive stops copying pages aside.</summary>
    public void End() => end();

    private ArchiveCheckpoint? Done()
    {
        if (!Checkpoint.IsCompletedSuccessfully) throw new InvalidOperationException("archive: the checkpoint is read before it completed");
        return Checkpoint.Result;
    }
}
