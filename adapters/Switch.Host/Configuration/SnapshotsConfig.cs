using Switch.Engine.Snapshots;

namespace Switch.Host.Configuration;

/// <summary>When the switch snapshots its state and derived views, so a start replays only the journal after the
/// newest snapshot (README "Snapshots").</summary>
public sealed record SnapshotsConfig
{
    public const long MaxEveryEvents = 1L << 40;
    public const int MaxKeep = 100;

    public bool Enabled { get; init; } = true;
    /// <summary>A snapshot after this many journaled events since the last one; 0: not by count.</summary>
    public long EveryEvents { get; init; } = 10_000_000;
    /// <summary>A snapshot this many minutes after the last one when events came since; 0: not by time.</summary>
    public int EveryMinutes { get; init; } = 60;
    /// <summary>A snapshot right after each clearing batch closes.</summary>
    public bool AtBatchClose { get; init; } = true;
    /// <summary>A snapshot at a graceful stop: the next start replays nothing.</summary>
    public bool AtStop { get; init; } = true;
    /// <summary>Snapshots kept, newest first; an older one is the fallback when a newer one is damaged.</summary>
    public int Keep { get; init; } = 2;
    /// <summary>After each snapshot the journal's records before the oldest kept one move to journal-archive/ (never
    /// deleted here) and leave the live journal, whose disk is then bounded by the snapshots, not by history.</summary>
    public bool RetireJournal { get; init; } = true;
    /// <summary>Journal archive files written more than this many days ago are deleted after a snapshot; 0: kept forever.</summary>
    public int JournalArchiveRetentionDays { get; init; }
    /// <summary>The snapshot writer's budget in MiB a second, so a large snapshot does not take the disk and a core from
    /// the journal and the gateway at once; 0: no budget.</summary>
    public int WriteMiBPerSecond { get; init; } = SnapshotOptions.DefaultWriteMiBPerSecond;
    /// <summary>The snapshot writer thread runs this much nicer than the process (Linux), so on busy cores the logic and
    /// the I/O threads run first and the writer, woken, does not preempt the logic; 0: as the process.</summary>
    public int WriterNice { get; init; } = SnapshotOptions.DefaultWriterNice;
    /// <summary>The transaction rate the transaction ring's copy-aside reserve is sized for (pages allocated and faulted in
    /// at start, so a snapshot's copy-aside does not allocate on the logic thread); 0: no ring reserve.</summary>
    public long CopyAsideTransactionsPerSecond { get; init; } = SnapshotOptions.DefaultCopyAsideTransactionsPerSecond;

    /// <summary>The first key out of range and why, or null.</summary>
    public (string Field, string Why)? Problem()
    {
        if (EveryEvents is < 0 or > MaxEveryEvents) return ("snapshots.everyEvents", $"0 (not by count) to {MaxEveryEvents}, got {EveryEvents}");
        if (EveryMinutes is < 0 or > 1440) return ("snapshots.everyMinutes", $"0 (not by time) to 1440, got {EveryMinutes}");
        if (Keep is < 1 or > MaxKeep) return ("snapshots.keep", $"1 to {MaxKeep}, got {Keep}");
        if (JournalArchiveRetentionDays is < 0 or > SnapshotOptions.MaxRetentionDays)
            return ("snapshots.journalArchiveRetentionDays", $"0 (forever) to {SnapshotOptions.MaxRetentionDays}, got {JournalArchiveRetentionDays}");
        if (WriteMiBPerSecond is < 0 or > SnapshotOptions.MaxWriteMiBPerSecond)
            return ("snapshots.writeMiBPerSecond", $"0 (no budget) to {SnapshotOptions.MaxWriteMiBPerSecond}, got {WriteMiBPerSecond}");
        if (WriterNice is < 0 or > NiceThread.MaxNice)
            return ("snapshots.writerNice", $"0 (as the process) to {NiceThread.MaxNice}, got {WriterNice}");
        if (CopyAsideTransactionsPerSecond is < 0 or > SnapshotOptions.MaxCopyAsideTransactionsPerSecond)
            return ("snapshots.copyAsideTransactionsPerSecond", $"0 (no ring reserve) to {SnapshotOptions.MaxCopyAsideTransactionsPerSecond}, got {CopyAsideTransactionsPerSecond}");
        return null;
    }

    /// <summary>The engine's options: with the derived views (the host records them at each mark).</summary>
    public SnapshotOptions ToOptions() => new()
    {
        Enabled = Enabled,
        EveryEvents = EveryEvents,
        Every = TimeSpan.FromMinutes(EveryMinutes),
        AtBatchClose = AtBatchClose,
        AtStop = AtStop,
        Keep = Keep,
        RetireJournal = RetireJournal,
        JournalArchiveRetentionDays = JournalArchiveRetentionDays,
        WriteMiBPerSecond = WriteMiBPerSecond,
        WriterNice = WriterNice,
        CopyAsideTransactionsPerSecond = CopyAsideTransactionsPerSecond,
        WithViews = true,
    };
}
