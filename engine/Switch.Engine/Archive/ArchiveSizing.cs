namespace Switch.Engine.Archive;

/// <summary>How much memory and disk the archive may use.</summary>
public sealed record ArchiveSizing
{
    /// <summary>The hash index: 64-byte buckets of 7 entries; 64 MiB indexes about 7 million orders without chains.</summary>
    public long IndexBytes { get; init; } = 64L << 20;
    /// <summary>The newest archived records kept in memory (a repeat or refund of a recent order reads no disk).</summary>
    public long MemoryBytes { get; init; } = 256L << 20;
    /// <summary>Pages are written to disk whole: large ones mean fewer writes (harness at 150,000/s for 30 s: 4 MiB pages
    /// 142.7k/s sustained, switch 11.2 µs/tx; 32 MiB pages 149.4k/s, 10.3 µs/tx).</summary>
    public long PageBytes { get; init; } = 32L << 20;
    /// <summary>Files on disk are segments of this size; forgetting old orders deletes whole segments.</summary>
    public long SegmentBytes { get; init; } = 256L << 20;
    /// <summary>How often the log's position is noted for forgetting: disk is freed in steps of this many transactions.</summary>
    public int MarkEveryTransactions { get; init; } = 1 << 16;
    /// <summary>The filter of archived orders in front of the store (12 bits per order: 128 MiB covers about 89 million).</summary>
    public long FilterBytes { get; init; } = 128L << 20;
    public const int FilterGenerations = 8;
    /// <summary>Writes the logic hands the archive's writer thread before it waits for it (a power of two, at least 64;
    /// 0: the logic thread writes the store itself). About 0.4 KiB each (26 MiB for the default, and 2 MiB of index); a
    /// snapshot's checkpoint starts when the writer reaches its mark among them.
    /// A writer standing still makes the logic, and every transaction with it, wait once this many are queued: 4,096 was
    /// 23 ms of the design peak (180,000 a second), and a quiet run saw the writer stand still 252 ms; 65,536 is 364 ms.</summary>
    public int HandoffEntries { get; init; } = DefaultHandoffEntries;

    public const int DefaultHandoffEntries = 1 << 16;
    /// <summary>The most of the in-memory log that stays mutable (updated in place). A snapshot's checkpoint folds it
    /// over, that is writes it all at once beside the journal: FASTER's default of 90% made that 230 MiB with the default
    /// memory once the archive has filled it. Records past it are read-only in memory (still read from memory; an update
    /// of one appends a new version, and archived transactions are rarely updated).</summary>
    public long MaxMutableBytes { get; init; } = 64L << 20;

    /// <summary>The fraction of the in-memory pages FASTER keeps mutable: at most <see cref="MaxMutableBytes"/> and
    /// FASTER's 90%, at least one page (FASTER takes the whole pages of memory pages times the fraction).</summary>
    public double MutableFraction
    {
        get
        {
            long pages = MemoryBytes / PageBytes;
            long mutablePages = Math.Clamp(Math.Min(pages * 9 / 10, MaxMutableBytes / PageBytes), 1, pages);
            return (mutablePages + 0.5) / pages; // half a page over: the product rounds down to mutablePages exactly
        }
    }

    public static ArchiveSizing Small { get; } = new()
    {
        IndexBytes = 1L << 16, MemoryBytes = 1L << 16, PageBytes = 1L << 12, SegmentBytes = 1L << 16, MarkEveryTransactions = 1 << 10,
        HandoffEntries = 64, // the tests see reads both of writes not yet applied and of the store
        FilterBytes = FilterGenerations * 64 * 4, // 170 orders a generation: the tests see generations fill and clear
    };

    public void Validate()
    {
        static void Require(bool ok, string what)
        {
            if (!ok) throw new ArgumentException($"archive sizing: {what}");
        }
        static bool PowerOfTwo(long v) => v > 0 && (v & (v - 1)) == 0;
        Require(PowerOfTwo(IndexBytes) && IndexBytes >= 64, "indexBytes must be a power of two of at least 64");
        Require(PowerOfTwo(PageBytes) && PageBytes >= 1L << 12, "pageBytes must be a power of two of at least 4 KiB");
        Require(PowerOfTwo(MemoryBytes) && MemoryBytes >= 2 * PageBytes, "memoryBytes must be a power of two of at least two pages");
        Require(PowerOfTwo(SegmentBytes) && SegmentBytes >= PageBytes, "segmentBytes must be a power of two of at least one page");
        Require(HandoffEntries == 0 || (HandoffEntries is >= 64 and <= 1 << 20 && PowerOfTwo(HandoffEntries)),
            "handoffEntries must be 0 or a power of two from 64 to 2^20");
        Require(MaxMutableBytes >= PageBytes, "maxMutableBytes must be at least a page");
        Require(MarkEveryTransactions is >= 1 and <= 1 << 30, "markEveryTransactions must be 1 to 2^30");
        Require(PowerOfTwo(FilterBytes / FilterGenerations / 64) && FilterBytes % (FilterGenerations * 64) == 0 && FilterBytes <= 1L << 36,
            "filterBytes must be 8 generations of a power of two of 64-byte blocks, at most 64 GiB");
    }
}
