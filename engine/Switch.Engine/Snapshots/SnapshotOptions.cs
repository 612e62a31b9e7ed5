namespace Switch.Engine.Snapshots;

/// <summary>When the engine takes snapshots and how many it keeps (see <see cref="Pipeline.SwitchEngine"/>).</summary>
public sealed record SnapshotOptions
{
    /// <summary>Off: no snapshot is taken and every start replays the whole journal (as before snapshots existed).</summary>
    public bool Enabled { get; init; }
    /// <summary>A snapshot after this many events since the last one; 0: not by count.</summary>
    public long EveryEvents { get; init; } = 10_000_000;
    /// <summary>A snapshot this often (wall time) when events were applied since the last one; zero: not by time.</summary>
    public TimeSpan Every { get; init; }
    /// <summary>A snapshot right after each clearing batch closes.</summary>
    public bool AtBatchClose { get; init; } = true;
    /// <summary>A snapshot at a graceful stop, so the next start replays nothing.</summary>
    public bool AtStop { get; init; } = true;
    /// <summary>Snapshots kept (the newest); an older one is the fallback when a newer one is damaged.</summary>
    public int Keep { get; init; } = 2;
    /// <summary>The output side records derived views into each snapshot at its mark (<see cref="Pipeline.SwitchEngine.SnapshotViewsCaptured"/>);
    /// the writer waits for them. False: the snapshot holds none (tests and tools with no views).</summary>
    public bool WithViews { get; init; }
    /// <summary>How long the writer waits for the derived views before it gives the snapshot up.</summary>
    public int ViewsTimeoutMs { get; init; } = 60_000;
    /// <summary>After each snapshot, the journal's records before the oldest kept snapshot move to
    /// <c>journal-archive/</c> and leave the live journal, whose disk is then bounded by the snapshots kept, not by history.
    /// The archive is never deleted here. False: the live journal keeps everything.</summary>
    public bool RetireJournal { get; init; } = true;
    /// <summary>After each snapshot, the journal archive's files written more than this many days ago are deleted (the
    /// oldest first: <see cref="Journal.JournalArchive.DeleteWrittenBefore"/>); 0: kept forever (regulators keep
    /// transaction records for years).</summary>
    public int JournalArchiveRetentionDays { get; init; }
    /// <summary>Where the file system takes no O_DIRECT (<see cref="DirectWriter"/>), the writer fsyncs the file each time
    /// it wrote this much more: the disk's write-back of a snapshot (hundreds of MB) then comes in slices, not in one flush
    /// at the end that the journal's own fsyncs would queue behind (on ext4's ordered journal, a commit can wait for other
    /// files' dirty data). 0: only at the end. A direct write has no dirty pages to write back: only the end's fsync.</summary>
    public long SyncEveryBytes { get; init; } = 16L << 20;
    /// <summary>The writer's budget: at most this many MiB of the arrays' pages a second (<see cref="WritePacer"/>), so a
    /// snapshot of hundreds of MiB trickles out beside the journal and the switch's threads instead of taking the disk
    /// and a core for a second or two. 0: as fast as it can.</summary>
    public int WriteMiBPerSecond { get; init; } = DefaultWriteMiBPerSecond;
    public const int DefaultWriteMiBPerSecond = 64;

    /// <summary>The budget's pacer, for the archive's checkpoints and the file's writer alike (null: snapshots off or no budget).</summary>
    public WritePacer? NewWritePacer() => Enabled && WriteMiBPerSecond > 0 ? new WritePacer((long)WriteMiBPerSecond << 20) : null;
    public const int MaxWriteMiBPerSecond = 1 << 16;
    /// <summary>The writer thread runs this much nicer than the process (<see cref="NiceThread"/>, Linux): with the cores
    /// busy, the logic and the I/O threads run first and the writer, woken by the logic, does not preempt it. 0: as the
    /// process. Its pace is <see cref="WriteMiBPerSecond"/>'s either way; this decides only who waits when both could run.</summary>
    public int WriterNice { get; init; } = DefaultWriterNice;
    public const int DefaultWriterNice = 10;
    /// <summary>The engine reserves the pages a snapshot's copy-aside takes (<see cref="AsideReserve{T}"/>), allocated and
    /// faulted in off the logic thread at start and kept: whole for the arrays touched at random (the daily usage, the
    /// archive filter's current generation) and the deadlines; for the transaction ring, the pages the logic fills at this
    /// rate while the writer writes up to the ring's end at <see cref="WriteMiBPerSecond"/>
    /// (<see cref="Business.SwitchLogic.RingAsidePages"/>). 0: no ring reserve (its pages aside are allocated as needed,
    /// counted in <see cref="SnapshotResult.PagesAllocatedAside"/>).</summary>
    public long CopyAsideTransactionsPerSecond { get; init; } = DefaultCopyAsideTransactionsPerSecond;
    /// <summary>The design peak.</summary>
    public const long DefaultCopyAsideTransactionsPerSecond = 180_000;
    public const long MaxCopyAsideTransactionsPerSecond = 100_000_000;
    /// <summary>How long a graceful stop waits for its snapshot.</summary>
    public int StopTimeoutMs { get; init; } = 120_000;
    /// <summary>Test hook, null in production: called on the writer thread at each instant of a snapshot's publication
    /// a crash could fall in (<see cref="SnapshotWritePoint"/>); the writer waits for it. The seeded simulation copies
    /// the data directory there, as a crash at that instant would leave it.</summary>
    public Action<SnapshotWritePoint>? TestWritePoint { get; init; }

