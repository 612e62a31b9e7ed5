using System.Diagnostics;
using Microsoft.Win32.SafeHandles;

namespace Switch.Journal;

/// <summary>
/// Keeps the dirty pages of files the switch appends to through the page cache (the outcome feeds, the clearing
/// records) at most <see cref="BehindBytes"/> per file. Left to the kernel, they wait until 30 s old or until a tenth of
/// memory is dirty (the defaults), gigabytes at the design peak, and are then written back in bursts that the journal's
/// O_SYNC commits, on the same disk, queue behind. Here, once a file has <see cref="BehindBytes"/> appended behind the
/// last range handed over, that range's writeback is started (<see cref="WriteBack.Start"/>: the kernel's
/// <c>sync_file_range(SYNC_FILE_RANGE_WRITE)</c>, no wait for the disk) on a thread of its own: starting it may still
/// wait for the device's queue or the file system's block allocation, which the appending thread (the output thread)
/// must not. A file system with no writeback (tmpfs) makes the call a no-op. Linux only; elsewhere, and with
/// <see cref="BehindBytes"/> 0, nothing.
/// <para>Once a range's writeback is started, the file's pages more than <see cref="KeptCachedBytes"/> before it are
/// dropped from the page cache (<see cref="WriteBack.Drop"/>; written back by then, they are clean). Kept, every byte
/// appended was a new page of the page cache, taken from the kernel's free memory: on a virtual machine that hands its
/// free memory back to the host (free page reporting), a page so taken costs the host's fault when first written, and
/// the output thread's copies into the page cache were a third of its CPU at the design peak. Dropped pages are free again
/// at once and are the next ones the kernel hands out (before the pages it has reported), so a file's appends reuse a
/// few MiB. The last <see cref="KeptCachedBytes"/> stay: followers reading the live tail (an outcome feed's
/// subscribers) read them from memory.</para>
/// <para>Each file's appender keeps the offset handed over so far (<c>startedBytes</c>) and says, after it writes,
/// how many of the file's bytes the kernel holds. The queue is bounded (<see cref="MaxQueued"/>): when it is full the
/// range is not handed and the next append hands it with what follows, so nothing waits and nothing is allocated.</para>
/// </summary>
public sealed class WriteBehind : IDisposable
{
    /// <summary>Below this, ranges are a few pages each: a system call per few appends for no fewer dirty pages that matter.</summary>
    public const long MinBehindBytes = 64 << 10;
    /// <summary>Above this the bound no longer bounds: the kernel's own threshold (10% of memory) is about that on a small machine.</summary>
    public const long MaxBehindBytes = 1L << 30;
    /// <summary>Ranges waiting for the writeback thread: far more than the files that can be appended to at once.</summary>
    public const int MaxQueued = 256;
    /// <summary>Ranges end at a page boundary while the file goes on: the page still being filled is not written twice.</summary>
    private const long PageBytes = 4096;

    /// <summary>No write-behind: the owners' default (tests, tools).</summary>
    public static readonly WriteBehind Off = new(0);

    private readonly object _gate = new();
    private readonly Range[] _queue = new Range[MaxQueued];
    private readonly Thread? _thread;
    // Under _gate.
    private int _head;
    private int _count;
    private bool _sleeping;
    private bool _stopping;
    private long _handed;
    private long _queueFull;
    // Written by the writeback thread.
    private long _done;
    private long _bytesStarted;
    private long _failures;
    private int _lastErrno;

