using System.Buffers.Binary;
using System.Diagnostics;
using FASTER.core;
using Microsoft.Win32.SafeHandles;

namespace Switch.Journal;

/// <summary>
/// FasterLog's commit metadata in one file of two fixed slots, written in turn (always into the slot not holding the
/// newest valid commit) in place with a synchronous write-through write. FASTER's default manager creates a file per
/// commit, writes it through the thread pool while the committing thread spins on a semaphore, and deletes the
/// previous one: on the switch that was a quarter of the CPU of a unary transaction and several milliseconds of
/// every group commit.
/// <para>
/// Not every commit writes its slot: the data write (O_SYNC) is what makes a commit's records durable, and each record
/// carries its sequence number and CRC, so the journal finds the records written after the newest slot by reading on
/// from it (<see cref="EventJournal"/> adopts them at Open). A slot is written at most every
/// <see cref="JournalOptions.CommitSlotEveryBytes"/> of log (which bounds that read), whenever the log's start moves,
/// and when asked (<see cref="WriteNextCommit"/>, <see cref="WritePending"/>). One durable write per group commit instead
/// of two in a row: the commit's latency is what a closed loop of unary calls waits on.
/// </para>
/// <para>
/// A slot (format 2): "SWJC", u32 slot format version, i64 commit number, i32 metadata length, u32 CRC-32C, i64 the
/// log address the commit covers up to, i64 the records before that address; then the metadata. The CRC covers the
/// commit number, the length, the address, the record count and the metadata. Format 1 (no address or count; the
/// metadata from byte 24) is still read. A torn write fails its CRC and is not listed: recovery then uses the other
/// slot, and the records after it are found by reading on. The slot written last is never the one being overwritten,
/// so a valid commit always survives a torn write.
/// </para>
/// <para>
/// A commit also makes durable the directory entries of the segment files it covers: FasterLog's device creates a
/// segment file when it first writes there and never fsyncs the log directory, so before the first commit reaching
/// into a new segment returns, the directory is fsynced. Without its entry a power cut could still take the whole file.
/// </para>
/// </summary>
internal sealed class SlotCommitManager : ILogCommitManager
{
    /// <summary>One slot; FasterLog's metadata without persisted iterators is about a hundred bytes.</summary>
    internal const int SlotBytes = 4096;
    private const int HeaderBytesV1 = 24;
    private const int HeaderBytes = 40;
    private const uint Magic = 0x434A5753; // "SWJC"
    private const uint SlotVersion = 2;

    private readonly SafeFileHandle _file;
    // The newest commit's slot image, built at every commit, written or left pending.
    private readonly byte[] _slot = new byte[SlotBytes];
    private readonly string _logDirectory;
    private readonly int _segmentBits;
    private readonly long _slotEveryBytes;
    // Commit (FasterLog's flush thread) against WritePending (a retirement's thread).
    private readonly object _gate = new();
    private long _lastCommitNum = -1;
    // Segments below this one have durable directory entries; -1: the log directory not yet fsynced by this process.
    private long _segmentsDurableBelow = -1;
    // The slot holding the newest valid commit (the next write goes to the other one); -1: none.
    private int _newestSlot = -1;
    private long _slottedBegin = -1;
    private long _slottedUntil = -1;
    private long _builtBegin = -1;
    private bool _pending;
    private bool _writeNext;
    private long _recordsCommitting = -1;

    private SlotCommitManager(SafeFileHandle file, JournalLayout layout, long slotEveryBytes)
    {
        _file = file;
        _logDirectory = Path.GetDirectoryName(layout.LogBasePath)!;
        _segmentBits = System.Numerics.BitOperations.Log2((ulong)layout.SegmentSizeBytes);
        _slotEveryBytes = slotEveryBytes;
    }

    /// <summary>Set by the journal before each commit it asks FasterLog for: the records before the commit's address.</summary>
    public long RecordsCommitting
    {
        set => Volatile.Write(ref _recordsCommitting, value);
    }

    /// <summary>The records before the address of the commit FasterLog recovered to (-1: unknown, a format-1 slot or none).</summary>
    public long RecoveredRecords { get; private set; } = -1;

    /// <summary>The next commit writes its slot, whatever its size.</summary>
    public void WriteNextCommit()
    {
        lock (_gate) _writeNext = true;
    }

    /// <summary>Writes the newest commit's slot if it was left unwritten: before a manifest names an address the slots
    /// must cover (a retirement, a cut). Its data is durable already (FasterLog offers a commit once its flush is done).</summary>
    public void WritePending()
    {
        lock (_gate)
        {
            if (_pending) WriteSlot();
        }
    }

