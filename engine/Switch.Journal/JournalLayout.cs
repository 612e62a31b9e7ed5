using System.Numerics;

namespace Switch.Journal;

/// <summary>
/// Where things live in the journal directory:
/// <c>manifest</c> (cuts, see <see cref="JournalManifest"/>), <c>log/journal.N</c> (FasterLog segment N, address
/// A at offset A mod SegmentSizeBytes of segment A / SegmentSizeBytes), <c>commits/commit-slots</c> (FasterLog commit
/// metadata, see <see cref="SlotCommitManager"/>),
/// <c>lock</c> (held exclusively while open: one writer).
/// </summary>
internal sealed class JournalLayout
{
    public JournalLayout(JournalOptions options)
    {
        DirectoryPath = Path.GetFullPath(options.DirectoryPath);
        SegmentSizeBytes = options.SegmentSizeBytes;
    }

    public string DirectoryPath { get; }
    public long SegmentSizeBytes { get; }
    public string ManifestPath => Path.Combine(DirectoryPath, "manifest");
    public string LockPath => Path.Combine(DirectoryPath, "lock");
    public string LogBasePath => Path.Combine(DirectoryPath, "log", "journal");
    public string CommitDirectory => Path.Combine(DirectoryPath, "commits");
    /// <summary>FasterLog's commit metadata, two slots (see <see cref="SlotCommitManager"/>).</summary>
    public string CommitSlotsPath => Path.Combine(CommitDirectory, "commit-slots");
    /// <summary>Where FASTER's own commit manager kept a file per commit (journals of earlier builds).</summary>
    public string LegacyCommitDirectory => Path.Combine(CommitDirectory, "log-commits");

    /// <summary>The segment file and byte offset that hold journal address <paramref name="address"/>.</summary>
    public (string Path, long Offset) Locate(long address)
    {
        int segmentBits = BitOperations.Log2((ulong)SegmentSizeBytes);
        return ($"{LogBasePath}.{address >> segmentBits}", address & (SegmentSizeBytes - 1));
    }
}
