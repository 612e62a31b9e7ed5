using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Switch.Engine.Snapshots;

/// <summary>
/// Has the kernel read files into the page cache ahead of their reader, from a helper thread: what a start from a
/// snapshot reads, the snapshot and then the journal after it. A snapshot is written <c>O_DIRECT</c>, so the first start
/// after it was written reads it from the device, and one thread's buffered reads keep only the kernel's readahead
/// window in flight (measured here: 260–360 MB/s read alone against 420–770 MB/s with several reads in flight), while
/// the decoding waits on each. The helper asks for each piece chunk by chunk (<c>posix_fadvise(POSIX_FADV_WILLNEED)</c>,
/// which queues the reads and returns), staying at most a bound ahead of the piece's reader, so the device works on the
/// next chunks while the reader decodes the last; the pieces in order (the snapshot is needed first). Only speed
/// differs: the readers read and check every byte as before. Elsewhere than Linux, or where the kernel refuses, nothing.
/// </summary>
public sealed class FileReadahead : IDisposable
{
    /// <summary>One advice's range: large enough to keep several device reads queued, small enough to stay just ahead.</summary>
    public const long ChunkBytes = 8L << 20;
    /// <summary>How far ahead of a piece's reader the helper may ask: the page cache this start takes early, at most.</summary>
    public const long MaxAheadBytes = 128L << 20;
    /// <summary>Pieces at most (a snapshot and the journal segments after it).</summary>
    public const int MaxPieces = 64;
    private const int PosixFadvWillNeed = 3;

    /// <summary>Bytes [<paramref name="From"/>, <paramref name="To"/>) of a file; <paramref name="ReaderAt"/>: the offset in
    /// the file its reader has reached (any thread may call it).</summary>
    public readonly record struct Piece(string Path, long From, long To, Func<long> ReaderAt);

    private readonly IReadOnlyList<Piece> _pieces;
    private readonly long _chunkBytes;
    private readonly long _maxAheadBytes;
    private readonly Thread? _thread;
    private readonly ManualResetEventSlim _stop = new();
    private long _advisedBytes;

    [DllImport("libc", EntryPoint = "posix_fadvise")]
    private static extern int PosixFadvise(SafeFileHandle fd, long offset, long length, int advice);

    /// <summary>A whole file: <paramref name="readerAt"/>, the bytes its reader has read.</summary>
    public FileReadahead(string path, Func<long> readerAt, long chunkBytes = ChunkBytes, long maxAheadBytes = MaxAheadBytes)
        : this([new Piece(path, 0, long.MaxValue, readerAt)], chunkBytes, maxAheadBytes)
    {
    }

    /// <summary>Starts the helper on <paramref name="pieces"/>, in order (a piece's end past its file's: the file's end).
    /// The sizes: <see cref="ChunkBytes"/> and <see cref="MaxAheadBytes"/> unless a test gives its own.</summary>
    public FileReadahead(IReadOnlyList<Piece> pieces, long chunkBytes = ChunkBytes, long maxAheadBytes = MaxAheadBytes)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(pieces.Count, MaxPieces);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkBytes, 4096);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxAheadBytes, chunkBytes);
        _pieces = pieces;
        _chunkBytes = chunkBytes;
        _maxAheadBytes = maxAheadBytes;
        if (!OperatingSystem.IsLinux() || pieces.Count == 0) return;
        _thread = new Thread(Run) { IsBackground = true, Name = "restore-readahead" };
        _thread.Start();
    }

    /// <summary>Bytes the kernel was asked to read ahead.</summary>
    public long AdvisedBytes => Interlocked.Read(ref _advisedBytes);
    /// <summary>Advices the kernel refused, or files that would not open: the helper then stopped.</summary>
    public int Refused => Volatile.Read(ref _refused);
    private int _refused;

    private void Run()
    {
        foreach (Piece piece in _pieces)
        {
            if (!Advise(piece)) return;
        }
    }

    /// <summary>One piece, chunk by chunk; false: stopped or refused (nothing more to do).</summary>
    private bool Advise(Piece piece)
    {
        SafeFileHandle? file = null;
        long end;
        try
        {
            file = File.OpenHandle(piece.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            end = Math.Min(piece.To, RandomAccess.GetLength(file));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Never thrown on: an exception on this thread would end the process for a hint. The reader will say what
            // is wrong with the file; this only would have made it faster.
            file?.Dispose();
            Interlocked.Increment(ref _refused);
            return false;
        }
        using (file)
        {
            for (long offset = piece.From; offset < end; offset += _chunkBytes)
            {
                long length = Math.Min(_chunkBytes, end - offset);
                // Ahead of the reader by at most the bound: wait (briefly, re-checking) for the reader to come closer.
                while (offset + length - piece.ReaderAt() > _maxAheadBytes)
                {
                    if (_stop.Wait(1)) return false;
                }
                if (_stop.IsSet) return false;
                if (PosixFadvise(file, offset, length, PosixFadvWillNeed) != 0)
                {
                    Interlocked.Increment(ref _refused);
                    return false;
                }
                Interlocked.Add(ref _advisedBytes, length);
            }
        }
        return true;
    }

    /// <summary>Stops the helper (at most one chunk's advice away).</summary>
    public void Dispose()
    {
        _stop.Set();
        _thread?.Join();
        _stop.Dispose();
        Debug.Assert(_thread is null || !_thread.IsAlive);
    }
}
