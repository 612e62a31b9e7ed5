using System.Diagnostics;

namespace Switch.Engine.Snapshots;

/// <summary>The parts of a snapshot's pause of the logic thread, in the order they run.</summary>
public enum PausePart
{
    /// <summary>The logic's own state written (institutions, banks, books, feeds' numbering...) and its arrays' captures begun.</summary>
    LogicState,
    /// <summary>The archive's filter: its scalars written and its capture begun. No wait for the archive's writer thread:
    /// the archive's counters and marks are that thread's, recorded at the mark (<see cref="CheckpointStart"/>).</summary>
    ArchiveState,
    /// <summary>The archive store's checkpoint asked for: a mark handed to the archive's writer thread, which records the
    /// archive's counters and marks there, starts FASTER's checkpoint and waits for its session to move to the next
    /// version, off the logic thread (without a writer thread, all of it here).</summary>
    CheckpointStart,
    /// <summary>The snapshot mark handed to the output side.</summary>
    Mark,
    /// <summary>The snapshot handed to the writer thread (a field it polls: no wake-up in the pause).</summary>
    WriterStart,
}

/// <summary>
/// Times the parts of one snapshot's pause (<see cref="PausePart"/>), for its result and log record. Only metrics: what
/// it reads is the machine's clock, and nothing of it goes into the state (the logic stays deterministic). The pause
/// runs once per snapshot: one allocation each is fine.
/// </summary>
public sealed class PauseTimer
{
    /// <summary>Counted once: <see cref="Enum.GetValues{TEnum}"/> allocates an array each call, in the pause.</summary>
    private static readonly int Parts = Enum.GetValues<PausePart>().Length;
    private readonly long[] _ticks = new long[Parts];
    private long _last = Stopwatch.GetTimestamp();
    private readonly int _collectionsBefore = GC.CollectionCount(0);
    private int _collections;

    /// <summary>Ends <paramref name="part"/>: the time since the previous part ended (or the timer began).</summary>
    public void Lap(PausePart part)
    {
        long now = Stopwatch.GetTimestamp();
        Volatile.Write(ref _ticks[(int)part], _ticks[(int)part] + now - _last); // the writer thread reads it later
        _last = now;
        Volatile.Write(ref _collections, GC.CollectionCount(0) - _collectionsBefore);
    }

    public SnapshotPause Result()
    {
        long Us(PausePart p) => Volatile.Read(ref _ticks[(int)p]) * 1_000_000 / Stopwatch.Frequency;
        return new SnapshotPause(Us(PausePart.LogicState), Us(PausePart.ArchiveState), Us(PausePart.CheckpointStart),
            Us(PausePart.Mark), Us(PausePart.WriterStart), Volatile.Read(ref _collections));
    }
}

/// <summary>A snapshot's pause of the logic thread, part by part (<see cref="PausePart"/>), in microseconds, and the
/// garbage collections that fell in it (any thread's: they stop the logic too).</summary>
public sealed record SnapshotPause(long LogicStateUs, long ArchiveStateUs, long CheckpointStartUs,
    long MarkUs, long WriterStartUs, int GarbageCollections)
{
    public long TotalUs => LogicStateUs + ArchiveStateUs + CheckpointStartUs + MarkUs + WriterStartUs;

    public override string ToString() =>
        $"logic state {LogicStateUs} µs, archive state {ArchiveStateUs} µs, checkpoint start {CheckpointStartUs} µs, " +
        $"mark {MarkUs} µs, handed to the writer {WriterStartUs} µs, {GarbageCollections} GCs";
}
