namespace Switch.Engine.Archive;

/// <summary>
/// The log begin address of each archive checkpoint still on disk. FASTER recovers a checkpoint only from a log that
/// still holds its segments from that address on, and forgetting deletes the oldest segments: a switch older than its
/// memory of orders would find every snapshot's checkpoint broken at its next start and replay its history instead.
/// So the store forgets no further than <see cref="KeepFromAddress"/>. Added by the archive's writer (a checkpoint's
/// start) or at a recovery, dropped by the snapshot's writer thread (a purge); read by the writer at every write.
/// </summary>
internal sealed class CheckpointBegins
{
    private readonly Dictionary<Guid, long> _begins = new();
    private long _keepFromAddress = long.MaxValue;

    /// <summary>The least begin address of the checkpoints held (long.MaxValue: none); lock-free, for every write.</summary>
    public long KeepFromAddress => Volatile.Read(ref _keepFromAddress);

    public void Add(Guid token, long beginAddress)
    {
        System.Diagnostics.Debug.Assert(beginAddress >= 0, "archive: a checkpoint's begin address is an address");
        lock (_begins)
        {
            _begins[token] = beginAddress;
            Volatile.Write(ref _keepFromAddress, Math.Min(_keepFromAddress, beginAddress));
        }
    }

    /// <summary>Forgets every checkpoint but those named: the store may then forget what only they held.</summary>
    public void KeepOnly(IReadOnlySet<string> keep)
    {
        lock (_begins)
        {
            foreach (Guid token in _begins.Keys.Where(t => !keep.Contains(t.ToString())).ToList()) _begins.Remove(token);
            Volatile.Write(ref _keepFromAddress, _begins.Count == 0 ? long.MaxValue : _begins.Values.Min());
        }
    }
}
