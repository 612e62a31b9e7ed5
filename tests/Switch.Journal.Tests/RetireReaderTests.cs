using System.Buffers.Binary;
using Switch.Tests.Support;
using static Switch.Journal.Tests.JournalTestKit;

namespace Switch.Journal.Tests;

/// <summary>A retirement reads the live journal's segment files itself (<see cref="SegmentReader"/>), into one buffer of
/// its own: what it allocates does not grow with what it archives, the archive holds each record's journal frame byte for
/// byte, cuts are skipped, and bytes on disk that are no record stop it before anything is published.</summary>
public sealed class RetireReaderTests : IDisposable
{
    private readonly TempJournalDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(2_000)]
    [InlineData(20_000)]
    public void A_retirement_allocates_a_bounded_amount_whatever_it_archives(int retired)
    {
        // 1.2 and 12.5 MiB of log over 64 KiB pages and 1 MiB segments. Through FasterLog's scan iterator (and a 1 MiB
        // frame per archive writer) a retirement allocated 1.4 and 3.8 MB.
        var records = Enumerable.Range(0, retired + 10).Select(i => MakeRecord(i, 200 + i % 800)).ToList();
        using var journal = EventJournal.Open(_dir.Options(Path.Combine(_dir.Path, "journal")));
        journal.Replay(new CollectingVisitor());
        List<long> addresses = AppendAll(journal, records, commitEvery: 100);
        string archive = Path.Combine(_dir.Path, "archive");
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(retired, journal.Retire(addresses[retired], retired, archive));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        // A few file names and handles per segment, and the spans' list: tens of KiB for any size.
        const long BoundBytes = 64 << 10;
        Assert.True(allocated < BoundBytes, $"a retirement of {retired} records allocated {allocated} bytes");
        Assert.Equal(retired, journal.RetiredRecords);
    }

    [Fact]
    public void A_retirement_reads_the_segments_around_the_page_cache_where_the_file_system_allows()
    {
        var records = Enumerable.Range(0, 3000).Select(i => MakeRecord(i, 600)).ToList();
        JournalOptions options = _dir.Options(Path.Combine(_dir.Path, "journal"));
        using var journal = EventJournal.Open(options);
        journal.Replay(new CollectingVisitor());
        List<long> addresses = AppendAll(journal, records, commitEvery: 100);
        string segments = Path.Combine(options.DirectoryPath, "log");
        var seen = new List<int>();
        // The write budget's hook runs while the reader holds a segment open: what the kernel says of its descriptors.
        journal.Retire(addresses[2500], 2500, Path.Combine(_dir.Path, "archive"), wrote: _ =>
        {
            foreach (string segment in Directory.GetFiles(segments)) seen.AddRange(OpenFileFlags.Of(segment).Where(f => (f & (OpenFileFlags.WriteOnly | OpenFileFlags.ReadWrite)) == 0));
        });
        Assert.NotEmpty(seen); // read-only descriptors on the segments while it ran (the device's own reads' among them, buffered)
        if (OperatingSystem.IsLinux() && DirectTakenHere(segments)) Assert.Contains(seen, f => (f & OpenFileFlags.Direct) != 0);
    }

    /// <summary>Whether this file system takes O_DIRECT (tmpfs before Linux 6.6 does not): the reader falls back there.</summary>
    private static bool DirectTakenHere(string directory)
    {
        string probe = Path.Combine(directory, "direct-probe");
        bool direct;
        using (DirectFile.Open(probe, truncate: true, sync: false, out direct)) { }
        File.Delete(probe);
        return direct;
    }

    [Fact]
    public void The_archive_holds_each_retired_record_in_its_journal_frame_and_skips_a_cut()
    {
        var options = _dir.Options(Path.Combine(_dir.Path, "journal"));
        var first = Enumerable.Range(0, 3000).Select(i => MakeRecord(i, 100 + i % 900)).ToList();
        WriteJournal(options, first);
        var kept = new List<byte[]>(first.Take(1200));
        string archive = Path.Combine(_dir.Path, "archive");
        using (var journal = EventJournal.Open(options))
        {
            journal.Replay(new CollectingVisitor());
            Assert.NotNull(journal.TruncateTo(1200)); // a cut: records 1200..2999 stay on disk, unread
            var after = Enumerable.Range(5000, 2000).Select(i => MakeRecord(i, 50 + i % 700)).ToList();
            List<long> addresses = AppendAll(journal, after, commitEvery: 100);
            kept.AddRange(after);
            Assert.Equal(2700, journal.Retire(addresses[1500], 2700, archive));
        }
        (long firstNo, long end, string file) = Assert.Single(JournalArchive.Files(archive));
        Assert.Equal((0, 2700), (firstNo, end));
        var expected = new MemoryStream();
        for (int i = 0; i < 2700; i++)
        {
            var frame = new byte[RecordFrame.HeaderBytes + kept[i].Length];
            RecordFrame.Write(frame, i, kept[i]);
            var length = new byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(length, frame.Length);
            expected.Write(length);
            expected.Write(frame);
        }
        Assert.Equal(expected.ToArray(), File.ReadAllBytes(file));
        // The rest replays after the archive, from the retirement's point.
        using var reopened = EventJournal.Open(options);
        var rest = new CollectingVisitor();
        Assert.Equal(kept.Count, reopened.Replay(rest));
        Assert.Equal(kept.Skip(2700).ToList(), rest.Records.Select(r => r.Record).ToList());
    }

    public static TheoryData<string> Damage => new() { "payload", "zero length", "length past the page", "huge length", "zeroed page" };

    [Theory]
    [MemberData(nameof(Damage))]
    public void Bytes_on_disk_that_are_no_record_stop_a_retirement_before_anything_is_published(string damage)
    {
        var options = _dir.Options(Path.Combine(_dir.Path, "journal"));
        var records = Enumerable.Range(0, 3000).Select(i => MakeRecord(i, 300)).ToList();
        string archive = Path.Combine(_dir.Path, "archive");
        using var journal = EventJournal.Open(options);
        journal.Replay(new CollectingVisitor());
        List<long> addresses = AppendAll(journal, records, commitEvery: 100);
        long at = addresses[1000]; // long written out of FasterLog's memory: read from its segment file either way
        byte[] bytes = damage switch
        {
            "payload" => [(byte)(ReadShared(options, at + PayloadOffset) ^ 0x40)],
            "zero length" => [0, 0, 0, 0],
            "length past the page" => BitConverter.GetBytes(60_000),
            // FasterLog 2.6.5's iterator spins forever on this one.
            "huge length" => BitConverter.GetBytes(0x7FFFFFFD),
            _ => new byte[options.PageSizeBytes],
        };
        if (damage == "zeroed page") at = at & ~((long)options.PageSizeBytes - 1);
        WriteShared(options, damage == "payload" ? at + PayloadOffset : at, bytes);
        var e = Assert.Throws<JournalCorruptException>(() => journal.Retire(addresses[2000], 2000, archive));
        // Where the damage is, or where it shows: a zero length read as padding, the next page's first record.
        long page = at & ~((long)options.PageSizeBytes - 1);
        Assert.InRange(e.Address, page - options.PageSizeBytes, page + 2L * options.PageSizeBytes);
        Assert.Equal(0, journal.RetiredRecords);
        Assert.Empty(JournalArchive.Files(archive));
        Assert.Empty(Directory.EnumerateFiles(archive)); // no temporary left either
    }

    private static byte ReadShared(JournalOptions options, long address)
    {
        var (path, offset) = new JournalLayout(options).Locate(address);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        file.Position = offset;
        return (byte)file.ReadByte();
    }

    /// <summary>Damages the open journal's segment file on disk (FasterLog holds it open too).</summary>
    private static void WriteShared(JournalOptions options, long address, byte[] bytes)
    {
        var (path, offset) = new JournalLayout(options).Locate(address);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
        file.Position = offset;
        file.Write(bytes);
        file.Flush(flushToDisk: true);
    }
}
