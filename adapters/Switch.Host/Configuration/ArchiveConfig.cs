using Switch.Engine.Archive;

namespace Switch.Host.Configuration;

/// <summary>Memory of the transaction archive (engine/Switch.Engine/Archive): not business state, so not journaled.</summary>
public sealed record ArchiveConfig
{
    public const int MaxIndexMiB = 64 * 1024;
    public const int MaxMemoryMiB = 64 * 1024;

    /// <summary>The hash index, allocated at start: 64 MiB holds about 7.3 million orders without chains.</summary>
    public int IndexMiB { get; init; } = 64;
    /// <summary>The newest archived records kept in memory (about 392 bytes each); older ones are read from disk.</summary>
    public int MemoryMiB { get; init; } = 256;

    public ArchiveSizing ToSizing() => new() { IndexBytes = (long)IndexMiB << 20, MemoryBytes = (long)MemoryMiB << 20 };
}
