using System.Buffers.Binary;
using System.Diagnostics;
using System.Numerics;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Switch.Journal;

/// <summary>What <see cref="SegmentReader.Next"/> found.</summary>
internal enum SegmentRead
{
    /// <summary>A whole entry, within the page it begins in (not yet verified as a record).</summary>
    Entry,
    /// <summary>The end address given to <see cref="SegmentReader.Seek"/> is reached.</summary>
    End,
    /// <summary>Nothing was written here: the segment file ends, or a zero length where an entry would have fit.</summary>
    Exhausted,
    /// <summary>Bytes that are no entry of this log (see <see cref="SegmentReader.FailureReason"/> and detail).</summary>
    Broken,
}

/// <summary>
/// Reads the log's entries straight from its segment files, front to back, with large aligned reads into one native
/// buffer it owns: no allocation per page or entry, and nothing of FasterLog held (no epoch, no frame), so a reader that
/// sleeps between entries (a retirement on its write budget) holds back no commit. FasterLog 2.6.5's scan iterator,
/// which a retirement used before, allocated two closures per record read from disk (its page loader's: about 110 MB/s
/// while a retirement ran).
/// <para>The on-disk layout is FasterLog's with <c>LogChecksumType.None</c> (its iterator, <c>GetNextInternal</c>): an
/// entry is a 4-byte little-endian length, then that many bytes, padded to 4; an entry never spans a page, zeros pad a
/// page's end (fewer bytes than the largest entry: one that did not fit), and zeros elsewhere mean nothing was written; address A lies at offset A mod segment of segment
/// file A / segment. Every assumption is checked per entry: bytes that break it are <see cref="SegmentRead.Broken"/>,
/// never skipped. Read only addresses FasterLog has flushed (committed, or found on disk at Open): what lies on disk
/// past them may be a write under way.</para>
/// </summary>
internal sealed unsafe class SegmentReader : IDisposable
{
    /// <summary>FasterLog's length prefix (4 bytes with no per-entry checksum).</summary>
    public const int EntryHeaderBytes = sizeof(int);
    /// <summary>One read, unless a page or a segment says otherwise: few system calls (a 256 MiB retirement makes 256),
    /// and one such read at a time queued on the disk beside the journal's commits.</summary>
    private const int ReadBytes = 1 << 20;
    /// <summary>The buffer's alignment: a page of memory, as a direct read would need.</summary>
    private const int AlignBytes = 4096;

    private readonly JournalLayout _layout;
    private readonly long _pageBytes;
    private readonly int _maxEntryBytes;
    private readonly int _segmentBits;
    /// <summary>Bytes per read: whole pages, within one segment (all three are powers of two).</summary>
    private readonly int _chunkBytes;
    private byte* _buffer;
    /// <summary>The log address the buffer holds from (a multiple of <see cref="_chunkBytes"/>); -1: nothing.</summary>
    private long _bufferAt = -1;
    /// <summary>Bytes of the buffer the file held (short at the file's end).</summary>
    private int _valid;
    private SafeFileHandle? _file;
    /// <summary>Reads with O_DIRECT where the file system takes it (<see cref="DirectFile.OpenRead"/>).</summary>
    private readonly bool _direct;
    private bool _fileDirect;
    private long _fileSegment = -1;
    private long _next;
    private long _end;

    /// <param name="direct">Read around the page cache (a retirement: what it reads was written O_DIRECT, is read once,
    /// and through the cache cost a copy and pages to fill and reclaim, 17% of the switch's samples while one ran at the
    /// design peak); false: buffered, with the kernel's readahead (a replay at start).</param>
    public SegmentReader(JournalLayout layout, int pageBytes, int maxRecordBytes, bool direct = false)
    {
        _direct = direct;
        Debug.Assert(BitOperations.IsPow2(pageBytes) && BitOperations.IsPow2(layout.SegmentSizeBytes) && pageBytes <= layout.SegmentSizeBytes,
            "pages and segments are powers of two, a page within a segment (JournalOptions.Validate)");
        _layout = layout;
        _pageBytes = pageBytes;
        _maxEntryBytes = RecordFrame.HeaderBytes + maxRecordBytes;
        _segmentBits = BitOperations.Log2((ulong)layout.SegmentSizeBytes);
        _chunkBytes = (int)Math.Min(Math.Max(pageBytes, ReadBytes), layout.SegmentSizeBytes);
        _buffer = (byte*)NativeMemory.AlignedAlloc((nuint)_chunkBytes, AlignBytes);
    }

    /// <summary>Where the next entry begins (after the last one read, and any page padding passed).</summary>
    public long Position => _next;

