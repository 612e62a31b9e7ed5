using System.Diagnostics;
using FASTER.core;
using Switch.Engine.Snapshots;

namespace Switch.Engine.Archive;

/// <summary>
/// Writes FASTER's large device writes in slices under a snapshot's write budget (<see cref="WritePacer"/>), one slice on
/// the disk at a time, on a thread of its own. FASTER issues a checkpoint's writes at once: the hash index as one write of
/// its whole size (64 MiB by default) and the fold-over as whole log pages. Written at the disk's speed beside the
/// journal, they made the journal's group-commit fsyncs wait behind them for most of a second at each snapshot's start,
/// and every answer of that second waited too. Sliced and paced, they trickle out as the snapshot file does.
/// <para>The caller never waits: a write is queued and its completion called back (on the pool) once every slice is
/// on the device, as FASTER expects of an asynchronous device. The source memory stays FASTER's until then.</para>
/// </summary>
public sealed class PacedWrites : IDisposable
{
    /// <summary>The slice: small enough that a journal fsync queued behind one waits a few milliseconds at most.</summary>
    public const int SliceBytes = 1 << 20;
    /// <summary>Writes below this go to the device at once (a checkpoint's metadata, a few KiB): nothing to spread out,
    /// and FASTER may wait for them on the thread that moves its state machine.</summary>
    public const int MinPacedBytes = 64 << 10;
    /// <summary>How long a slice may take on the device before the write is failed (a device that stopped answering).</summary>
    public const int SliceTimeoutMs = 60_000;

    private readonly WritePacer _pacer;
    private readonly Queue<Request> _queue = new();
    private readonly SemaphoreSlim _queued = new(0);
    private readonly SemaphoreSlim _sliceDone = new(0);
    private readonly Thread _thread;
    private uint _sliceError;
    private volatile bool _stopping;
    private long _bytesPaced;

    public PacedWrites(WritePacer pacer)
    {
        _pacer = pacer;
        _thread = new Thread(Run) { Name = "switch-archpace", IsBackground = true };
        _thread.Start();
    }

    public WritePacer Pacer => _pacer;

    /// <summary>Bytes written through the pacer so far (metrics, tests).</summary>
    public long BytesPaced => Interlocked.Read(ref _bytesPaced);

    /// <summary>Whether a write of <paramref name="bytes"/> is paced (the others go to the device at once).</summary>
    public static bool Paces(uint bytes) => bytes >= MinPacedBytes;

    /// <summary>Queues a write of <paramref name="bytes"/> from <paramref name="source"/> to <paramref name="device"/> at
    /// <paramref name="destination"/> (in <paramref name="segment"/>, or -1: the device's flat addressing); in slices
    /// under the budget if <paramref name="pace"/>, else at once when its turn comes.</summary>
    public void Enqueue(IDevice device, IntPtr source, int segment, ulong destination, uint bytes, bool pace, DeviceIOCompletionCallback callback, object context)
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        Debug.Assert(!pace || Paces(bytes));
        lock (_queue) _queue.Enqueue(new Request(device, source, segment, destination, bytes, pace, callback, context));
        _queued.Release();
    }

    private void Run()
    {
        while (true)
        {
            _queued.Wait();
            Request r;
            lock (_queue)
            {
                if (!_queue.TryDequeue(out r)) return; // woken by Dispose with nothing left
            }
            Write(r);
        }
    }

    private void Write(in Request r)
    {
        uint written = 0;
        uint error = 0;
        while (written < r.Bytes && error == 0)
        {
            uint slice = r.Pace ? Math.Min(SliceBytes, r.Bytes - written) : r.Bytes;
            if (r.Pace && !_stopping) _pacer.Wrote(slice); // a closing store's last writes are not held back
            try
            {
                if (r.Segment < 0) r.Device.WriteAsync(r.Source + (nint)written, r.Destination + written, slice, SliceWritten, null!);
                else r.Device.WriteAsync(r.Source + (nint)written, r.Segment, r.Destination + written, slice, SliceWritten, null!);
                error = _sliceDone.Wait(SliceTimeoutMs) ? _sliceError : 1;
            }
            catch (Exception e) when (e is IOException or FasterException or ObjectDisposedException)
            {
                error = 1;
            }
            if (error == 0)
            {
                written += slice;
                if (r.Pace) Interlocked.Add(ref _bytesPaced, slice);
            }
        }
        Debug.Assert(error != 0 || written == r.Bytes);
        // On the pool, not here: a completion may move FASTER's checkpoint on, which may write (its metadata) through this
        // queue and wait for it.
        (DeviceIOCompletionCallback callback, object context) = (r.Callback, r.Context);
        ThreadPool.UnsafeQueueUserWorkItem(_ => callback(error, written, context), null);
    }

    private void SliceWritten(uint errorCode, uint numBytes, object context)
    {
        _sliceError = errorCode;
        _sliceDone.Release();
    }

    /// <summary>Writes what is queued (unpaced), then ends the thread.</summary>
    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        _queued.Release();
        _thread.Join();
    }

    private readonly record struct Request(IDevice Device, IntPtr Source, int Segment, ulong Destination, uint Bytes, bool Pace,
        DeviceIOCompletionCallback Callback, object Context);
}
