using Switch.Engine.Snapshots;

namespace Switch.Engine.Tests.Snapshots;

/// <summary>The counters a start's recovery line prints: read from the kernel where it has them, "n/a" where not.</summary>
public sealed class RestoreCostTests
{
    [Fact]
    public void Touching_fresh_memory_shows_as_the_processs_minor_faults_and_the_machines_counters_are_read()
    {
        MachineCounters before = MachineCounters.Read();
        const int bytes = 64 << 20;
        MachineCounters delta;
        // Memory the C allocator maps for this request alone (64 MiB is past its largest mmap threshold), not the GC's: in
        // a full test run the collector had kept memory mapped from earlier tests, and an array there faulted in 2,083 of
        // its 16,384 pages.
        IntPtr fresh = System.Runtime.InteropServices.Marshal.AllocHGlobal(bytes);
        try
        {
            for (int i = 0; i < bytes; i += 4096) System.Runtime.InteropServices.Marshal.WriteByte(fresh, i, 1); // one write a page: a fault each (4 KiB pages: THP is opt-in)
            delta = MachineCounters.Read().Since(before);
        }
        finally
        {
            System.Runtime.InteropServices.Marshal.FreeHGlobal(fresh);
        }
        if (!OperatingSystem.IsLinux())
        {
            Assert.Null(delta.MinorFaults);
            Assert.Null(delta.CompactStall);
            return;
        }
        // Half the pages at least: a margin for a C allocator that reuses a mapping after all.
        Assert.True(delta.MinorFaults >= bytes / 4096 / 2, $"{delta.MinorFaults} minor faults for {bytes / 4096} pages touched");
        Assert.True(delta.MajorFaults >= 0 && delta.StorageReadBytes >= 0, delta.ToString());
        Assert.All(new[] { delta.CompactStall, delta.CompactFail, delta.CompactSuccess, delta.ThpFaultAlloc, delta.AllocStall, delta.PgMajFault },
            c => Assert.True(c >= 0, delta.ToString()));
    }

    [Fact]
    public void A_counter_the_system_lacks_prints_as_not_available_and_the_rate_is_bytes_over_time()
    {
        var counters = new MachineCounters(1, 2, 3, null, null, null, null, null, null, null);
        var cost = new RestoreCost(SnapshotBytes: 50_000_000, ReadUs: 1_500_000, PrefaultUs: 250, PrefaultBytes: 4096, PrefaultRegionBytes: 8192,
            IndexRebuildUs: 12_345, counters);
        Dictionary<string, string> fields = cost.Fields().ToDictionary(f => f.Key, f => f.Value);
        Assert.Equal("33", fields["snapshot_read_mb_s"]);
        Assert.Equal("1500.0", fields["snapshot_read_ms"]);
        Assert.Equal("12.3", fields["index_rebuild_ms"]);
        Assert.Equal("2", fields["minor_faults"]);
        Assert.Equal("n/a", fields["vm_compact_stall"]);
        Assert.Equal("n/a", fields["vm_allocstall"]);
    }
}
