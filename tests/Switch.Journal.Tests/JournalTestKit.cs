namespace Switch.Journal.Tests;

/// <summary>A journal directory under the temp path, deleted with the test.</summary>
internal sealed class TempJournalDirectory : IDisposable
{
    public TempJournalDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "switch-journal-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    /// <summary>Small pages and segments so that tests cross page and segment boundaries quickly.
    /// <paramref name="commitSlotEveryBytes"/> 0: every commit writes its slot, so every committed record lies before
    /// the slot's address (where damage is found by Replay, not by Open reading on).</summary>
    public JournalOptions Options(string? path = null, long commitSlotEveryBytes = 1 << 20) => new()
    {
        DirectoryPath = path ?? Path,
        CommitSlotEveryBytes = commitSlotEveryBytes,
        MaxRecordBytes = 4096,
        PageSizeBytes = 64 << 10,
        MemorySizeBytes = 256 << 10,
        SegmentSizeBytes = 1 << 20,
    };

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (DirectoryNotFoundException) { }
    }
}

internal sealed class CollectingVisitor : IJournalVisitor
{
    public List<(long Address, byte[] Record)> Records { get; } = new();

    public void OnRecord(long address, ReadOnlySpan<byte> record) => Records.Add((address, record.ToArray()));
}

internal static class JournalTestKit
{
    /// <summary>A deterministic record: its index in the first bytes, then a pattern, so any mix-up shows.</summary>
    public static byte[] MakeRecord(int index, int length)
    {
        var record = new byte[length];
        for (int i = 0; i < length; i++) record[i] = (byte)(index * 31 + i * 7);
        if (length >= 4) BitConverter.TryWriteBytes(record, index);
        return record;
    }

    /// <summary>Appends records of the given sizes, committing every <paramref name="commitEvery"/>; returns addresses.</summary>
    public static List<long> AppendAll(EventJournal journal, IReadOnlyList<byte[]> records, int commitEvery)
    {
        var addresses = new List<long>(records.Count);
        for (int i = 0; i < records.Count; i++)
        {
            addresses.Add(journal.Append(records[i]));
            if ((i + 1) % commitEvery == 0) journal.Commit();
        }
        journal.Commit();
        return addresses;
    }

    /// <summary>A new journal of <paramref name="records"/>, committed every 100, closed; returns their addresses.</summary>
    public static List<long> WriteJournal(JournalOptions options, List<byte[]> records)
    {
        using var journal = EventJournal.Open(options);
        journal.Replay(new CollectingVisitor());
        return AppendAll(journal, records, commitEvery: 100);
    }

    public static CollectingVisitor Reopen(JournalOptions options, out EventJournal journal)
    {
        journal = EventJournal.Open(options);
        var visitor = new CollectingVisitor();
        long count = journal.Replay(visitor);
        Assert.Equal(count, visitor.Records.Count);
        Assert.Equal(count, journal.RecordCount);
        Assert.Equal(count, journal.DurableRecordCount);
        return visitor;
    }

    public static List<byte[]> SameSize(int count, int length) =>
        Enumerable.Range(0, count).Select(i => MakeRecord(i, length)).ToList();

    /// <summary>Overwrites bytes of the closed journal's log at an address (relative to a record's FasterLog entry).</summary>
    public static void Overwrite(JournalOptions options, long address, ReadOnlySpan<byte> bytes)
    {
        var (path, offset) = new JournalLayout(options).Locate(address);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Write);
        file.Position = offset;
        file.Write(bytes);
    }

    public static void Truncate(JournalOptions options, long address)
    {
        var (path, offset) = new JournalLayout(options).Locate(address);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Write);
        file.SetLength(offset);
    }

    public static byte ReadByte(JournalOptions options, long address)
    {
        var (path, offset) = new JournalLayout(options).Locate(address);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read);
        file.Position = offset;
        return (byte)file.ReadByte();
    }

    /// <summary>FasterLog's length prefix, then this journal's 20-byte header: where a record's parts start.</summary>
    public const int FasterEntryHeaderBytes = 4;
    public const int VersionOffset = FasterEntryHeaderBytes;
    public const int LengthOffset = FasterEntryHeaderBytes + 4;
    public const int PayloadOffset = FasterEntryHeaderBytes + 20;

    /// <summary>Copies the journal directory as it is on disk now, as a process kill would leave it (minus the lock).</summary>
    public static void CopyDirectory(string from, string to)
    {
        foreach (var directory in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(directory.Replace(from, to));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            if (System.IO.Path.GetFileName(file) == "lock") continue;
            using var source = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var target = new FileStream(file.Replace(from, to), FileMode.Create, FileAccess.Write);
            source.CopyTo(target);
        }
    }
}
