using System.Collections.Concurrent;
using System.Diagnostics;
using FASTER.core;
using Microsoft.Win32.SafeHandles;

namespace Switch.Journal;

/// <summary>
/// A FASTER log device on local segment files (<c>name.0</c>, <c>name.1</c>, ...) whose writes go <c>O_DIRECT</c> on
/// Linux (<see cref="DirectFile"/>): FASTER's own device there opens its files through .NET, which ignores the
/// "no buffering" option, so every page it flushes was copied into the page cache first (a profile at 150,000
/// transactions a second: 7% of the switch's CPU, the kernel's copy of ~770 bytes a transaction). FASTER's buffers and
/// flushes are sector-aligned (it was made for unbuffered I/O); the sector here is <see cref="DirectFile.AlignBytes"/>,
/// which every disk's block size divides. Writes stay <c>O_SYNC</c> like the device this replaces: a write is durable
/// when FASTER is told it is done, and the journal's commits rely on that. The archive's and the journal's are made on a
/// thread of the device's own, in order (<see cref="DeviceWriteThread"/>): on the pool a 32 MiB page write held a pool
/// thread for the disk's time, and a commit's write waited behind socket work for a pool thread (200 to 340 ms at the
/// design peak). Without a thread name the writes go to the pool.
/// <para>Reads stay buffered, on their own handle: a replay's sequential scan keeps the kernel's readahead (and the
/// journal readahead's warming), and an archived record read once is cached. What is cached is only what was read:
/// a record written and never read again is no longer in memory twice (FASTER's and the kernel's), so the first read of
/// one evicted from FASTER's memory is a disk read (one 4 KiB sector) where it may have been a page-cache hit.</para>
/// A file system that refuses <c>O_DIRECT</c> (an older tmpfs) gets the same writes buffered (<see cref="Direct"/>).
/// </summary>
public sealed class DirectLogDevice : StorageDeviceBase
{
    /// <summary>The open files by segment: created at a segment's first read or write.</summary>
    private readonly ConcurrentDictionary<int, Segment> _segments = new();
    private volatile bool _disposed;
    private readonly DeviceWriteThread? _writes;
    private readonly FileReclaimer _reclaimer;