    /// <summary>Why the last read was <see cref="SegmentRead.Broken"/>.</summary>
    public JournalCorruptionReason FailureReason { get; private set; }

    /// <summary>What was found, for the operator; built only on a failure.</summary>
    public string FailureDetail { get; private set; } = "";

    /// <summary>Reads entries from <paramref name="start"/> (an entry's address) until <paramref name="end"/>
    /// (long.MaxValue: until nothing more was written).</summary>
    public void Seek(long start, long end)
    {
        if (start < 0 || end < start) throw new ArgumentOutOfRangeException(nameof(start), $"journal: read [{start}, {end})");
        if ((start & (EntryHeaderBytes - 1)) != 0) throw new ArgumentException($"journal: address {start} is not an entry's (4-byte aligned)", nameof(start));
        _next = start;
        _end = end;
    }

    /// <summary>The next entry: <paramref name="entry"/> is valid until the next call. <paramref name="address"/> is where
    /// it begins, or for anything but an entry where reading stopped.</summary>
    public SegmentRead Next(out long address, out ReadOnlySpan<byte> entry)
    {
        entry = default;
        while (true)
        {
            address = _next;
            if (address >= _end) return SegmentRead.End;
            Load(address);
            int offset = (int)(address - _bufferAt);
            long pageOffset = address & (_pageBytes - 1);
            if (offset >= _valid) return SegmentRead.Exhausted;
            if (offset + EntryHeaderBytes > _valid) return Fail(JournalCorruptionReason.Unreadable, "the segment file ends inside the entry's length");
            int entryBytes = BinaryPrimitives.ReadInt32LittleEndian(new ReadOnlySpan<byte>(_buffer + offset, EntryHeaderBytes));
            if (entryBytes == 0)
            {
                // Padding only where an entry may not have fit: FasterLog begins a new page for no other reason. Else
                // (and at a page's start) nothing was written here.
                if (pageOffset == 0 || _pageBytes - pageOffset >= EntryHeaderBytes + Align(_maxEntryBytes)) return SegmentRead.Exhausted;
                _next = address - pageOffset + _pageBytes;
                continue;
            }
            // long: a garbage length near int.MaxValue must not wrap past the bounds (FasterLog's own iterator spins there).
            long size = EntryHeaderBytes + Align(entryBytes);
            if (entryBytes < RecordFrame.HeaderBytes || entryBytes > _maxEntryBytes || pageOffset + size > _pageBytes)
                return Fail(JournalCorruptionReason.LengthMismatch, $"entry length {entryBytes} does not fit a record at page offset {pageOffset}");
            if (offset + EntryHeaderBytes + entryBytes > _valid)
                return Fail(JournalCorruptionReason.Unreadable, "the segment file ends inside the entry");
            entry = new ReadOnlySpan<byte>(_buffer + offset + EntryHeaderBytes, entryBytes);
            _next = address + size;
            return SegmentRead.Entry;
        }
    }

    /// <summary>FasterLog pads each entry to 4 bytes.</summary>
    private static long Align(long entryBytes) => (entryBytes + 3) & ~3L;

    private SegmentRead Fail(JournalCorruptionReason reason, string detail)
    {
        FailureReason = reason;
        FailureDetail = detail;
        return SegmentRead.Broken;
    }

    /// <summary>Makes the buffer hold the chunk of <paramref name="address"/>: one read, unless it holds it already.</summary>
    private void Load(long address)
    {
        long chunkAt = address & ~((long)_chunkBytes - 1);
        if (chunkAt == _bufferAt) return;
        long segment = address >> _segmentBits;
        if (segment != _fileSegment)
        {
            _file?.Dispose();
            _file = null;
            _fileDirect = false;
            _fileSegment = segment;
            var (path, _) = _layout.Locate(address);
            // Missing: nothing was written there (Exhausted); the caller says whether that is the end or a loss.
            _file = DirectFile.OpenRead(path, tryDirect: _direct, out _fileDirect);
        }
        _bufferAt = chunkAt;
        _valid = 0;
        if (_file is null) return;
        long fileOffset = chunkAt & (_layout.SegmentSizeBytes - 1);
        var destination = new Span<byte>(_buffer, _chunkBytes);
        while (_valid < _chunkBytes)
        {
            int read = RandomAccess.Read(_file, destination[_valid..], fileOffset + _valid);
            if (read == 0) break; // the file's end
            _valid += read;
            // A direct read is short only at the file's end, and the next one would not be aligned.
            if (_fileDirect && _valid < _chunkBytes) break;
        }
    }

    public void Dispose()
    {
        _file?.Dispose();
        _file = null;
        if (_buffer is not null)
        {
            NativeMemory.AlignedFree(_buffer);
            _buffer = null;
        }
    }
}
