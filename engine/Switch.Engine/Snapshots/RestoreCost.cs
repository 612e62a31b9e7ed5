namespace Switch.Engine.Snapshots;

/// <summary>
/// What a snapshot's restore read and waited on, for the start's log line: a slow start names its cause. A cold read
/// from slow storage shows as a low <see cref="ReadMegabytesPerSecond"/> with <see cref="MachineCounters.StorageReadBytes"/>
/// near <see cref="SnapshotBytes"/>; memory compaction as <see cref="MachineCounters.CompactStall"/> and a long
/// <see cref="PrefaultUs"/> or <see cref="IndexRebuildUs"/>.
/// </summary>
/// <param name="SnapshotBytes">Bytes read from the snapshot file (all of it, once checked).</param>
/// <param name="ReadUs">Time in the file's reads, microseconds.</param>
/// <param name="PrefaultUs">The prefault helper's time (<see cref="Prefaulter.ElapsedUs"/>).</param>
/// <param name="PrefaultBytes">Bytes it populated, of <paramref name="PrefaultRegionBytes"/>.</param>
/// <param name="IndexRebuildUs">The order index rebuilt from the table (the table read, the index's memory written).</param>
/// <param name="Counters">The process's and the machine's counters over the restore, from the file's opening to its checksum.</param>
public sealed record RestoreCost(long SnapshotBytes, long ReadUs, long PrefaultUs, long PrefaultBytes, long PrefaultRegionBytes,
    long IndexRebuildUs, MachineCounters Counters)
{
    /// <summary>Bytes of the file the kernel was asked to read ahead of the restore (<see cref="FileReadahead"/>).</summary>
    public long ReadaheadBytes { get; init; }

    /// <summary>Bytes a microsecond are megabytes (10^6 bytes) a second; 0 when nothing was timed.</summary>
    public double ReadMegabytesPerSecond => ReadUs == 0 ? 0 : (double)SnapshotBytes / ReadUs;

    /// <summary>The fields the start's log line and the bench print, in this order; "n/a" for a counter the OS lacks.</summary>
    public (string Key, string Value)[] Fields()
    {
        var c = Counters;
        return
        [
            ("snapshot_bytes_read", Invariant(SnapshotBytes)), ("snapshot_read_ms", Ms(ReadUs)), ("snapshot_read_mb_s", ReadMegabytesPerSecond.ToString("F0", Culture)),
            ("snapshot_readahead_bytes", Invariant(ReadaheadBytes)),
            ("prefault_ms", Ms(PrefaultUs)), ("prefault_bytes", Invariant(PrefaultBytes)), ("prefault_of_bytes", Invariant(PrefaultRegionBytes)),
            ("index_rebuild_ms", Ms(IndexRebuildUs)),
            ("major_faults", Count(c.MajorFaults)), ("minor_faults", Count(c.MinorFaults)), ("storage_read_bytes", Count(c.StorageReadBytes)),
            ("vm_compact_stall", Count(c.CompactStall)), ("vm_compact_fail", Count(c.CompactFail)), ("vm_compact_success", Count(c.CompactSuccess)),
            ("vm_thp_fault_alloc", Count(c.ThpFaultAlloc)), ("vm_thp_fault_fallback", Count(c.ThpFaultFallback)),
            ("vm_allocstall", Count(c.AllocStall)), ("vm_pgmajfault", Count(c.PgMajFault)),
        ];
    }

    private static System.Globalization.CultureInfo Culture => System.Globalization.CultureInfo.InvariantCulture;
    private static string Invariant(long value) => value.ToString(Culture);
    private static string Ms(long us) => (us / 1000.0).ToString("F1", Culture);
    private static string Count(long? value) => value is { } v ? Invariant(v) : "n/a";
}

/// <summary>The parts of <see cref="RestoreCost"/> the logic's restore measures itself.</summary>
public readonly record struct RestoreTimes(long PrefaultUs, long PrefaultBytes, long PrefaultRegionBytes, long IndexRebuildUs);
