using static Switch.Journal.Tests.JournalTestKit;

namespace Switch.Journal.Tests;

/// <summary>The journal as a standby reads it (frames from a cursor, waiting for commits) and the tail cut a rejoining
/// old primary makes.</summary>
public class ReplicationReadTests
{
    private static List<(long RecordNo, byte[] Payload)> ReadAll(EventJournal journal, ref JournalCursor cursor, int maxBytes)
    {
        var read = new List<(long, byte[])>();
        var buffer = new byte[64 * 1024];
        while (true)
        {
            long first = cursor.RecordNo;
            int bytes = journal.ReadFrames(ref cursor, buffer, maxBytes, out int records);
            if (records == 0) return read;
            Assert.True(bytes <= maxBytes || records == 1);
            int offset = 0;
            for (int r = 0; r < records; r++)
            {
                Assert.Equal(JournalCorruptionReason.None, JournalFrames.Read(buffer.AsSpan(0, bytes), ref offset, first + r, out ReadOnlySpan<byte> payload, out _, out string detail));
                read.Add((first + r, payload.ToArray()));
            }
            Assert.Equal(bytes, offset);
        }
    }

    [Fact]
    public void Frames_read_from_any_record_in_batches_are_the_records_appended()
    {
        using var temp = new TempJournalDirectory();
        var random = new Random(3);
        List<byte[]> records = Enumerable.Range(0, 500).Select(i => MakeRecord(i, random.Next(1, 900))).ToList();
        using var journal = EventJournal.Open(temp.Options());
        journal.Replay(new CollectingVisitor());
        AppendAll(journal, records, commitEvery: 37);
        foreach (int from in new[] { 0, 1, 250, 499, 500 })
        {
            JournalCursor cursor = journal.Locate(from);
            var read = ReadAll(journal, ref cursor, maxBytes: 4096);
            Assert.Equal(records.Count - from, read.Count);
            for (int i = 0; i < read.Count; i++) Assert.Equal(records[from + i], read[i].Payload);
            Assert.Equal(500, cursor.RecordNo);
            // From a hint: the same place.
            Assert.Equal(journal.Locate(from), journal.Locate(from, journal.Locate(Math.Max(0, from - 7))));
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => journal.Locate(501));
    }

    [Fact]
    public async Task A_reader_at_the_end_waits_for_the_next_commit()
    {
        using var temp = new TempJournalDirectory();
        using var journal = EventJournal.Open(temp.Options());
        journal.Replay(new CollectingVisitor());
        AppendAll(journal, [MakeRecord(0, 10)], commitEvery: 1);
        Task waiting = journal.WaitForDurableAsync(2, CancellationToken.None);
        await Task.Delay(100);
        Assert.False(waiting.IsCompleted);
        journal.Append(MakeRecord(1, 10));
        Assert.False(waiting.IsCompleted); // appended is not durable
        journal.Commit();
        await waiting.WaitAsync(TimeSpan.FromSeconds(30));
        using var cancel = new CancellationTokenSource(50);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => journal.WaitForDurableAsync(3, cancel.Token));
    }

    [Fact]
    public void A_tail_cut_before_appends_leaves_the_first_records_and_appends_go_on_after_them()
    {
        using var temp = new TempJournalDirectory();
        List<byte[]> records = Enumerable.Range(0, 300).Select(i => MakeRecord(i, 40 + i % 50)).ToList();
        WriteJournal(temp.Options(), records);
        JournalTruncation? cut;
        using (var journal = EventJournal.Open(temp.Options()))
        {
            Assert.Equal(300, journal.Replay(new CollectingVisitor()));
            Assert.Throws<ArgumentOutOfRangeException>(() => journal.TruncateTo(0));
            Assert.Null(journal.TruncateTo(300));
            cut = journal.TruncateTo(120);
            Assert.Equal(300, journal.RecordCount + cut!.RecordsCut);
            Assert.Equal(120, journal.RecordCount);
            journal.Append(MakeRecord(1000, 33));
            journal.Commit();
            Assert.Throws<InvalidOperationException>(() => journal.TruncateTo(50));
        }
        Assert.Equal(180, cut.RecordsCut);
        CollectingVisitor after = Reopen(temp.Options(), out EventJournal reopened);
        using (reopened)
        {
            Assert.Equal(121, after.Records.Count);
            for (int i = 0; i < 120; i++) Assert.Equal(records[i], after.Records[i].Record);
            Assert.Equal(MakeRecord(1000, 33), after.Records[120].Record);
            JournalCursor cursor = reopened.Locate(118);
            var read = ReadAll(reopened, ref cursor, maxBytes: 100);
            Assert.Equal([118L, 119L, 120L], read.Select(r => r.RecordNo));
        }
    }
}
