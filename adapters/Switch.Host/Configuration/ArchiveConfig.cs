using Switch.Engine.Archive;

namespace Switch.Host.Configuration;

/// <summary>Memory of the transaction archive (engine/Switch.Engine/Archive): not business state, so not journaled.</summary>
public sealed record ArchiveConfig
{
    public const int MaxIndexMiB = 64 * 1024;
    public const int MaxMemoryMiB = 64 * 1024;
    public const int MaxPageMiB = 64; // the archive's MaxMutableBytes: at least a page stays mutable
    public const int MaxFilterMiB = 64 * 1024;

    /// <summary>The hash index, allocated at start: 64 MiB holds about 7.3 million orders without chains.</summary>
    public int IndexMiB { get; init; } = 64;
    /// <summary>The newest archived records kept in memory (about 392 bytes each); older ones are read from disk. At
    /// least two pages.</summary>
    public int MemoryMiB { get; init; } = 256;
    /// <summary>The in-memory log's page, written to disk whole; two pages are allocated at start even while the archive
    /// is empty, so a small switch (a test's) wants small ones.</summary>
    public int PageMiB { get; init; } = (int)(new ArchiveSizing().PageBytes >> 20);
    /// <summary>The filter of archived orders that keeps a new order's look-up off the store: 12 bits per order, so
    /// 128 MiB covers about 89 million; size it to rules.orderMemoryTransactions (a smaller one is slower, never wrong).</summary>
    public int FilterMiB { get; init; } = 128;
    /// <summary>Store writes the logic thread hands the archive's writer thread before it waits for it (0: the logic
    /// thread writes the store itself).</summary>
    public int HandoffEntries { get; init; } = new ArchiveSizing().HandoffEntries;

    public ArchiveSizing ToSizing() => new()
    {
        IndexBytes = (long)IndexMiB << 20, MemoryBytes = (long)MemoryMiB << 20, PageBytes = (long)PageMiB << 20, FilterBytes = (long)FilterMiB << 20,
        HandoffEntries = HandoffEntries,
    };
}
