namespace Switch.Journal;

/// <summary>Where the journal lives and how much it may use. Every size is bounded and validated by Open.</summary>
public sealed class JournalOptions
{
    /// <summary>The journal's own directory (created if missing); nothing else may write there.</summary>
    public required string DirectoryPath { get; init; }

    /// <summary>Largest record payload accepted by Append, in bytes.</summary>
    public int MaxRecordBytes { get; init; } = 4096;

    /// <summary>FasterLog page size in bytes; a power of two. A record never spans pages.</summary>
    public int PageSizeBytes { get; init; } = 1 << 20;

    /// <summary>FasterLog in-memory buffer in bytes; a power of two, at least two pages. Appends wait for flushes beyond it.</summary>
    public long MemorySizeBytes { get; init; } = 8L << 20;

    /// <summary>Size of one segment file on disk in bytes; a power of two, at least one page.</summary>
    public long SegmentSizeBytes { get; init; } = 256L << 20;

    /// <summary>
    /// A group commit makes its records durable with one write of the log; the commit slot (where recovery starts
    /// reading) is written at most once per this many bytes of log, and Open reads on from it to find the records of the
    /// commits after it. 0: every commit writes its slot (two durable writes in a row). Bounds what Open reads and
    /// writes again after a crash.
    /// </summary>
    public long CommitSlotEveryBytes { get; init; } = 1L << 20;

    internal const int MinPageSizeBytes = 1 << 12;
    internal const int MaxPageSizeBytes = 1 << 26;
    internal const long MaxMemorySizeBytes = 1L << 30;
    internal const long MaxSegmentSizeBytes = 1L << 36;

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(DirectoryPath))
            throw new ArgumentException("DirectoryPath is required", nameof(DirectoryPath));
        RequirePowerOfTwo(PageSizeBytes, MinPageSizeBytes, MaxPageSizeBytes, nameof(PageSizeBytes));
        RequirePowerOfTwo(MemorySizeBytes, 2L * PageSizeBytes, MaxMemorySizeBytes, nameof(MemorySizeBytes));
        RequirePowerOfTwo(SegmentSizeBytes, PageSizeBytes, MaxSegmentSizeBytes, nameof(SegmentSizeBytes));
        if (CommitSlotEveryBytes < 0 || CommitSlotEveryBytes > MaxMemorySizeBytes)
            throw new ArgumentOutOfRangeException(nameof(CommitSlotEveryBytes), CommitSlotEveryBytes, $"must be in 0..{MaxMemorySizeBytes}");
        // A quarter page at most: the padding FasterLog leaves at a page end (a record never spans pages) stays under 25%.
        if (MaxRecordBytes < 1 || MaxRecordBytes > PageSizeBytes / 4)
            throw new ArgumentOutOfRangeException(nameof(MaxRecordBytes), MaxRecordBytes,
                $"must be in 1..{PageSizeBytes / 4} (a quarter of PageSizeBytes)");
    }

    private static void RequirePowerOfTwo(long value, long min, long max, string name)
    {
        if (value < min || value > max || (value & (value - 1)) != 0)
            throw new ArgumentOutOfRangeException(name, value, $"must be a power of two in {min}..{max}");
    }
}
