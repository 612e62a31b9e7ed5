using Switch.Testing;
using Xunit.Abstractions;
using static Switch.Journal.Tests.JournalTestKit;

namespace Switch.Journal.Tests;

/// <summary>
/// One durable write per group commit: the commit slot is written at most once per
/// <see cref="JournalOptions.CommitSlotEveryBytes"/>, and Open finds the records of the commits after it by reading on
/// from it (whole, numbered next), then cuts off what follows them.
/// </summary>
public class CommitSlotTests(ITestOutputHelper output)
{
    private static string Slots(TempJournalDirectory temp) => Path.Combine(temp.Path, "commits", "commit-slots");

    [Fact]
    public void The_records_of_commits_after_the_newest_slot_are_found_by_reading_on()
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options();
        var first = SameSize(40, 70);
        var later = Enumerable.Range(40, 400).Select(i => MakeRecord(i, 20 + i % 90)).ToList(); // across pages
        using (var journal = EventJournal.Open(options))
        {
            journal.Replay(new CollectingVisitor());
            AppendAll(journal, first, commitEvery: first.Count);
            byte[] slotsAfterFirst = File.ReadAllBytes(Slots(temp));
            AppendAll(journal, later, commitEvery: 30); // 14 commits
            // Far below CommitSlotEveryBytes: none of them wrote a slot.
            Assert.Equal(slotsAfterFirst, File.ReadAllBytes(Slots(temp)));
            Assert.Equal(first.Count + later.Count, journal.DurableRecordCount);
        }

        var visitor = Reopen(options, out var reopened);
        using (reopened)
        {
            Assert.Equal(first.Concat(later), visitor.Records.Select(r => r.Record));
            Assert.Equal(later.Count, reopened.AdoptedRecords);
            Assert.Null(reopened.TornTailCut);
            AppendAll(reopened, SameSize(5, 33), commitEvery: 5);
        }
        var again = Reopen(options, out var third);
        using (third)
        {
            Assert.Equal(first.Count + later.Count + 5, again.Records.Count);
            Assert.Equal(5, third.AdoptedRecords); // the slot written at the last Open covered the adopted ones
        }
    }

    [Fact]
    public void A_record_of_a_write_never_committed_is_never_taken_for_a_new_one_after_it()
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options();
        // Entries of 256 bytes (4-byte length, 20-byte frame header, 232 bytes): A fills the first 64 KiB page, B begins
        // the second, and C, 16 of B's size, ends on a 4 KiB boundary, so C's writes leave the bytes after it untouched.
        const int payload = 232;
        var a = SameSize(255, payload);
        var b = Enumerable.Range(255, 40).Select(i => MakeRecord(i, payload)).ToList();
        var c = Enumerable.Range(5000, 16).Select(i => MakeRecord(i, payload)).ToList();
        List<long> bAddresses;
        using (var journal = EventJournal.Open(options))
        {
            journal.Replay(new CollectingVisitor());
            AppendAll(journal, a, commitEvery: a.Count);
            bAddresses = AppendAll(journal, b, commitEvery: b.Count);
        }
        Assert.Equal(options.PageSizeBytes, bAddresses[0]);
        // B's write torn at its first record (never acknowledged): the rest of B lies on disk, whole, numbered 256..294.
        Overwrite(options, bAddresses[0] + sizeof(int) + RecordFrame.HeaderBytes + 20, [0xEE, 0xEE]);

        var visitor = Reopen(options, out var reopened);
        using (reopened)
        {
            Assert.Equal(a, visitor.Records.Select(r => r.Record));
            Assert.Equal(0, reopened.AdoptedRecords);
            // Said as a torn tail: where, why, and that appends resume there (the bytes after it are cut off the file).
            JournalTailCut cut = Assert.IsType<JournalTailCut>(reopened.TornTailCut);
            Assert.Equal((bAddresses[0], bAddresses[0], (long)a.Count, JournalCorruptionReason.ChecksumMismatch),
                (cut.Address, cut.ResumeAddress, cut.RecordsBefore, cut.Reason));
            Assert.True(cut.ByteCount >= b.Count * 256, $"cut {cut.ByteCount} bytes");
            // Two commits: the first after an Open writes its slot, the second leaves it behind. C takes B's addresses
            // and B's numbers.
            Assert.Equal(bAddresses.Take(c.Count), AppendAll(reopened, c, commitEvery: c.Count / 2));
        }
        // C (255..270) ends where B's record 271 began: that old record must be gone, not read on as the next one.
        var again = Reopen(options, out var third);
        using (third)
        {
            Assert.Equal(a.Concat(c), again.Records.Select(r => r.Record));
            Assert.Equal(c.Count / 2, third.AdoptedRecords);
        }
    }

    [Fact]
    public void Records_retired_past_the_newest_slot_stay_retired_and_the_rest_are_read_on()
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options();
        var records = Enumerable.Range(0, 600).Select(i => MakeRecord(i, 30 + i % 60)).ToList();
        string archive = Path.Combine(temp.Path, "archive");
        using (var journal = EventJournal.Open(options))
        {
            journal.Replay(new CollectingVisitor());
            AppendAll(journal, records, commitEvery: 20); // one slot, at the first commit
            JournalCursor at = journal.Locate(450);
            Assert.Equal(450, journal.Retire(at.Address, at.RecordNo, archive));
        }

        var reopened = EventJournal.Open(options);
        using (reopened)
        {
            var visitor = new CollectingVisitor();
            Assert.Equal(records.Count, reopened.Replay(visitor));
            Assert.Equal(450, reopened.RetiredRecords);
            Assert.Equal(records.Skip(450), visitor.Records.Select(r => r.Record));
            Assert.Null(reopened.TornTailCut);
        }
    }

    [Fact]
    public void Every_slot_is_written_with_commit_slot_every_bytes_zero()
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options(commitSlotEveryBytes: 0);
        using (var journal = EventJournal.Open(options))
        {
            journal.Replay(new CollectingVisitor());
            AppendAll(journal, SameSize(10, 50), commitEvery: 10);
            byte[] before = File.ReadAllBytes(Slots(temp));
            AppendAll(journal, SameSize(10, 50), commitEvery: 10);
            Assert.NotEqual(before, File.ReadAllBytes(Slots(temp)));
        }
        Reopen(options, out var reopened).Records.ForEach(_ => { });
        using (reopened) Assert.Equal(0, reopened.AdoptedRecords);
    }

    [Fact]
    public async Task Records_committed_after_the_newest_slot_survive_a_power_cut()
    {
        using PowerFs? fs = await PowerFs.MountAsync(output);
        if (fs is null) return;
        using var sizes = new TempJournalDirectory();
        var options = sizes.Options(Path.Combine(fs.MountPoint, "journal"));
        var records = Enumerable.Range(0, 3000).Select(i => MakeRecord(i, 40 + i % 200)).ToList(); // about 430 KiB
        using (var journal = EventJournal.Open(options))
        {
            journal.Replay(new CollectingVisitor());
            AppendAll(journal, records, commitEvery: 25); // 120 commits, one slot written (the first)
        }

        await fs.CutAsync();

        var visitor = Reopen(options, out var reopened);
        using (reopened)
        {
            Assert.Equal(records, visitor.Records.Select(r => r.Record));
            Assert.True(reopened.AdoptedRecords > 2900, $"adopted {reopened.AdoptedRecords}");
        }
    }
}
