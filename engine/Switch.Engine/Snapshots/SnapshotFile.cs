using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Switch.Engine.Business;
using Switch.Journal;

namespace Switch.Engine.Snapshots;

/// <summary>Where a snapshot stands in the journal: the last record applied into it, and what the engine had seen.</summary>
/// <param name="RecordNo">The journal record number of the last event applied (the genesis record is 0).</param>
/// <param name="RecordAddress">That record's address in the journal: replay resumes after it.</param>
/// <param name="EventsApplied">Input events applied into the state.</param>
/// <param name="MaxCorrelationId">The highest correlation id of any event applied: a new life's callers number above it.</param>
public readonly record struct SnapshotPosition(long RecordNo, long RecordAddress, long EventsApplied, long MaxCorrelationId);

/// <summary>
/// The snapshot file: everything the logic state is, at one journal position, checksummed as a whole.
/// <code>
/// magic "SWSNAP\r\n" | u32 format version | u32 layout (struct sizes) | position (4 × i64)
/// | config (i32 length, JSON) | state (i64 length, bytes)
/// | arrays: each i32 items, i32 item bytes, i32 items a page, then per page a flag (0: all zero, nothing follows;
///   1: the page's bytes follow; 2: its non-zero words follow, see <see cref="SparsePage"/>) | derived views (i64 length, bytes: the host's)
/// | u32 CRC-32C of everything before it
/// </code>
/// Nothing in it depends on when or by which process it was written: the same position gives the same bytes. The
/// archive's checkpoint token (random, FASTER's) is in a companion file, <c>.archive</c>, written before the snapshot's
/// rename. A file is published whole: written to a temporary, fsynced, renamed, the directory fsynced.
/// </summary>
public static class SnapshotFile
{
    /// <summary>3: pages stored sparse (flag 2). Written in this version only.</summary>
    public const uint FormatVersion = 3;
    /// <summary>2 is 3 without sparse pages: still read, so the first start after an upgrade restores the snapshot the
    /// old build wrote instead of replaying the whole history. Anything else is skipped, naming both.</summary>
    public const uint OldestReadableVersion = 2;
    public const string Extension = ".snap";
    public const string ArchiveExtension = ".archive";
    private static ReadOnlySpan<byte> Magic => "SWSNAP\r\n"u8;
    private const int MaxConfigBytes = 1 << 20;
    private const long MaxSectionBytes = 1L << 30;
    /// <summary>Small on purpose: a read at least this long, a page of a large array, goes from the kernel straight into
    /// its array (the file stream buffers only what is shorter), so the restore copies the file's bytes once, not
    /// twice (0.47 GB at 2^20 retained).</summary>
    private const int ReadBufferBytes = 4 << 10;
    private static ReadOnlySpan<byte> ZeroPage => [0];
    private static ReadOnlySpan<byte> DataPage => [1];
    private static ReadOnlySpan<byte> SparseDataPage => [2];

    /// <summary>The struct sizes the arrays are written in: a build whose structs differ reads no older snapshot.</summary>
    public static uint Layout => (uint)(Unsafe.SizeOf<Transaction>() << 16 | Unsafe.SizeOf<ScopedKey>() << 8 | Unsafe.SizeOf<DailyAccountUsage.Slot>());

    public static string NameFor(long recordNo) => $"snapshot-{recordNo:D20}{Extension}";