    /// <param name="behindBytes">0: off; else <see cref="MinBehindBytes"/> to <see cref="MaxBehindBytes"/>.</param>
    public WriteBehind(long behindBytes)
    {
        if (behindBytes != 0 && behindBytes is < MinBehindBytes or > MaxBehindBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(behindBytes), behindBytes, $"0 (off) or {MinBehindBytes} to {MaxBehindBytes}");
        }
        BehindBytes = behindBytes;
        if (!Enabled) return;
        _thread = new Thread(Run) { Name = "switch-wrbehind", IsBackground = true };
        _thread.Start();
    }

    /// <summary>The most bytes a file is let run ahead of the writeback started (0: off).</summary>
    public long BehindBytes { get; }

    /// <summary>How much of a file's end, behind the range last handed, stays in the page cache: the ranges before it are
    /// dropped (<see cref="KeptRanges"/> of them: their writeback, started that many ranges ago, is over by then).</summary>
    public long KeptCachedBytes => KeptRanges * BehindBytes;

    /// <summary>Ranges of <see cref="BehindBytes"/> kept cached behind the one handed: the live tail's followers' room.</summary>
    public const int KeptRanges = 4;

    /// <summary>True where ranges are handed to the kernel: <see cref="BehindBytes"/> not 0, on Linux.</summary>
    public bool Enabled => BehindBytes != 0 && OperatingSystem.IsLinux();

    /// <summary>Ranges whose writeback was started (or failed to be).</summary>
    public long RangesDone => Interlocked.Read(ref _done);

    /// <summary>Bytes whose writeback was started.</summary>
    public long BytesStarted => Interlocked.Read(ref _bytesStarted);

    /// <summary>Ranges the kernel refused to start (the bytes stay dirty until the kernel's own writeback or the file's
    /// fsync, which reports a real I/O error itself) or whose older pages it refused to drop; <see cref="LastErrno"/>
    /// says why.</summary>
    public long Failures => Interlocked.Read(ref _failures);

    public int LastErrno => Volatile.Read(ref _lastErrno);

    /// <summary>Times a range waited for the next append because the queue was full.</summary>
    public long QueueFull
    {
        get { lock (_gate) return _queueFull; }
    }

    /// <summary>After an append (the file's one writing thread): the file holds <paramref name="inKernelBytes"/> in the kernel
    /// (written, not in a user buffer); past <see cref="BehindBytes"/> beyond <paramref name="startedBytes"/>, the range up to
    /// the last whole page is handed over and <paramref name="startedBytes"/> moves to its end.</summary>
    public void Appended(SafeFileHandle file, ref long startedBytes, long inKernelBytes)
    {
        if (!Enabled || inKernelBytes - startedBytes < BehindBytes) return;
        Hand(file, ref startedBytes, inKernelBytes & ~(PageBytes - 1));
    }

    /// <summary>The file's last append before it is closed: the rest is handed over, whatever its size, so a closed file
    /// leaves nothing dirty for the kernel's burst either.</summary>
    public void Closing(SafeFileHandle file, ref long startedBytes, long inKernelBytes)
    {
        if (!Enabled || inKernelBytes <= startedBytes) return;
        Hand(file, ref startedBytes, inKernelBytes);
    }

    /// <summary>Waits until every range handed before the call has been started; false after <paramref name="timeoutMs"/>.</summary>
    public bool Drain(int timeoutMs)
    {
        long handed;
        lock (_gate) handed = _handed;
        long deadline = Environment.TickCount64 + timeoutMs;
        while (RangesDone < handed)
        {
            if (Environment.TickCount64 > deadline) return false;
            Thread.Sleep(1);
        }
        return true;
    }

    /// <summary>Starts what is queued, then ends the thread. Later appends hand nothing.</summary>
    public void Dispose()
    {
        if (_thread is null) return;
        lock (_gate)
        {
            _stopping = true;
            Monitor.Pulse(_gate);
        }
        _thread.Join();
    }

    private void Hand(SafeFileHandle file, ref long startedBytes, long endBytes)
    {
        Debug.Assert(endBytes > startedBytes && startedBytes >= 0);
        // The queue holds a reference: a file its owner closes meanwhile keeps its descriptor until its range is started
        // (never a number the process has since given to another file).
        bool added = false;
        file.DangerousAddRef(ref added);
        lock (_gate)
        {
            if (_count == MaxQueued || _stopping)
            {
                _queueFull++;
                file.DangerousRelease();
                return; // startedBytes stays: the next append hands this range with what follows
            }
            _queue[(_head + _count) % MaxQueued] = new Range(file, startedBytes, endBytes - startedBytes);
            _count++;
            _handed++;
            if (_sleeping) Monitor.Pulse(_gate);
        }
        startedBytes = endBytes;
    }

    private void Run()
    {
        while (true)
        {
            Range range;
            lock (_gate)
            {
                while (_count == 0)
                {
                    if (_stopping) return;
                    _sleeping = true;
                    Monitor.Wait(_gate);
                    _sleeping = false;
                }
                range = _queue[_head];
                _queue[_head] = default;
                _head = (_head + 1) % MaxQueued;
                _count--;
            }
            try
            {
                int errno = WriteBack.Start(range.File, range.Offset, range.Bytes);
                if (errno == 0)
                {
                    Interlocked.Add(ref _bytesStarted, range.Bytes);
                    // From the file's start: what an earlier drop skipped (a page still being written back) goes now.
                    long dropBytes = (range.Offset - KeptCachedBytes) & ~(PageBytes - 1);
                    if (dropBytes > 0) errno = WriteBack.Drop(range.File, 0, dropBytes);
                }
                if (errno != 0)
                {
                    Volatile.Write(ref _lastErrno, errno);
                    Interlocked.Increment(ref _failures);
                }
            }
            finally
            {
                range.File.DangerousRelease();
                Interlocked.Increment(ref _done);
            }
        }
    }

    private readonly record struct Range(SafeFileHandle File, long Offset, long Bytes);
}
