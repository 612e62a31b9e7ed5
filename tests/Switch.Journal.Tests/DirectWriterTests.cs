using static Switch.Journal.Tests.JournalTestKit;

namespace Switch.Journal.Tests;

/// <summary>The direct (O_DIRECT) writer of snapshots and the journal's archive: whole buffers, partial blocks written
/// out and written again, the file exactly the bytes given at every step, every write told to the budget's hook.</summary>
public sealed class DirectWriterTests : IDisposable
{
    private readonly TempJournalDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Writes_of_every_size_with_partial_blocks_written_out_between_leave_exactly_the_bytes_given()
    {
        string path = Path.Combine(_dir.Path, "direct.bin");
        var expected = new MemoryStream();
        var random = new Random(13);
        // Sizes across the block (4 KiB) and buffer boundaries, a write-out after some: each must leave the file whole.
        int[] sizes = [1, 4095, 1, 4096, 5000, DirectWriter.BufferBytes - 3, 7, DirectWriter.BufferBytes * 2 + 11, 0, 3, 123_456];
        var told = new List<long>();
        using (DirectWriter writer = DirectWriter.Create(path, told.Add))
        {
            for (int i = 0; i < sizes.Length; i++)
            {
                byte[] chunk = new byte[sizes[i]];
                random.NextBytes(chunk);
                writer.Write(chunk);
                expected.Write(chunk);
                Assert.Equal(expected.Length, writer.Position);
                if (i % 3 == 1)
                {
                    writer.WriteOut();
                    Assert.Equal(expected.ToArray(), ReadShared(path));
                }
            }
            writer.Sync();
            Assert.Equal(expected.ToArray(), ReadShared(path));
            // Each write told before it was made: nothing larger than the buffer, and at least every byte (a partial
            // block is written again with what follows).
            Assert.All(told, bytes => Assert.InRange(bytes, 4096, DirectWriter.BufferBytes));
            Assert.InRange(told.Sum(), expected.Length, long.MaxValue);
            // This file system takes O_DIRECT on Linux (ext4, xfs, recent tmpfs): the point of the writer.
            if (OperatingSystem.IsLinux()) Assert.True(writer.Direct, "O_DIRECT refused: the snapshot would be written through the page cache");
        }
        Assert.Equal(expected.ToArray(), File.ReadAllBytes(path));
    }

    [Fact]
    public void Creating_over_an_existing_file_empties_it_first()
    {
        string path = Path.Combine(_dir.Path, "direct.bin");
        File.WriteAllBytes(path, new byte[100_000]);
        using (DirectWriter writer = DirectWriter.Create(path))
        {
            writer.Write([1, 2, 3]);
            writer.Sync();
        }
        Assert.Equal([1, 2, 3], File.ReadAllBytes(path));
    }

    private static byte[] ReadShared(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var bytes = new byte[file.Length];
        file.ReadExactly(bytes);
        return bytes;
    }

    [Fact]
    public void A_retirement_writes_its_archive_through_the_budget_hook()
    {
        var records = Enumerable.Range(0, 5000).Select(i => MakeRecord(i, 100 + i % 400)).ToList();
        var told = new List<long>();
        string archive = System.IO.Path.Combine(_dir.Path, "archive");
        using (var journal = EventJournal.Open(_dir.Options(System.IO.Path.Combine(_dir.Path, "journal"))))
        {
            journal.Replay(new CollectingVisitor());
            List<long> addresses = AppendAll(journal, records, commitEvery: 100);
            Assert.Equal(4000, journal.Retire(addresses[4000], 4000, archive, told.Add));
        }
        (long first, long end, string file) = Assert.Single(JournalArchive.Files(archive));
        Assert.Equal((0, 4000), (first, end));
        long length = new FileInfo(file).Length;
        Assert.True(told.Count > 1, "an archive of a few MiB goes out in several writes");
        Assert.All(told, bytes => Assert.InRange(bytes, 4096, DirectWriter.BufferBytes));
        Assert.InRange(told.Sum(), length, length + DirectWriter.BufferBytes);
    }
    [Fact]
    public async Task A_retirement_waiting_on_its_write_budget_does_not_hold_back_a_commit()
    {
        var records = Enumerable.Range(0, 5000).Select(i => MakeRecord(i, 100 + i % 400)).ToList();
        string archive = System.IO.Path.Combine(_dir.Path, "archive");
        using var journal = EventJournal.Open(_dir.Options(System.IO.Path.Combine(_dir.Path, "journal")));
        journal.Replay(new CollectingVisitor());
        List<long> addresses = AppendAll(journal, records, commitEvery: 100);
        using var inBudget = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        // The budget's hook stands for the pacer's sleep: the retirement waits in it until the commit is done (or gives up).
        Task<long> retire = Task.Run(() => journal.Retire(addresses[4000], 4000, archive, _ =>
        {
            inBudget.Set();
            release.Wait(TimeSpan.FromSeconds(60));
        }));
        try
        {
            Assert.True(inBudget.Wait(TimeSpan.FromSeconds(60)), "the retirement never reached its write budget");
            Task commit = Task.Run(() =>
            {
                journal.Append(MakeRecord(5000, 200));
                journal.Commit();
            });
            // Generous: a commit takes milliseconds; held behind the retirement's epoch it never completes while it waits.
            Assert.True(await Task.WhenAny(commit, Task.Delay(TimeSpan.FromSeconds(20))) == commit, "a commit waited for the retirement's write budget");
            await commit;
            Assert.Equal(5001, journal.DurableRecordCount);
        }
        finally
        {
            release.Set();
        }
        Assert.Equal(4000, await retire);
        (long first, long end, _) = Assert.Single(JournalArchive.Files(archive));
        Assert.Equal((0, 4000), (first, end));
    }
}
