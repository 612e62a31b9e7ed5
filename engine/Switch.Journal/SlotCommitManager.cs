using System.Buffers.Binary;
using FASTER.core;
using Microsoft.Win32.SafeHandles;

namespace Switch.Journal;

/// <summary>
/// FasterLog's commit metadata in one file of two fixed slots, written in turn (commit N into slot N mod 2) in place
/// with a synchronous write-through write on the committing thread. FASTER's default manager creates a file per
/// commit, writes it through the thread pool while the committing thread spins on a semaphore, and deletes the
/// previous one: on the switch that was a quarter of the CPU of a unary transaction and several milliseconds of
/// every group commit.
/// <para>
/// A slot: "SWJC", u32 slot format version, i64 commit number, i32 metadata length, u32 CRC-32C of the commit number,
/// the length and the metadata; then the metadata. A torn write fails its CRC and is not listed: recovery then uses
/// the other slot, the previous commit, which is what a crash before the commit returned must give. The slot
/// written last is never the one being overwritten, so a valid commit always survives a torn write.
/// </para>
/// <para>
/// A commit also makes durable the directory entries of the segment files it covers: FasterLog's device creates a
/// segment file when it first writes there and never fsyncs the log directory, so before the first commit reaching
/// into a new segment the directory is fsynced. The data is durable (written O_SYNC) before the commit is written;
/// without its entry a power cut could still take the whole file.
/// </para>
/// </summary>
internal sealed class SlotCommitManager : ILogCommitManager
{
    /// <summary>One slot; FasterLog's metadata without persisted iterators is about a hundred bytes.</summary>
    internal const int SlotBytes = 4096;
    private const int HeaderBytes = 24;
    private const uint Magic = 0x434A5753; // "SWJC"
    private const uint SlotVersion = 1;

    private readonly SafeFileHandle _file;
    private readonly byte[] _slot = new byte[SlotBytes];
    private readonly string _logDirectory;
    private readonly int _segmentBits;
    private long _lastCommitNum = -1;
    // Segments below this one have durable directory entries; -1: the log directory not yet fsynced by this process.
    private long _segmentsDurableBelow = -1;

    private SlotCommitManager(SafeFileHandle file, JournalLayout layout)
    {
        _file = file;
        _logDirectory = Path.GetDirectoryName(layout.LogBasePath)!;
        _segmentBits = System.Numerics.BitOperations.Log2((ulong)layout.SegmentSizeBytes);
    }

