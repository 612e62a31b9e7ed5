using static Switch.Journal.Tests.JournalTestKit;

namespace Switch.Journal.Tests;

/// <summary>A read-only scan of the live journal beside its writer (routing explained replays the journal this way).</summary>
public class ScanCommittedTests
{
    [Fact]
    public void A_scan_beside_the_writer_sees_every_record_committed_when_it_began_in_order_and_nothing_else()
    {
        using var temp = new TempJournalDirectory();
        var random = new Random(7);
        List<byte[]> first = Enumerable.Range(0, 3000).Select(i => MakeRecord(i, random.Next(1, 900))).ToList();
        using var journal = EventJournal.Open(temp.Options());
        journal.Replay(new CollectingVisitor());
        List<long> addresses = AppendAll(journal, first, commitEvery: 101);

        // The writer goes on appending and committing while the scans run.
        using var stopWriting = new CancellationTokenSource();
        Task writer = Task.Run(() =>
        {
            for (int i = first.Count; !stopWriting.IsCancellationRequested && i < first.Count + 200_000; i++)
            {
                journal.Append(MakeRecord(i, 64));
                if (i % 50 == 0) journal.Commit();
            }
            journal.Commit();
        });
        for (int scan = 0; scan < 3; scan++)
        {
            var visitor = new CollectingVisitor();
            long seen = journal.ScanCommitted(visitor, CancellationToken.None);
            Assert.True(seen >= first.Count, $"scan {scan}: {seen} records");
            Assert.Equal(seen, visitor.Records.Count);
            for (int i = 0; i < first.Count; i++)
            {
                Assert.Equal(addresses[i], visitor.Records[i].Address);
                Assert.Equal(first[i], visitor.Records[i].Record);
            }
            for (int i = first.Count; i < visitor.Records.Count; i++)
            {
                Assert.Equal(MakeRecord(i, 64), visitor.Records[i].Record);
            }
        }
        stopWriting.Cancel();
        writer.Wait(TimeSpan.FromSeconds(60));
        Assert.True(writer.IsCompletedSuccessfully);
    }

    [Fact]
    public void A_scan_stops_when_told_and_a_closed_journal_refuses_one()
    {
        using var temp = new TempJournalDirectory();
        var journal = EventJournal.Open(temp.Options());
        journal.Replay(new CollectingVisitor());
        AppendAll(journal, SameSize(500, 40), commitEvery: 100);
        using var stop = new CancellationTokenSource();
        var visitor = new StoppingVisitor(after: 10, stop);
        Assert.Equal(10, journal.ScanCommitted(visitor, stop.Token));
        Assert.Equal(10, visitor.Count);
        journal.Dispose();
        Assert.Throws<ObjectDisposedException>(() => journal.ScanCommitted(new CollectingVisitor(), CancellationToken.None));
    }

    private sealed class StoppingVisitor(int after, CancellationTokenSource stop) : IJournalVisitor
    {
        public int Count { get; private set; }

        public void OnRecord(long address, ReadOnlySpan<byte> record)
        {
            if (++Count == after) stop.Cancel();
        }
    }
}