    /// <summary>A hundred years: the bound on <see cref="JournalArchiveRetentionDays"/>.</summary>
    public const int MaxRetentionDays = 36_500;

    public void Validate()
    {
        static void Require(bool ok, string what)
        {
            if (!ok) throw new ArgumentException($"snapshots: {what}");
        }
        Require(EveryEvents is >= 0 and <= 1L << 40, "everyEvents must be 0 to 2^40");
        Require(Every == TimeSpan.Zero || (Every >= TimeSpan.FromMilliseconds(100) && Every <= TimeSpan.FromDays(1)), "every must be zero or 100 ms to a day");
        Require(Keep is >= 1 and <= 100, "keep must be 1 to 100");
        Require(SyncEveryBytes is 0 or (>= 1L << 20 and <= 1L << 34), "syncEveryBytes must be 0 or 1 MiB to 16 GiB");
        Require(WriteMiBPerSecond is >= 0 and <= MaxWriteMiBPerSecond, $"writeMiBPerSecond must be 0 (no budget) to {MaxWriteMiBPerSecond}");
        Require(CopyAsideTransactionsPerSecond is >= 0 and <= MaxCopyAsideTransactionsPerSecond, $"copyAsideTransactionsPerSecond must be 0 (no ring reserve) to {MaxCopyAsideTransactionsPerSecond}");
        Require(WriterNice is >= 0 and <= NiceThread.MaxNice, $"writerNice must be 0 (as the process) to {NiceThread.MaxNice}");
        Require(JournalArchiveRetentionDays is >= 0 and <= MaxRetentionDays, $"journalArchiveRetentionDays must be 0 (forever) to {MaxRetentionDays}");
        Require(ViewsTimeoutMs is >= 1 and <= 3_600_000, "viewsTimeoutMs must be 1 to 3600000");
        Require(StopTimeoutMs is >= 1 and <= 3_600_000, "stopTimeoutMs must be 1 to 3600000");
    }
}

/// <summary>The instants of a snapshot's publication a crash can fall in, in order (<see cref="SnapshotOptions.TestWritePoint"/>).</summary>
public enum SnapshotWritePoint
{
    /// <summary>The writer has begun: the archive's checkpoint is being flushed on its own thread, the file not begun.</summary>
    ArchiveCheckpointRunning,
    /// <summary>The temporary file holds the state and the arrays (flushed to the operating system, not fsynced), not the
    /// views nor the checksum.</summary>
    TempPartlyWritten,
    /// <summary>The temporary file is whole and fsynced, the archive's checkpoint complete, the companion naming it
    /// written; the file not renamed.</summary>
    TempWritten,
    /// <summary>Renamed to its published name; the directory not yet fsynced.</summary>
    Renamed,
}

/// <summary>A snapshot taken: where, what it cost the logic thread, how long the writing took.</summary>
/// <param name="Trigger">What asked for it: "operator", "events", "batch-close", "stop".</param>
/// <param name="Pause">How long the logic thread stopped to capture it, part by part.</param>
/// <param name="PagesCopiedAside">Pages the logic copied aside because it changed them before the writer copied them.</param>
public sealed record SnapshotResult(string Path, SnapshotPosition Position, long Bytes, SnapshotPause Pause, long WriteMs,
    int PagesCopiedAside, string Trigger)
{
    /// <summary>How long the logic thread stopped to capture it, in all.</summary>
    public long PauseUs => Pause.TotalUs;
    /// <summary>Of <see cref="PagesCopiedAside"/>, the pages the reserves had none ready for, allocated on the logic thread
    /// (<see cref="SnapshotOptions.CopyAsideTransactionsPerSecond"/>), and their bytes.</summary>
    public int PagesAllocatedAside { get; init; }
    public long BytesAllocatedAside { get; init; }
    /// <summary>Journal archive files its retention deleted after it (<see cref="SnapshotOptions.JournalArchiveRetentionDays"/>).</summary>
    public int JournalArchiveFilesDeleted { get; init; }
    /// <summary>From the start of the writing until the archive's checkpoint was on disk, and until the derived views
    /// arrived (0: none asked for); they run beside the file's writing.</summary>
    public long ArchiveCheckpointMs { get; init; }
    public long ViewsMs { get; init; }
    /// <summary>Time the writers slept to keep to the budget (<see cref="SnapshotOptions.WriteMiBPerSecond"/>) while it was
    /// written: the file's and the archive checkpoint's, which share it.</summary>
    public long PacedMs { get; init; }
    /// <summary>What the archive's checkpoint flushed at once: its store's mutable region (<see cref="ArchiveCapture.FoldOverBytes"/>).</summary>
    public long ArchiveFoldOverBytes { get; init; }
    /// <summary>From the start of the writing until the file was published, and how long the journal's retirement after
    /// it took (0: none): what runs when, against a load's per-second latencies.</summary>
    public long PublishedMs { get; init; }
    public long RetireMs { get; init; }
}
