using System.Runtime.InteropServices;
using FASTER.core;
using Switch.Tests.Support;
using static Switch.Journal.Tests.JournalTestKit;

namespace Switch.Journal.Tests;

/// <summary>The journal's and the archive's FASTER device: writes O_DIRECT and O_SYNC (no page-cache copy, durable when
/// done), reads of what was written, segments found again on reopening and removed, a tmpfs directory as good as a disk.</summary>
public sealed class DirectLogDeviceTests : IDisposable
{
    private readonly TempJournalDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static bool X64Linux => OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64;

    [Fact]
    public void The_journal_log_is_written_direct_and_synchronous_and_replays_whole()
    {
        JournalOptions options = _dir.Options();
        List<byte[]> records = SameSize(3_000, 700); // two 1 MiB segments and more
        using (EventJournal journal = EventJournal.Open(options))
        {
            journal.Replay(new CollectingVisitor());
            AppendAll(journal, records, commitEvery: 50);
            string segment = Directory.EnumerateFiles(Path.Combine(options.DirectoryPath, "log")).Order().Last();
            // The kernel's word, not the device's: the open file's flags (O_DIRECT's value here is x64's).
            if (X64Linux)
                Assert.True(OpenFileFlags.WrittenWith(segment, OpenFileFlags.Direct | OpenFileFlags.Sync),
                    $"{segment}: flags {string.Join(", ", OpenFileFlags.Of(segment).Select(f => Convert.ToString(f, 8)))}");
        }
        CollectingVisitor replayed = Reopen(options, out EventJournal reopened);
        using (reopened) Assert.Equal(records, replayed.Records.Select(r => r.Record));
    }

    [Fact]
    public void A_journal_on_tmpfs_works_as_on_disk()
    {
        const string shm = "/dev/shm";
        if (!OperatingSystem.IsLinux() || !Directory.Exists(shm)) return; // no tmpfs to try
        string path = Path.Combine(shm, "switch-journal-tests-" + Guid.NewGuid().ToString("N"));
        try
        {
            JournalOptions options = _dir.Options(path);
            List<byte[]> records = SameSize(2_000, 900);
            WriteJournal(options, records);
            CollectingVisitor replayed = Reopen(options, out EventJournal reopened);
            using (reopened)
            {
                Assert.Equal(records, replayed.Records.Select(r => r.Record));
                AppendAll(reopened, SameSize(10, 100), commitEvery: 5);
            }
        }
        finally
        {
            Directory.Delete(path, recursive: true);
        }
    }

    [Fact]
    public unsafe void Writes_read_back_across_segments_and_reopening_finds_the_segments_left()
    {
        string baseName = Path.Combine(_dir.Path, "dev", "data.log");
        const long segmentBytes = 1 << 16;
        const int pageBytes = 8 << 10;
        byte* page = (byte*)NativeMemory.AlignedAlloc(pageBytes, 4096);
        try
        {
            using (var device = new DirectLogDevice(baseName, recover: false))
            {
                device.Initialize(segmentBytes);
                Assert.Equal(4096u, device.SectorSize);
                for (int i = 0; i < 24; i++) // three segments of eight pages
                {
                    new Span<byte>(page, pageBytes).Fill((byte)(i + 1));
                    Assert.Equal(((uint)0, (uint)pageBytes), Done(cb => device.WriteAsync((IntPtr)page, (ulong)i * pageBytes, pageBytes, cb, null!)));
                }
                if (X64Linux) Assert.True(device.Direct);
                if (X64Linux) Assert.True(OpenFileFlags.WrittenWith(baseName + ".2", OpenFileFlags.Direct | OpenFileFlags.Sync));
                device.RemoveSegment(0);
                Assert.False(File.Exists(baseName + ".0"));
            }
            using (var device = new DirectLogDevice(baseName, recover: true))
            {
                device.Initialize(segmentBytes);
                Assert.Equal((1, 2), (device.StartSegment, device.EndSegment));
                new Span<byte>(page, pageBytes).Clear();
                foreach (int i in new[] { 11, 21 }) // in segments 1 and 2
                {
                    new Span<byte>(page, pageBytes).Clear();
                    Assert.Equal(((uint)0, (uint)pageBytes), Done(cb => device.ReadAsync((ulong)i * pageBytes, (IntPtr)page, pageBytes, cb, null!)));
                    Assert.True(new Span<byte>(page, pageBytes).IndexOfAnyExcept((byte)(i + 1)) < 0, $"page {i} holds {i + 1}s");
                }
            }
        }
        finally
        {
            NativeMemory.AlignedFree(page);
        }
    }

    /// <summary>Starts an I/O and waits for its callback: (error code, bytes).</summary>
    private static (uint Error, uint Bytes) Done(Action<DeviceIOCompletionCallback> start)
    {
        var done = new TaskCompletionSource<(uint, uint)>(TaskCreationOptions.RunContinuationsAsynchronously);
        start((error, bytes, _) => done.SetResult((error, bytes)));
        Assert.True(done.Task.Wait(10_000), "the I/O never completed");
        return done.Task.Result;
    }
}