    /// <summary>Opens (or creates, durably, both slots empty) the journal's commit file.</summary>
    public static SlotCommitManager Open(JournalLayout layout)
    {
        string path = layout.CommitSlotsPath;
        bool created = !File.Exists(path);
        if (created)
        {
            string temporary = path + ".new";
            using (SafeFileHandle fresh = File.OpenHandle(temporary, FileMode.Create, FileAccess.Write))
            {
                RandomAccess.Write(fresh, new byte[2 * SlotBytes], 0);
                RandomAccess.FlushToDisk(fresh);
            }
            File.Move(temporary, path, overwrite: true);
            DirectorySync.Flush(Path.GetDirectoryName(path)!);
        }
        // Write-through: a write returns once the slot is on the disk (O_SYNC), so Commit is durable when it returns.
        // FileShare.Read: the journal's lock file already keeps a second writer out; a copy of the directory may read it.
        SafeFileHandle file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, FileOptions.WriteThrough);
        if (RandomAccess.GetLength(file) != 2 * SlotBytes)
        {
            long length = RandomAccess.GetLength(file);
            file.Dispose();
            throw new JournalCorruptException(-1, JournalCorruptionReason.ManifestInconsistent,
                $"commit file {path} is {length} bytes, not {2 * SlotBytes}");
        }
        return new SlotCommitManager(file, layout);
    }

    public void Commit(long beginAddress, long untilAddress, byte[] commitMetadata, long commitNum, bool forceWriteMetadata)
    {
        ArgumentNullException.ThrowIfNull(commitMetadata);
        if (commitMetadata.Length > SlotBytes - HeaderBytes)
            throw new InvalidOperationException($"journal: commit metadata of {commitMetadata.Length} bytes does not fit a {SlotBytes}-byte slot");
        if (commitNum < 0) commitNum = _lastCommitNum + 1;
        if (commitNum <= _lastCommitNum)
            throw new InvalidOperationException($"journal: commit number {commitNum} after {_lastCommitNum}");
        MakeSegmentsDurable(untilAddress);

        Span<byte> slot = _slot;
        slot.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(slot, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(slot[4..], SlotVersion);
        BinaryPrimitives.WriteInt64LittleEndian(slot[8..], commitNum);
        BinaryPrimitives.WriteInt32LittleEndian(slot[16..], commitMetadata.Length);
        commitMetadata.CopyTo(slot[HeaderBytes..]);
        BinaryPrimitives.WriteUInt32LittleEndian(slot[20..], Checksum(slot, commitMetadata.Length));
        RandomAccess.Write(_file, slot, SlotOffset(commitNum));
        _lastCommitNum = commitNum;
    }

    /// <summary>
    /// Before a commit covering addresses below <paramref name="untilAddress"/> is written: the segment files holding
    /// them have durable directory entries (one fsync of the log directory per new segment, and one per process).
    /// </summary>
    private void MakeSegmentsDurable(long untilAddress)
    {
        if (untilAddress <= 0) return;
        long lastSegment = (untilAddress - 1) >> _segmentBits;
        if (lastSegment < _segmentsDurableBelow) return;
        DirectorySync.Flush(_logDirectory);
        _segmentsDurableBelow = lastSegment + 1;
    }

    /// <summary>The valid commits, newest first (FasterLog recovers from the first it can use).</summary>
    public IEnumerable<long> ListCommits()
    {
        var valid = new List<long>(2);
        for (int i = 0; i < 2; i++)
        {
            if (TryReadSlot(i, out long commitNum, out _)) valid.Add(commitNum);
        }
        valid.Sort((a, b) => b.CompareTo(a));
        return valid;
    }

    public byte[] GetCommitMetadata(long commitNum)
    {
        if (commitNum >= 0 && TryReadSlot((int)(commitNum & 1), out long found, out byte[]? metadata) && found == commitNum)
            return metadata!;
        throw new InvalidOperationException($"journal: commit {commitNum} is not in the commit file");
    }

    /// <summary>Nothing to do: a slot is overwritten two commits later, and an older commit never outranks a newer one.</summary>
    public void RemoveCommit(long commitNum)
    {
    }

    public void RemoveAllCommits()
    {
        RandomAccess.Write(_file, new byte[2 * SlotBytes], 0);
        _lastCommitNum = -1;
    }

    public void OnRecovery(long commitNum) => _lastCommitNum = Math.Max(_lastCommitNum, commitNum);

    public void Dispose() => _file.Dispose();

    private static long SlotOffset(long commitNum) => (commitNum & 1) * SlotBytes;

    /// <summary>CRC-32C of the commit number, the length (bytes 8..20) and the metadata (from byte 24).</summary>
    private static uint Checksum(ReadOnlySpan<byte> slot, int metadataBytes) =>
        Crc32C.Finish(Crc32C.Append(Crc32C.Append(Crc32C.Start, slot[8..20]), slot.Slice(HeaderBytes, metadataBytes)));

    private bool TryReadSlot(int index, out long commitNum, out byte[]? metadata)
    {
        commitNum = -1;
        metadata = null;
        var slot = new byte[SlotBytes];
        if (RandomAccess.Read(_file, slot, (long)index * SlotBytes) != SlotBytes) return false;
        if (BinaryPrimitives.ReadUInt32LittleEndian(slot) != Magic) return false;
        if (BinaryPrimitives.ReadUInt32LittleEndian(slot.AsSpan(4)) != SlotVersion) return false;
        long number = BinaryPrimitives.ReadInt64LittleEndian(slot.AsSpan(8));
        int length = BinaryPrimitives.ReadInt32LittleEndian(slot.AsSpan(16));
        if (number < 0 || (number & 1) != index || length < 0 || length > SlotBytes - HeaderBytes) return false;
        if (BinaryPrimitives.ReadUInt32LittleEndian(slot.AsSpan(20)) != Checksum(slot, length)) return false;
        commitNum = number;
        metadata = slot.AsSpan(HeaderBytes, length).ToArray();
        return true;
    }
}
