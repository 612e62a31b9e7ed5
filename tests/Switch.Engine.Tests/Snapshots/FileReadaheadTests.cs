using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Switch.Engine.Business;
using Switch.Engine.Pipeline;
using Switch.Engine.Snapshots;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Snapshots;

/// <summary>The restore's readahead (<see cref="FileReadahead"/>): the kernel reads the file into the page cache ahead of
/// the reader, never further ahead than its bound; a start from a snapshot has the whole file read ahead and restores the
/// same state. Residency is the kernel's own account (<c>mincore</c>), on a file first dropped from the page cache.</summary>
public sealed class FileReadaheadTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void The_kernel_reads_the_file_ahead_of_the_reader_and_no_further_than_the_bound()
    {
        Assert.True(OperatingSystem.IsLinux(), "readahead is a Linux feature; this test reads the page cache's residency");
        const int fileBytes = 1 << 20, chunkBytes = 16 << 10, aheadBytes = 64 << 10;
        string path = Path.Combine(_dir.Path, "file");
        var bytes = new byte[fileBytes];
        new Random(13).NextBytes(bytes);
        File.WriteAllBytes(path, bytes);
        DropFromPageCache(path);
        Assert.Equal(0, ResidentBytes(path));

        long readerAt = 0;
        using (var readahead = new FileReadahead(path, () => Volatile.Read(ref readerAt), chunkBytes, aheadBytes))
        {
            Assert.True(SpinWait.SpinUntil(() => readahead.AdvisedBytes == aheadBytes, 10_000), $"advised {readahead.AdvisedBytes} bytes, not {aheadBytes}");
            Thread.Sleep(200); // the helper waits for the reader: it asks for nothing more meanwhile
            Assert.Equal(aheadBytes, readahead.AdvisedBytes);
            Assert.True(SpinWait.SpinUntil(() => ResidentBytes(path) == aheadBytes, 10_000), $"{ResidentBytes(path)} bytes resident, not {aheadBytes}");

            Volatile.Write(ref readerAt, fileBytes - aheadBytes); // the reader moved on: the rest is asked for
            Assert.True(SpinWait.SpinUntil(() => readahead.AdvisedBytes == fileBytes, 10_000), $"advised {readahead.AdvisedBytes} bytes, not {fileBytes}");
            Assert.True(SpinWait.SpinUntil(() => ResidentBytes(path) == fileBytes, 10_000), $"{ResidentBytes(path)} bytes resident, not {fileBytes}");
            Assert.Equal(0, readahead.Refused);
        }
        Assert.Equal(bytes, File.ReadAllBytes(path)); // only the cache changed
    }

    [Fact]
    public void A_start_from_a_snapshot_not_in_the_page_cache_reads_it_ahead_whole_and_restores_the_same_state()
    {
        Assert.True(OperatingSystem.IsLinux(), "readahead is a Linux feature");
        var clock = new ManualClock(LogicHarness.StartUs);
        EngineOptions options = EngineTestOptions.For(_dir.Path, clock) with
        {
            Snapshots = new SnapshotOptions { Enabled = true, EveryEvents = 0, AtBatchClose = false, AtStop = false },
        };
        SwitchConfig config = TestConfigs.Small(transactionCapacity: 64);
        ulong hash;
        SnapshotResult taken;
        var outputs = new OutputRecorder();
        using (SwitchEngine engine = SwitchEngine.Start(options, config, outputs))
        {
            var work = new RandomWork(engine, outputs, clock, seed: 20261207);
            work.Run(400);
            taken = engine.RequestSnapshotAsync().WaitOrThrow();
            work.Run(100);
            Assert.True(engine.WaitUntilIdle(30_000));
            hash = engine.Logic.StateHash();
        }
        DropFromPageCache(taken.Path);
        using SwitchEngine restarted = SwitchEngine.Start(options, config, new OutputRecorder());
        Assert.Equal(taken.Path, restarted.Recovery.SnapshotPath);
        Assert.Equal(new FileInfo(taken.Path).Length, restarted.Recovery.SnapshotRestore!.ReadaheadBytes);
        Assert.Equal(hash, restarted.Logic.StateHash());
    }

    private static void DropFromPageCache(string path)
    {
        using SafeFileHandle file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
        Assert.Equal(0, Fsync(file));
        Assert.Equal(0, PosixFadvise(file, 0, 0, 4)); // POSIX_FADV_DONTNEED
    }

    /// <summary>Bytes of the file in the page cache, whole pages (the last one counted whole).</summary>
    private static unsafe long ResidentBytes(string path)
    {
        using SafeFileHandle file = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        long length = RandomAccess.GetLength(file);
        long page = Environment.SystemPageSize;
        void* mapped = Mmap(null, (nuint)length, 1 /* PROT_READ */, 1 /* MAP_SHARED */, file, 0);
        Assert.True(mapped != (void*)-1, $"mmap failed: {Marshal.GetLastPInvokeError()}");
        try
        {
            var pages = new byte[(length + page - 1) / page];
            fixed (byte* vector = pages) Assert.Equal(0, Mincore(mapped, (nuint)length, vector));
            return Math.Min(length, pages.Count(p => (p & 1) != 0) * page);
        }
        finally
        {
            Munmap(mapped, (nuint)length);
        }
    }

    [DllImport("libc", EntryPoint = "fsync")] private static extern int Fsync(SafeFileHandle fd);
    [DllImport("libc", EntryPoint = "posix_fadvise")] private static extern int PosixFadvise(SafeFileHandle fd, long offset, long length, int advice);
    [DllImport("libc", EntryPoint = "mmap", SetLastError = true)] private static extern unsafe void* Mmap(void* address, nuint length, int protection, int flags, SafeFileHandle fd, long offset);
    [DllImport("libc", EntryPoint = "mincore")] private static extern unsafe int Mincore(void* address, nuint length, byte* vector);
    [DllImport("libc", EntryPoint = "munmap")] private static extern unsafe int Munmap(void* address, nuint length);
}