    /// <summary>Writes and publishes a snapshot; returns its size in bytes. Runs on the writer thread: the arrays are
    /// copied page by page from their captures (the logic goes on meanwhile). <paramref name="at"/>: the test hook
    /// (<see cref="SnapshotOptions.TestWritePoint"/>), null in production. <paramref name="syncEveryBytes"/>: the
    /// temporary fsynced each time this much more was written (0: only at the end), see <see cref="SnapshotOptions.SyncEveryBytes"/>.
    /// <paramref name="pacer"/>: the write budget (<see cref="SnapshotOptions.WriteMiBPerSecond"/>), null: none.</summary>
    public static long Write(string path, SnapshotPosition position, byte[] configJson, ReadOnlySpan<byte> state,
        IReadOnlyList<ICapturedArray> arrays, Func<byte[]> views, Func<string?> beforePublish, Action<SnapshotWritePoint>? at = null,
        long syncEveryBytes = 0, WritePacer? pacer = null)
    {
        string temp = path + ".tmp";
        long bytes;
        // Readable meanwhile: a copy of the data directory (a backup, the simulation's crash) takes what is written so far.
        // Direct (no page cache): the writing leaves no dirty pages for the journal's commits to wait behind (DirectWriter),
        // each write held to the budget.
        using (DirectWriter file = DirectWriter.Create(temp, pacer is null ? null : pacer.Wrote))
        {
            var output = new ChecksummedWriter(file);
            output.Write(Magic);
            output.U32(FormatVersion);
            output.U32(Layout);
            output.I64(position.RecordNo);
            output.I64(position.RecordAddress);
            output.I64(position.EventsApplied);
            output.I64(position.MaxCorrelationId);
            output.I32(configJson.Length);
            output.Write(configJson);
            output.I64(state.Length);
            output.Write(state);
            int maxPageBytes = arrays.Count == 0 ? 0 : arrays.Max(a => a.PageItems * a.ItemBytes);
            long syncedBytes = 0;
            byte[] page = new byte[maxPageBytes];
            byte[] sparse = new byte[SparsePage.MaxEncodedBytes(maxPageBytes)];
            // Run on each page as the capture holds it (the logic waits to change it meanwhile): encoded from where it
            // lies; only a page that does not shrink is copied, to be written once the logic may change it again.
            int sparseBytes = 0;
            bool zero = false;
            PageBytesReader encode = bytes =>
            {
                sparseBytes = SparsePage.Encode(bytes, sparse, out bool allZero);
                zero = allZero;
                if (!allZero && sparseBytes < 0) bytes.CopyTo(page);
            };
            foreach (ICapturedArray array in arrays)
            {
                output.I32(array.Length);
                output.I32(array.ItemBytes);
                output.I32(array.PageItems);
                for (int p = 0; p < array.Pages; p++)
                {
                    int length = array.PageLength(p) * array.ItemBytes;
                    array.ReadPage(p, encode);
                    // Most of a young switch's table, parked table and filter is zeros: a flag instead of the page.
                    if (zero)
                    {
                        output.Write(ZeroPage);
                    }
                    else if (sparseBytes > 0)
                    {
                        output.Write(SparseDataPage);
                        output.Write(sparse.AsSpan(0, sparseBytes));
                        // A sparse page is charged its whole length: the budget paces the writer's share of the machine
                        // (copying, scanning and checksumming a page cost what its length does), not only the disk's. Paced
                        // by the bytes written, a 2.5 times smaller file came in 4 s instead of 8, its CPU in half the time.
                        pacer?.Wrote(length - sparseBytes);
                    }
                    else
                    {
                        output.Write(DataPage);
                        output.Write(page.AsSpan(0, length));
                    }
                    // Only a buffered file has dirty pages to write back in slices; a direct one's are on the disk already.
                    if (!file.Direct && syncEveryBytes > 0 && file.Position - syncedBytes >= syncEveryBytes)
                    {
                        file.Sync();
                        syncedBytes = file.Position;
                    }
                }
            }
            if (at is not null)
            {
                file.WriteOut(); // what a crash now leaves: a file cut short
                at(SnapshotWritePoint.TempPartlyWritten);
            }
            byte[] viewBytes = views();
            output.I64(viewBytes.Length);
            output.Write(viewBytes);
            output.U32Raw(output.Checksum);
            file.Sync();
            bytes = file.Position;
        }
        string? companion = beforePublish();
        if (companion is not null) DirectorySync.WriteFile(path + ArchiveExtension, System.Text.Encoding.UTF8.GetBytes(companion));
        at?.Invoke(SnapshotWritePoint.TempWritten);
        File.Move(temp, path, overwrite: true);
        at?.Invoke(SnapshotWritePoint.Renamed);
        DirectorySync.Flush(Path.GetDirectoryName(Path.GetFullPath(path))!);
        return bytes;
    }

    /// <summary>The start of a snapshot file, read and checked: header, config, state and usage in memory; the arrays are
    /// read from <see cref="Arrays"/> next, then <see cref="SnapshotArrayReader.VerifyEnd"/>.</summary>
    public sealed class Opened(SnapshotPosition position, SwitchConfig config, byte[] configJson, byte[] state, SnapshotArrayReader arrays,
        FileReadahead? readahead) : IDisposable
    {
        public SnapshotPosition Position { get; } = position;
        public SwitchConfig Config { get; } = config;
        public byte[] ConfigJson { get; } = configJson;
        public byte[] State { get; } = state;
        public SnapshotArrayReader Arrays { get; } = arrays;
        /// <summary>Bytes the kernel was asked to read ahead of the restore (0: opened without, or not Linux).</summary>
        public long ReadaheadBytes => readahead?.AdvisedBytes ?? 0;

        public void Dispose()
        {
            readahead?.Dispose();
            Arrays.Dispose();
        }
    }

