using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Switch.Engine.Snapshots;

/// <summary>
/// Has the kernel read a file into the page cache ahead of its reader, from a helper thread: the snapshot a start
/// restores. A snapshot is written <c>O_DIRECT</c>, so the first start after it was written reads it from the device,
/// and one thread's buffered reads keep only the kernel's readahead window in flight (measured here: 260–360 MB/s read
/// alone against 420–770 MB/s with several reads in flight), while the decoding waits on each. The helper asks for the
/// file chunk by chunk (<c>posix_fadvise(POSIX_FADV_WILLNEED)</c>, which queues the reads and returns), staying at most
/// <see cref="MaxAheadBytes"/> ahead of the reader, so the device works on the next chunks while the reader decodes the last.
/// Only speed differs: the reader reads and checks every byte as before. Elsewhere than Linux, or where the kernel
/// refuses, it does nothing.
/// </summary>
public sealed class FileReadahead : IDisposable
{
    /// <summary>One advice's range: large enough to keep several device reads queued, small enough to stay just ahead.</summary>
    public const long ChunkBytes = 8L << 20;
    /// <summary>How far ahead of the reader the helper may ask: the page cache this start takes early, at most.</summary>
    public const long MaxAheadBytes = 128L << 20;
    private const int PosixFadvWillNeed = 3;

    private readonly SafeFileHandle _file;
    private readonly long _lengthBytes;
    private readonly Func<long> _readerPosition;
    private readonly Thread? _thread;
    private readonly ManualResetEventSlim _stop = new();
    private long _advisedBytes;

    [DllImport("libc", EntryPoint = "posix_fadvise")]
    private static extern int PosixFadvise(SafeFileHandle fd, long offset, long length, int advice);

    private readonly long _chunkBytes;
    private readonly long _maxAheadBytes;

    /// <summary>Starts the helper on <paramref name="path"/>; <paramref name="readerPosition"/>: how far the reader has
    /// read (any thread may call it). The sizes: <see cref="ChunkBytes"/> and <see cref="MaxAheadBytes"/> unless a test
    /// gives its own.</summary>
    public FileReadahead(string path, Func<long> readerPosition, long chunkBytes = ChunkBytes, long maxAheadBytes = MaxAheadBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkBytes, 4096);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxAheadBytes, chunkBytes);
        _readerPosition = readerPosition;
        _chunkBytes = chunkBytes;
        _maxAheadBytes = maxAheadBytes;
        if (!OperatingSystem.IsLinux())
        {
            _file = new SafeFileHandle();
            return;
        }
        _file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        _lengthBytes = RandomAccess.GetLength(_file);
        _thread = new Thread(Run) { IsBackground = true, Name = "restore-readahead" };
        _thread.Start();
    }

    /// <summary>Bytes the kernel was asked to read ahead.</summary>
    public long AdvisedBytes => Interlocked.Read(ref _advisedBytes);
    /// <summary>Advices the kernel refused: the helper then stopped.</summary>
    public int Refused { get; private set; }

    private void Run()
    {
        for (long offset = 0; offset < _lengthBytes; offset += _chunkBytes)
        {
            // Ahead of the reader by at most the bound: wait (briefly, re-checking) for the reader to come closer.
            while (offset + _chunkBytes - _readerPosition() > _maxAheadBytes)
            {
                if (_stop.Wait(1)) return;
            }
            if (_stop.IsSet) return;
            long length = Math.Min(_chunkBytes, _lengthBytes - offset);
            if (PosixFadvise(_file, offset, length, PosixFadvWillNeed) != 0)
            {
                Refused++;
                return;
            }
            Interlocked.Add(ref _advisedBytes, length);
        }
    }

    /// <summary>Stops the helper (at most one chunk's advice away) and closes its handle.</summary>
    public void Dispose()
    {
        _stop.Set();
        _thread?.Join();
        _file.Dispose();
        _stop.Dispose();
        Debug.Assert(_thread is null || !_thread.IsAlive);
    }
}
