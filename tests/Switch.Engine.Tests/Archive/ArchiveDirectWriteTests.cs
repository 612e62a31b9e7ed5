using System.Runtime.InteropServices;
using Switch.Engine.Archive;
using Switch.Engine.Business;
using Switch.Engine.Tests.Support;
using Switch.Tests.Support;
using static Switch.Engine.Tests.Archive.ArchiveHandoffTests;

namespace Switch.Engine.Tests.Archive;

/// <summary>The archive's log is written O_DIRECT (no copy into the page cache), and records that left FASTER's memory
/// still read back from its files, on a disk and on tmpfs.</summary>
public sealed class ArchiveDirectWriteTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void The_archive_log_is_written_direct_and_evicted_records_read_back() => WriteAndReadBack(_dir.Sub("archive"), requireDirect: true);

    [Fact]
    public void An_archive_on_tmpfs_works_as_on_disk()
    {
        const string shm = "/dev/shm";
        if (!OperatingSystem.IsLinux() || !Directory.Exists(shm)) return; // no tmpfs to try
        string directory = Path.Combine(shm, "switch-archive-tests-" + Guid.NewGuid().ToString("N"));
        try { WriteAndReadBack(directory, requireDirect: false); }
        finally { Directory.Delete(directory, recursive: true); }
    }

    private static void WriteAndReadBack(string directory, bool requireDirect)
    {
        using FasterTransactionArchive archive = FasterTransactionArchive.Create(directory, ArchiveSizing.Small);
        const int count = 5_000; // well past the small archive's memory
        for (int id = 1; id <= count; id++) archive.Put(Key($"O{id}"), Tx(id, $"O{id}", id * 3L));
        Assert.True(archive.TryGet(Key("O7"), out Transaction old) && old.AmountFen == 21);
        Assert.True(archive.DiskReads > 0, "O7 should have come from the archive's file");
        Assert.True(archive.TryGet(Key("O4999"), out Transaction last) && last.AmountFen == 4999 * 3L);
        if (requireDirect && OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64)
        {
            string log = Path.Combine(directory, "archive.log.0");
            Assert.True(OpenFileFlags.WrittenWith(log, OpenFileFlags.Direct | OpenFileFlags.Sync),
                $"{log}: flags {string.Join(", ", OpenFileFlags.Of(log).Select(f => Convert.ToString(f, 8)))}");
        }
    }
}