    /// <summary>Opens a snapshot; throws <see cref="InvalidDataException"/> naming what is wrong (not a snapshot, another
    /// format version or layout, a section too long, torn). <paramref name="readAhead"/>: the whole file is to be read (a
    /// restore): the kernel reads it ahead of the reader (<see cref="FileReadahead"/>); false for a look at the header.</summary>
    public static Opened Open(string path, bool readAhead = false)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, ReadBufferBytes);
        FileReadahead? readahead = null;
        try
        {
            var input = new SnapshotArrayReader(file, path);
            if (readAhead) readahead = new FileReadahead(path, () => input.BytesRead);
            Span<byte> magic = stackalloc byte[8];
            input.ReadExactly(magic);
            if (!magic.SequenceEqual(Magic)) throw new InvalidDataException($"{path}: not a snapshot file");
            uint version = input.U32();
            if (version < OldestReadableVersion || version > FormatVersion)
                throw new InvalidDataException($"{path}: snapshot format version {version}, this build reads {OldestReadableVersion} to {FormatVersion}");
            input.SparsePages = version >= 3;
            uint layout = input.U32();
            if (layout != Layout) throw new InvalidDataException($"{path}: snapshot layout {layout:X}, this build's is {Layout:X} (its structs differ)");
            var position = new SnapshotPosition(input.I64(), input.I64(), input.I64(), input.I64());
            if (position.RecordNo < 1 || position.RecordAddress < 0 || position.EventsApplied < 0)
                throw new InvalidDataException($"{path}: position {position} is not one a snapshot has");
            byte[] configJson = input.Bytes(input.I32(), MaxConfigBytes, "config");
            byte[] state = input.Bytes(input.I64(), MaxSectionBytes, "state");
            SwitchConfig config;
            try
            {
                config = SwitchConfig.FromJsonUtf8(configJson);
            }
            catch (Exception e) when (e is not InvalidDataException)
            {
                throw new InvalidDataException($"{path}: its configuration does not load: {e.Message}", e);
            }
            return new Opened(position, config, configJson, state, input, readahead);
        }
        catch
        {
            readahead?.Dispose();
            file.Dispose();
            throw;
        }
    }

    /// <summary>A stream writer that keeps a running CRC-32C of what it wrote.</summary>
    private sealed class ChecksummedWriter(DirectWriter stream)
    {
        private uint _crc = Crc32C.Start;
        public uint Checksum => Crc32C.Finish(_crc);

        public void Write(ReadOnlySpan<byte> bytes)
        {
            _crc = Crc32C.Append(_crc, bytes);
            stream.Write(bytes);
        }

        public void U32(uint value)
        {
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(b, value);
            Write(b);
        }

        public void U32Raw(uint value)
        {
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(b, value);
            stream.Write(b);
        }

        public void I32(int value) => U32((uint)value);

        public void I64(long value)
        {
            Span<byte> b = stackalloc byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(b, value);
            Write(b);
        }
    }
}

/// <summary>
/// Reads a snapshot's arrays in the order they were written, straight into the restored state's arrays, keeping the
/// running checksum; <see cref="VerifyEnd"/> then compares it with the file's. Until then nothing read is trusted: the
/// caller throws the restored state away if the check fails.
/// </summary>
public sealed class SnapshotArrayReader(Stream stream, string path) : IDisposable
{
    private uint _crc = Crc32C.Start;
    private long _readTicks;

    /// <summary>Whether a page may be stored sparse (flag 2): format 3 on. A format 2 file holding one is corrupt.</summary>
    internal bool SparsePages { get; set; } = true;

    private long _bytesRead;

    /// <summary>Bytes read from the file so far (header, state, arrays, views, checksum). Any thread (the readahead's).</summary>
    public long BytesRead => Volatile.Read(ref _bytesRead);
    /// <summary>Time spent in the file's reads so far, in microseconds: with <see cref="BytesRead"/>, the storage's rate
    /// as this start saw it (a cold read from a slow device against the page cache's GB/s).</summary>
    public long ReadUs => (long)(_readTicks * 1_000_000.0 / Stopwatch.Frequency);

    /// <summary>The next array into <paramref name="into"/>, which must be all zeros (a new array): pages the file says
    /// are zero are not written.</summary>
    public void ReadInto<T>(Span<T> into, string what) where T : unmanaged
    {
        int length = I32();
        int itemBytes = I32();
        if (length != into.Length) throw new InvalidDataException($"{path}: {what} holds {length} items, this configuration {into.Length}");
        if (itemBytes != Unsafe.SizeOf<T>()) throw new InvalidDataException($"{path}: {what} items of {itemBytes} bytes, this build's are {Unsafe.SizeOf<T>()}");
        int pageItems = I32();
        if (pageItems < 1 || pageItems > PageCapture<T>.MaxPageItems) throw new InvalidDataException($"{path}: {what} in pages of {pageItems} items");
        Span<byte> flag = stackalloc byte[1];
        for (int start = 0; start < length; start += pageItems)
        {
            Span<T> page = into.Slice(start, Math.Min(pageItems, length - start));
            ReadExactly(flag);
            switch (flag[0])
            {
                case 0:
                    // Left as it is: the target is a new array (zero), and not touching it keeps its memory uncommitted.
                    break;
                case 1:
                    ReadExactly(MemoryMarshal.AsBytes(page));
                    break;
                case 2 when SparsePages:
                    ReadSparse(MemoryMarshal.AsBytes(page), what);
                    break;
                default:
                    throw new InvalidDataException($"{path}: {what} page flag {flag[0]}");
            }
        }
    }

