using static Switch.Journal.Tests.JournalTestKit;

namespace Switch.Journal.Tests;

public class EventJournalTests
{
    [Fact]
    public void New_journal_replays_nothing()
    {
        using var temp = new TempJournalDirectory();
        var visitor = Reopen(temp.Options(), out var journal);
        using (journal)
        {
            Assert.Empty(visitor.Records);
            Assert.Null(journal.TornTailCut);
        }
    }

    [Fact]
    public void Round_trip_of_varied_sizes_survives_reopen_in_order()
    {
        using var temp = new TempJournalDirectory();
        var random = new Random(42);
        var records = Enumerable.Range(0, 5000)
            .Select(i => MakeRecord(i, i % 50 == 0 ? 4096 : random.Next(1, 600)))
            .ToList();
        records[1] = MakeRecord(1, 1);

        List<long> addresses;
        using (var journal = EventJournal.Open(temp.Options()))
        {
            Assert.Equal(0, journal.Replay(new CollectingVisitor()));
            addresses = AppendAll(journal, records, commitEvery: 97);
            Assert.Equal(records.Count, journal.RecordCount);
            Assert.Equal(records.Count, journal.DurableRecordCount);
        }
        Assert.Equal(addresses.Order(), addresses); // addresses grow with log order

        for (int reopen = 0; reopen < 2; reopen++)
        {
            var visitor = Reopen(temp.Options(), out var journal);
            using (journal)
            {
                Assert.Null(journal.TornTailCut);
                Assert.Equal(records.Count, visitor.Records.Count);
                for (int i = 0; i < records.Count; i++)
                {
                    Assert.Equal(addresses[i], visitor.Records[i].Address);
                    Assert.Equal(records[i], visitor.Records[i].Record);
                }
            }
        }
    }

    [Fact]
    public void Appends_continue_after_reopen()
    {
        using var temp = new TempJournalDirectory();
        var first = SameSize(300, 100);
        var second = Enumerable.Range(300, 200).Select(i => MakeRecord(i, 77)).ToList();
        using (var journal = EventJournal.Open(temp.Options()))
        {
            journal.Replay(new CollectingVisitor());
            AppendAll(journal, first, commitEvery: 64);
        }
        using (var journal = EventJournal.Open(temp.Options()))
        {
            Assert.Equal(300, journal.Replay(new CollectingVisitor()));
            AppendAll(journal, second, commitEvery: 64);
            Assert.Equal(500, journal.RecordCount);
        }
        var visitor = Reopen(temp.Options(), out var reopened);
        reopened.Dispose();
        Assert.Equal(first.Concat(second), visitor.Records.Select(r => r.Record));
    }

    [Fact]
    public void Large_count_round_trip()
    {
        using var temp = new TempJournalDirectory();
        const int count = 200_000;
        var record = new byte[100];
        using (var journal = EventJournal.Open(temp.Options()))
        {
            journal.Replay(new CollectingVisitor());
            for (int i = 0; i < count; i++)
            {
                BitConverter.TryWriteBytes(record, i);
                journal.Append(record);
                if ((i + 1) % 4096 == 0) journal.Commit();
            }
            journal.Commit();
            Assert.Equal(count, journal.DurableRecordCount);
        }

        var checker = new SequenceChecker();
        using (var journal = EventJournal.Open(temp.Options()))
        {
            Assert.Equal(count, journal.Replay(checker));
            Assert.Null(journal.TornTailCut);
        }
        Assert.Equal(count, checker.Next);
        // 200k records of 124 bytes on 1 MiB segments: the log spans many segment files.
        Assert.True(Directory.GetFiles(Path.Combine(temp.Path, "log")).Length > 10);
    }

    private sealed class SequenceChecker : IJournalVisitor
    {
        public int Next;

        public void OnRecord(long address, ReadOnlySpan<byte> record)
        {
            Assert.Equal(100, record.Length);
            Assert.Equal(Next, BitConverter.ToInt32(record));
            Next++;
        }
    }