    /// <param name="baseName">The files' name before the segment number.</param>
    /// <param name="recover">Finds the segments an earlier run left (the device's first and last segment).</param>
    /// <param name="writeThread">The name of a thread of the device's own that makes its writes (at most 15 characters
    /// show on Linux); null: the writes go to the thread pool.</param>
    /// <param name="reclaimer">Frees a removed segment's blocks (<see cref="FileReclaimer"/>); null: the process's.</param>
    public DirectLogDevice(string baseName, bool recover, string? writeThread = null, FileReclaimer? reclaimer = null)
        : base(baseName, DirectFile.AlignBytes, Devices.CAPACITY_UNSPECIFIED)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(baseName))!;
        Directory.CreateDirectory(directory);
        Direct = true;
        _reclaimer = reclaimer ?? FileReclaimer.Shared;
        _reclaimer.ReclaimLeftovers(directory, Path.GetFileName(baseName) + ".*"); // segments an earlier run removed and did not finish
        if (recover) FindSegments();
        if (writeThread is not null) _writes = new DeviceWriteThread(writeThread, Writes);
    }

    /// <summary>False once any segment's file was opened buffered (its file system refused O_DIRECT).</summary>
    public bool Direct { get; private set; }

    /// <summary>The writes outstanding on this device (the stall watchdog reads them).</summary>
    public DeviceActivity Writes { get; } = new();

    public override void WriteAsync(IntPtr sourceAddress, int segmentId, ulong destinationAddress, uint numBytesToWrite,
        DeviceIOCompletionCallback callback, object context)
    {
        Debug.Assert(destinationAddress % SectorSize == 0 && numBytesToWrite % SectorSize == 0 && (ulong)sourceAddress % SectorSize == 0,
            "FASTER writes whole sectors from aligned memory");
        HandleCapacity(segmentId);
        Segment segment = Open(segmentId);
        // FASTER's flushing thread (the journaler, the archive's writer) goes on; the write waits on the device's thread or the pool.
        var write = new DeviceWrite(segment.Write, sourceAddress, destinationAddress, numBytesToWrite, callback, context);
        if (_writes is not null)
        {
            _writes.Enqueue(write);
            return;
        }
        Writes.Started(numBytesToWrite);
        ThreadPool.UnsafeQueueUserWorkItem(static s => s.Write.Make(s.Activity), (Write: write, Activity: Writes), preferLocal: false);
    }

    public override void ReadAsync(int segmentId, ulong sourceAddress, IntPtr destinationAddress, uint readLength,
        DeviceIOCompletionCallback callback, object context)
    {
        Segment segment = Open(segmentId);
        // Reads stay on the pool: they are rare (an archived order's first read since it left memory, a replay's scan),
        // a caller waits for each, and none should queue behind a 32 MiB page write.
        ThreadPool.UnsafeQueueUserWorkItem(static state =>
        {
            var (file, offset, destination, bytes, done, context) = state;
            uint error = 0, read;
            try
            {
                // A short read (past the file's end) returns what there is, as FASTER's own device does.
                unsafe { read = (uint)RandomAccess.Read(file, new Span<byte>((void*)destination, (int)bytes), (long)offset); }
            }
            catch (Exception e)
            {
                error = ErrorCode(e);
                read = 0;
            }
            done(error, read, context);
        }, (segment.Read, sourceAddress, destinationAddress, readLength, callback, context), preferLocal: false);
    }

    /// <summary>Gone from its name at once; its blocks are freed in paced steps (<see cref="FileReclaimer"/>): FASTER
    /// removes a retirement's segments together, and their unlink held the journal's commits behind the disk's trim.</summary>
    public override void RemoveSegment(int segment)
    {
        if (_segments.TryRemove(segment, out Segment? files)) files.Dispose();
        _reclaimer.Delete(GetSegmentFilename(FileName, segment));
    }

    public override void RemoveSegmentAsync(int segment, AsyncCallback callback, IAsyncResult result)
    {
        RemoveSegment(segment);
        callback(result);
    }

    public override long GetFileSize(int segment) => segmentSize > 0 ? segmentSize : RandomAccess.GetLength(Open(segment).Read);

    public override void Reset()
    {
        foreach (int id in _segments.Keys)
            if (_segments.TryRemove(id, out Segment? files)) files.Dispose();
    }

    public override void Dispose()
    {
        _disposed = true;
        _writes?.Dispose(); // the writes queued are made first: their files stay open until then
        Reset();
    }

    private Segment Open(int segmentId)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_segments.TryGetValue(segmentId, out Segment? open)) return open;
        string path = GetSegmentFilename(FileName, segmentId);
        SafeFileHandle write = DirectFile.Open(path, truncate: false, sync: true, out bool direct);
        SafeFileHandle read;
        try
        {
            read = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch
        {
            write.Dispose();
            throw;
        }
        var made = new Segment(write, read);
        Segment winner = _segments.GetOrAdd(segmentId, made);
        if (winner != made) made.Dispose(); // another thread opened it first
        else if (!direct) Direct = false;
        return winner;
    }

    /// <summary>The first and last segment files an earlier run left under the base name (a gap: the segments after it).</summary>
    private void FindSegments()
    {
        string? directory = Path.GetDirectoryName(Path.GetFullPath(FileName));
        if (directory is null || !Directory.Exists(directory)) return;
        string prefix = Path.GetFileName(FileName) + ".";
        var ids = new List<int>();
        foreach (string file in Directory.EnumerateFiles(directory, prefix + "*"))
            if (int.TryParse(Path.GetFileName(file).AsSpan(prefix.Length), out int id) && id >= 0) ids.Add(id);
        if (ids.Count == 0) return;
        ids.Sort();
        int first = ids.Count - 1;
        while (first > 0 && ids[first - 1] == ids[first] - 1) first--;
        startSegment = ids[first];
        endSegment = ids[^1];
    }

    /// <summary>FASTER's error code for a failed I/O: the system's, where it says one; never 0 (success).</summary>
    internal static uint ErrorCode(Exception e)
    {
        uint code = (uint)(e.HResult & 0xFFFF);
        return code == 0 ? uint.MaxValue : code;
    }

    private sealed class Segment(SafeFileHandle write, SafeFileHandle read) : IDisposable
    {
        public SafeFileHandle Write { get; } = write;
        public SafeFileHandle Read { get; } = read;

        public void Dispose()
        {
            Write.Dispose();
            Read.Dispose();
        }
    }
}