    /// <summary>One buffer for a sparse page's bitmap and words, the largest page's: reused, page after page.</summary>
    private byte[] _sparse = [];

    /// <summary>A sparse page (flag 2) into <paramref name="page"/>, which is all zeros (only its non-zero words are written).</summary>
    private void ReadSparse(Span<byte> page, string what)
    {
        int maskBytes = SparsePage.MaskBytes(page.Length);
        int maxBytes = SparsePage.MaxEncodedBytes(page.Length);
        if (_sparse.Length < maxBytes) _sparse = new byte[maxBytes];
        Span<byte> masks = _sparse.AsSpan(0, maskBytes);
        ReadExactly(masks);
        int words;
        try
        {
            words = SparsePage.CountWords(masks, page.Length);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: {what}: {e.Message}");
        }
        Span<byte> values = _sparse.AsSpan(maskBytes, words * 8);
        ReadExactly(values);
        SparsePage.Scatter(masks, values, page);
        ReadExactly(page[(page.Length / 8 * 8)..]);
    }

    /// <summary>Reads past the next array (a verification that does not need it), still checksummed.</summary>
    public void Skip(string what)
    {
        int length = I32();
        int itemBytes = I32();
        int pageItems = I32();
        if (length < 0 || itemBytes < 1 || pageItems < 1 || (long)pageItems * itemBytes > 1 << 24)
            throw new InvalidDataException($"{path}: {what}: {length} items of {itemBytes} bytes in pages of {pageItems}");
        byte[] page = new byte[pageItems * itemBytes];
        Span<byte> flag = stackalloc byte[1];
        for (int start = 0; start < length; start += pageItems)
        {
            ReadExactly(flag);
            Span<byte> bytes = page.AsSpan(0, Math.Min(pageItems, length - start) * itemBytes);
            if (flag[0] == 1) ReadExactly(bytes);
            else if (flag[0] == 2 && SparsePages) ReadSparse(bytes, what); // into a scratch page: its old words do not matter
            else if (flag[0] != 0) throw new InvalidDataException($"{path}: {what} page flag {flag[0]}");
        }
    }

    /// <summary>The derived views' section, after the arrays; then <see cref="VerifyEnd"/>.</summary>
    public byte[] ReadViews() => Bytes(I64(), 1L << 30, "derived views");

    /// <summary>The file's checksum equals what was read, and nothing follows it.</summary>
    public void VerifyEnd()
    {
        uint computed = Crc32C.Finish(_crc);
        Span<byte> b = stackalloc byte[4];
        ReadRaw(b);
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(b);
        if (stored != computed) throw new InvalidDataException($"{path}: checksum {stored:X8} stored, {computed:X8} computed: the file is corrupt");
        if (stream.ReadByte() != -1) throw new InvalidDataException($"{path}: bytes after the checksum");
        Debug.Assert(BytesRead == stream.Length, "every byte of the file was read through ReadRaw");
    }

    internal void ReadExactly(Span<byte> into)
    {
        ReadRaw(into);
        _crc = Crc32C.Append(_crc, into);
    }

    private void ReadRaw(Span<byte> into)
    {
        long started = Stopwatch.GetTimestamp();
        try
        {
            stream.ReadExactly(into);
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException($"{path}: ends early (torn: the write did not finish)");
        }
        _readTicks += Stopwatch.GetTimestamp() - started;
        Volatile.Write(ref _bytesRead, _bytesRead + into.Length);
    }

    internal uint U32()
    {
        Span<byte> b = stackalloc byte[4];
        ReadExactly(b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    internal int I32() => (int)U32();

    internal long I64()
    {
        Span<byte> b = stackalloc byte[8];
        ReadExactly(b);
        return BinaryPrimitives.ReadInt64LittleEndian(b);
    }

    internal byte[] Bytes(long length, long max, string what)
    {
        if (length < 0 || length > max) throw new InvalidDataException($"{path}: {what} of {length} bytes, at most {max}");
        var bytes = new byte[length];
        ReadExactly(bytes);
        return bytes;
    }

    public void Dispose() => stream.Dispose();
}