    [Fact]
    public void Uncommitted_records_after_a_crash_are_absent_or_intact_never_corrupt()
    {
        using var temp = new TempJournalDirectory();
        string crashImage = Path.Combine(temp.Path, "crash-image");
        string live = Path.Combine(temp.Path, "live");
        var committed = SameSize(1000, 100);
        // Enough uncommitted bytes (about 12 pages) that FasterLog flushes some pages without a commit.
        var uncommitted = Enumerable.Range(1000, 3000).Select(i => MakeRecord(i, 250)).ToList();

        using (var journal = EventJournal.Open(temp.Options(live)))
        {
            journal.Replay(new CollectingVisitor());
            AppendAll(journal, committed, commitEvery: 128);
            foreach (var record in uncommitted) journal.Append(record);
            Assert.Equal(1000, journal.DurableRecordCount);
            Assert.Equal(4000, journal.RecordCount);
            CopyDirectory(live, crashImage); // the disk as a kill -9 at this instant would leave it
        }

        foreach (var directory in new[] { crashImage, live })
        {
            var visitor = Reopen(temp.Options(directory), out var journal);
            using (journal)
            {
                Assert.InRange(visitor.Records.Count, 1000, 4000);
                var expected = committed.Concat(uncommitted).Take(visitor.Records.Count);
                Assert.Equal(expected, visitor.Records.Select(r => r.Record));
                Assert.Null(journal.TornTailCut);
                journal.Append(MakeRecord(-1, 10));
                journal.Commit();
            }
        }
    }

    [Fact]
    public void Append_does_not_allocate()
    {
        using var temp = new TempJournalDirectory();
        // 1 MiB pages: the measured appends stay inside one page, so no page flush (FasterLog's, which allocates) runs.
        using var journal = EventJournal.Open(new JournalOptions { DirectoryPath = temp.Path, PageSizeBytes = 1 << 20 });
        journal.Replay(new CollectingVisitor());
        var record = new byte[100];
        for (int i = 0; i < 100; i++) journal.Append(record); // warm up: JIT, first page

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 300; i++) journal.Append(record);
        long allocatedBytes = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocatedBytes);
    }

    [Fact]
    public void Append_or_commit_before_replay_is_refused_and_replay_runs_once()
    {
        using var temp = new TempJournalDirectory();
        using var journal = EventJournal.Open(temp.Options());
        Assert.Throws<InvalidOperationException>(() => journal.Append(new byte[10]));
        Assert.Throws<InvalidOperationException>(() => journal.Commit());
        journal.Replay(new CollectingVisitor());
        Assert.Throws<InvalidOperationException>(() => journal.Replay(new CollectingVisitor()));
        journal.Append(new byte[10]);
    }

    [Fact]
    public void Record_size_outside_one_to_max_is_an_argument_error()
    {
        using var temp = new TempJournalDirectory();
        using var journal = EventJournal.Open(temp.Options());
        journal.Replay(new CollectingVisitor());
        Assert.Throws<ArgumentException>(() => journal.Append(new byte[4097]));
        Assert.Throws<ArgumentException>(() => journal.Append(ReadOnlySpan<byte>.Empty));
        journal.Append(new byte[4096]);
        journal.Append(new byte[1]);
        Assert.Equal(2, journal.RecordCount);
    }

    [Fact]
    public void Options_out_of_bounds_are_refused()
    {
        using var temp = new TempJournalDirectory();
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            EventJournal.Open(new JournalOptions { DirectoryPath = temp.Path, PageSizeBytes = 100_000 }));
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            EventJournal.Open(new JournalOptions { DirectoryPath = temp.Path, MemorySizeBytes = 1 << 20 }));
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            EventJournal.Open(new JournalOptions { DirectoryPath = temp.Path, MaxRecordBytes = 1 << 20 }));
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            EventJournal.Open(new JournalOptions { DirectoryPath = temp.Path, MaxRecordBytes = 0 }));
    }

    [Fact]
    public void A_second_open_of_the_same_directory_is_refused()
    {
        using var temp = new TempJournalDirectory();
        using var journal = EventJournal.Open(temp.Options());
        Assert.ThrowsAny<IOException>(() => EventJournal.Open(temp.Options()));
    }
}
