using static Switch.Journal.Tests.JournalTestKit;

namespace Switch.Journal.Tests;

/// <summary>Torn tails are cut and the journal carries on; damage with valid records after it is corruption.</summary>
public class RecoveryTests
{
    private const int Count = 1000;

    /// <summary>After a cut: append more, reopen twice; every reopen sees the records before the cut, then the new ones.</summary>
    private static void AssertCutThenCleanContinuation(JournalOptions options, List<byte[]> records, int survivors,
        long cutAddress, JournalCorruptionReason? reason = null)
    {
        var visitor = Reopen(options, out var journal);
        var more = Enumerable.Range(5000, 150).Select(i => MakeRecord(i, 90)).ToList();
        using (journal)
        {
            Assert.Equal(records.Take(survivors), visitor.Records.Select(r => r.Record));
            var cut = Assert.IsType<JournalTailCut>(journal.TornTailCut);
            Assert.Equal(cutAddress, cut.Address);
            Assert.Equal(survivors, cut.RecordsBefore);
            Assert.True(cut.ByteCount > 0);
            Assert.Equal(cut.Address + cut.ByteCount, cut.ResumeAddress);
            if (reason is not null) Assert.Equal(reason, cut.Reason);
            AppendAll(journal, more, commitEvery: 40);
        }

        for (int reopen = 0; reopen < 2; reopen++)
        {
            var again = Reopen(options, out var reopened);
            using (reopened)
            {
                Assert.Null(reopened.TornTailCut);
                Assert.Equal(records.Take(survivors).Concat(more), again.Records.Select(r => r.Record));
                var addresses = again.Records.Select(r => r.Address).ToList();
                Assert.Equal(addresses.Order(), addresses);
            }
        }
    }

    [Fact]
    public void Truncated_last_record_is_cut_and_appends_continue_cleanly()
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options(commitSlotEveryBytes: 0);
        var records = SameSize(Count, 100);
        var addresses = WriteJournal(options, records);
        Truncate(options, addresses[^1] + 10); // a few bytes of the last record remain