    /// <summary>Opens (or creates, durably, both slots empty) the journal's commit file.</summary>
    public static SlotCommitManager Open(JournalLayout layout, long slotEveryBytes)
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
        return new SlotCommitManager(file, layout, slotEveryBytes);
    }

    public void Commit(long beginAddress, long untilAddress, byte[] commitMetadata, long commitNum, bool forceWriteMetadata)
    {
        ArgumentNullException.ThrowIfNull(commitMetadata);
        if (commitMetadata.Length > SlotBytes - HeaderBytes)
            throw new InvalidOperationException($"journal: commit metadata of {commitMetadata.Length} bytes does not fit a {SlotBytes}-byte slot");
        lock (_gate)
        {
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
            BinaryPrimitives.WriteInt64LittleEndian(slot[24..], untilAddress);
            BinaryPrimitives.WriteInt64LittleEndian(slot[32..], Volatile.Read(ref _recordsCommitting));
            commitMetadata.CopyTo(slot[HeaderBytes..]);
            BinaryPrimitives.WriteUInt32LittleEndian(slot[20..], Checksum(slot, HeaderBytes, commitMetadata.Length));
            _lastCommitNum = commitNum;
            _builtBegin = beginAddress;
            _pending = true;
            bool write = forceWriteMetadata || _writeNext || _newestSlot < 0 || beginAddress != _slottedBegin
                || untilAddress - _slottedUntil >= _slotEveryBytes;
            if (write) WriteSlot();
        }
    }

    /// <summary>The slot image built by the last commit, into the slot not holding the newest valid commit.</summary>
    private void WriteSlot()
    {
        Debug.Assert(Monitor.IsEntered(_gate) && _pending, "a pending commit's slot, under the gate");
        int index = _newestSlot == 0 ? 1 : 0;
        RandomAccess.Write(_file, _slot, (long)index * SlotBytes);
        _newestSlot = index;
        _slottedUntil = BinaryPrimitives.ReadInt64LittleEndian(_slot.AsSpan(24));
        _slottedBegin = _builtBegin;
        _pending = false;
        _writeNext = false;
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
            if (TryReadSlot(i, out Slot found)) valid.Add(found.CommitNum);
        }
        valid.Sort((a, b) => b.CompareTo(a));
        return valid;
    }

    public byte[] GetCommitMetadata(long commitNum)
    {
        if (commitNum >= 0 && FindSlot(commitNum) is { } found) return found.Metadata;
        throw new InvalidOperationException($"journal: commit {commitNum} is not in the commit file");
    }

    /// <summary>Nothing to do: a slot is overwritten by a later commit, and an older commit never outranks a newer one.</summary>
    public void RemoveCommit(long commitNum)
    {
    }

    public void RemoveAllCommits()
    {
        lock (_gate)
        {
            RandomAccess.Write(_file, new byte[2 * SlotBytes], 0);
            _lastCommitNum = -1;
            _newestSlot = -1;
            _slottedBegin = _slottedUntil = -1;
            _pending = false;
        }
    }

    /// <summary>FasterLog recovered to <paramref name="commitNum"/>: its slot is the newest (a newer one, torn, is
    /// overwritten next), and its record count tells the journal where reading on begins.</summary>
    public void OnRecovery(long commitNum)
    {
        lock (_gate)
        {
            _lastCommitNum = Math.Max(_lastCommitNum, commitNum);
            if (FindSlot(commitNum) is not { } found) return;
            _newestSlot = found.Index;
            _slottedUntil = found.UntilAddress;
            _slottedBegin = -1; // not kept in the slot: the first commit from here writes its own
            RecoveredRecords = found.Records;
        }
    }

    public void Dispose() => _file.Dispose();

    /// <summary>One valid slot as read: format 1 has no address or record count (-1).</summary>
    private readonly record struct Slot(int Index, long CommitNum, long UntilAddress, long Records, byte[] Metadata);

    private Slot? FindSlot(long commitNum)
    {
        for (int i = 0; i < 2; i++)
        {
            if (TryReadSlot(i, out Slot found) && found.CommitNum == commitNum) return found;
        }
        return null;
    }

    /// <summary>CRC-32C of the commit number and the length (bytes 8..20), format 2's address and record count (bytes
    /// 24..40), and the metadata (from the header's end).</summary>
    private static uint Checksum(ReadOnlySpan<byte> slot, int headerBytes, int metadataBytes)
    {
        uint crc = Crc32C.Append(Crc32C.Start, slot[8..20]);
        if (headerBytes > HeaderBytesV1) crc = Crc32C.Append(crc, slot[HeaderBytesV1..headerBytes]);
        return Crc32C.Finish(Crc32C.Append(crc, slot.Slice(headerBytes, metadataBytes)));
    }

    private bool TryReadSlot(int index, out Slot found)
    {
        found = default;
        var slot = new byte[SlotBytes];
        if (RandomAccess.Read(_file, slot, (long)index * SlotBytes) != SlotBytes) return false;
        if (BinaryPrimitives.ReadUInt32LittleEndian(slot) != Magic) return false;
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(slot.AsSpan(4));
        int headerBytes = version switch { 1 => HeaderBytesV1, SlotVersion => HeaderBytes, _ => -1 };
        if (headerBytes < 0) return false;
        long number = BinaryPrimitives.ReadInt64LittleEndian(slot.AsSpan(8));
        int length = BinaryPrimitives.ReadInt32LittleEndian(slot.AsSpan(16));
        // Format 1 wrote commit N into slot N mod 2; format 2 alternates by writes, so a slot may hold either parity.
        if (number < 0 || (version == 1 && (number & 1) != index) || length < 0 || length > SlotBytes - headerBytes) return false;
        if (BinaryPrimitives.ReadUInt32LittleEndian(slot.AsSpan(20)) != Checksum(slot, headerBytes, length)) return false;
        long until = version == 1 ? -1 : BinaryPrimitives.ReadInt64LittleEndian(slot.AsSpan(24));
        long records = version == 1 ? -1 : BinaryPrimitives.ReadInt64LittleEndian(slot.AsSpan(32));
        found = new Slot(index, number, until, records, slot.AsSpan(headerBytes, length).ToArray());
        return true;
    }
}