        AssertCutThenCleanContinuation(options, records, Count - 1, addresses[^1]);
    }

    [Theory]
    [InlineData(0)] // exactly at a record boundary: FasterLog reads the missing bytes as zeros, i.e. as padding
    [InlineData(3)] // inside FasterLog's length prefix
    public void Truncation_across_many_records_and_pages_is_cut(int bytesLeftOfRecord)
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options(commitSlotEveryBytes: 0);
        var records = SameSize(Count, 300); // about 5 pages of 64 KiB
        var addresses = WriteJournal(options, records);
        Truncate(options, addresses[400] + bytesLeftOfRecord);

        AssertCutThenCleanContinuation(options, records, 400, addresses[400]);
    }

    [Fact]
    public void Overwritten_last_record_is_cut_with_a_checksum_reason()
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options(commitSlotEveryBytes: 0);
        var records = SameSize(Count, 100);
        var addresses = WriteJournal(options, records);
        Overwrite(options, addresses[^1] + PayloadOffset + 5, new byte[] { 0xDE, 0xAD, 0xBE, 0xEF });

        AssertCutThenCleanContinuation(options, records, Count - 1, addresses[^1], JournalCorruptionReason.ChecksumMismatch);
    }

    [Fact]
    public void Zeroed_tail_is_cut_even_though_fasterlog_reads_zeros_as_padding()
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options(commitSlotEveryBytes: 0);
        var records = SameSize(Count, 100);
        var addresses = WriteJournal(options, records);
        Overwrite(options, addresses[990], new byte[(int)(addresses[^1] - addresses[990]) + 50]);

        AssertCutThenCleanContinuation(options, records, 990, addresses[990], JournalCorruptionReason.Unreadable);
    }

    [Fact]
    public void A_second_torn_tail_after_a_cut_is_cut_too()
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options(commitSlotEveryBytes: 0);
        var records = SameSize(Count, 100);
        var addresses = WriteJournal(options, records);
        Truncate(options, addresses[^1] + 10);

        long lastAddress;
        using (var journal = EventJournal.Open(options))
        {
            journal.Replay(new CollectingVisitor());
            Assert.NotNull(journal.TornTailCut);
            for (int i = 0; i < 10; i++) journal.Append(MakeRecord(7000 + i, 60));
            lastAddress = journal.Append(MakeRecord(7010, 60));
            journal.Commit();
        }
        Overwrite(options, lastAddress + PayloadOffset, new byte[] { 1, 2, 3 });

        var visitor = Reopen(options, out var reopened);
        using (reopened)
        {
            Assert.Equal(Count - 1 + 10, visitor.Records.Count);
            Assert.Equal(lastAddress, reopened.TornTailCut!.Address);
            reopened.Append(MakeRecord(8000, 10));
            reopened.Commit();
        }
        var final = Reopen(options, out var last);
        last.Dispose();
        Assert.Equal(Count - 1 + 10 + 1, final.Records.Count);
        Assert.Equal(MakeRecord(8000, 10), final.Records[^1].Record);
    }

    [Fact]
    public void Flipped_byte_in_an_early_record_is_corruption_at_that_address()
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options(commitSlotEveryBytes: 0);
        var addresses = WriteJournal(options, SameSize(Count, 100));
        long target = addresses[10] + PayloadOffset + 42;
        Overwrite(options, target, new[] { (byte)(ReadByte(options, target) ^ 0x10) });

        var error = AssertCorrupt(options);
        Assert.Equal(addresses[10], error.Address);
        Assert.Equal(JournalCorruptionReason.ChecksumMismatch, error.Reason);
        Assert.Contains(addresses[10].ToString(), error.Message);
    }

    [Fact]
    public void Wrong_format_version_is_a_precise_error()
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options(commitSlotEveryBytes: 0);
        var addresses = WriteJournal(options, SameSize(Count, 100));
        Overwrite(options, addresses[10] + VersionOffset, BitConverter.GetBytes(99u));

        var error = AssertCorrupt(options);
        Assert.Equal(addresses[10], error.Address);
        Assert.Equal(JournalCorruptionReason.UnsupportedFormatVersion, error.Reason);
        Assert.Contains("version 99", error.Message);
    }

    [Fact]
    public void Wrong_payload_length_is_a_precise_error()
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options(commitSlotEveryBytes: 0);
        var addresses = WriteJournal(options, SameSize(Count, 100));
        Overwrite(options, addresses[500] + LengthOffset, BitConverter.GetBytes(99));

        var error = AssertCorrupt(options);
        Assert.Equal(addresses[500], error.Address);
        Assert.Equal(JournalCorruptionReason.LengthMismatch, error.Reason);
    }

    [Fact]
    public void Zeroed_fasterlog_length_in_the_middle_is_corruption_not_silent_loss()
    {
        // FasterLog reads a zero length as page padding and skips to the next page without complaint;
        // the sequence numbers catch it, and the error names where the missing records begin.
        using var temp = new TempJournalDirectory();
        var options = temp.Options(commitSlotEveryBytes: 0);
        var addresses = WriteJournal(options, SameSize(Count, 100));
        Overwrite(options, addresses[20], new byte[4]);

        var error = AssertCorrupt(options);
        Assert.Equal(addresses[20], error.Address);
    }

    [Fact]
    public void Garbage_fasterlog_length_in_the_middle_is_corruption()
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options(commitSlotEveryBytes: 0);
        var addresses = WriteJournal(options, SameSize(Count, 100));
        Overwrite(options, addresses[20], BitConverter.GetBytes(0x7FFF_0000));

        var error = AssertCorrupt(options);
        Assert.Equal(addresses[20], error.Address);
    }

    [Fact]
    public void Torn_tail_with_huge_garbage_lengths_is_cut()
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options(commitSlotEveryBytes: 0);
        var records = SameSize(Count, 100);
        var addresses = WriteJournal(options, records);
        // Large, not near int.MaxValue: FasterLog's iterator hangs on lengths whose alignment overflows (see ScanSpan).
        var garbage = new byte[(int)(addresses[^1] - addresses[995]) + 100];
        for (int i = 0; i + 4 <= garbage.Length; i += 4) BitConverter.TryWriteBytes(garbage.AsSpan(i), 0x3FFF_0000 - i);
        Overwrite(options, addresses[995], garbage);

        AssertCutThenCleanContinuation(options, records, 995, addresses[995]);
    }

    [Fact]
    public void Damage_before_an_earlier_cut_is_corruption()
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options(commitSlotEveryBytes: 0);
        var addresses = WriteJournal(options, SameSize(Count, 100));
        Truncate(options, addresses[^1] + 10);
        using (var journal = EventJournal.Open(options))
        {
            journal.Replay(new CollectingVisitor());
            Assert.NotNull(journal.TornTailCut);
        }
        // The last record before the cut: nothing valid follows it inside its span, yet it was verified once.
        Overwrite(options, addresses[^2] + PayloadOffset, new byte[] { 9, 9, 9 });

        var error = AssertCorrupt(options);
        Assert.Equal(addresses[^2], error.Address);
    }

    [Fact]
    public void Corrupt_manifest_is_refused()
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options(commitSlotEveryBytes: 0);
        WriteJournal(options, SameSize(10, 100));
        string manifest = Path.Combine(temp.Path, "manifest");
        var bytes = File.ReadAllBytes(manifest);
        bytes[9] ^= 1;
        File.WriteAllBytes(manifest, bytes);

        var error = Assert.Throws<JournalCorruptException>(() => EventJournal.Open(options).Dispose());
        Assert.Equal(JournalCorruptionReason.ManifestCorrupt, error.Reason);
        Assert.Equal(-1, error.Address);
    }

    [Fact]
    public void A_torn_write_of_the_newest_commit_slot_recovers_to_the_commit_before_it_and_reads_on_from_there()
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options(commitSlotEveryBytes: 0);
        var first = SameSize(100, 80);
        var second = Enumerable.Range(100, 50).Select(i => MakeRecord(i, 80)).ToList();
        var third = Enumerable.Range(150, 30).Select(i => MakeRecord(i, 80)).ToList();
        using (var journal = EventJournal.Open(options))
        {
            journal.Replay(new CollectingVisitor());
            AppendAll(journal, first, commitEvery: first.Count);
            AppendAll(journal, second, commitEvery: second.Count);
        }
        // Both commits are there; the newest one's slot is torn (its metadata garbled), as by a crash mid-write.
        string slots = Path.Combine(temp.Path, "commits", "commit-slots");
        byte[] bytes = File.ReadAllBytes(slots);
        int newest = BitConverter.ToInt64(bytes, 8) > BitConverter.ToInt64(bytes, 4096 + 8) ? 0 : 4096;
        bytes[newest + 50] ^= 0x5A;
        File.WriteAllBytes(slots, bytes);

        // Recovery starts from the commit before it; the second commit's records were durable before its slot was
        // written, so reading on finds them whole and in sequence: nothing corrupt, nothing lost.
        var visitor = Reopen(options, out var reopened);
        using (reopened)
        {
            Assert.Equal(first.Concat(second), visitor.Records.Select(r => r.Record));
            Assert.Equal(second.Count, reopened.AdoptedRecords);
            Assert.Null(reopened.TornTailCut);
            AppendAll(reopened, third, commitEvery: 25);
        }
        var again = Reopen(options, out var last);
        using (last)
        {
            Assert.Equal(first.Concat(second).Concat(third), again.Records.Select(r => r.Record));
            Assert.Equal(0, last.AdoptedRecords); // every commit wrote its slot
        }
    }

    [Fact]
    public void A_journal_with_commit_files_of_an_earlier_build_is_refused()
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options(commitSlotEveryBytes: 0);
        WriteJournal(options, SameSize(10, 100));
        string legacy = Path.Combine(temp.Path, "commits", "log-commits");
        Directory.CreateDirectory(legacy);
        File.WriteAllBytes(Path.Combine(legacy, "commit.7.0"), new byte[512]);

        var error = Assert.Throws<JournalCorruptException>(() => EventJournal.Open(options).Dispose());
        Assert.Equal(JournalCorruptionReason.UnsupportedFormatVersion, error.Reason);
        Assert.Contains("earlier build", error.Message);
    }

    private static JournalCorruptException AssertCorrupt(JournalOptions options)
    {
        using var journal = EventJournal.Open(options);
        var error = Assert.Throws<JournalCorruptException>(() => journal.Replay(new CollectingVisitor()));
        Assert.Throws<InvalidOperationException>(() => journal.Append(new byte[1]));
        return error;
    }
}
