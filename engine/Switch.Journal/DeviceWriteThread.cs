using System.Diagnostics;
using FASTER.core;
using Microsoft.Win32.SafeHandles;

namespace Switch.Journal;

/// <summary>
/// A device's writes, made one at a time in the order given on a thread of the device's own, from a bounded queue
/// (the archive's and the journal's: see <see cref="DirectLogDevice"/>).
/// The writes are synchronous (<c>O_DIRECT|O_SYNC</c>: a thread waits in each for the disk); on the thread pool each
/// held a pool thread for the disk's time (a 32 MiB archive page about 35 ms, a commit's write behind a busy disk
/// hundreds), so work queued to the pool behind them (the gateway's and the bank links' socket work, and the journal's
/// own next write) waited too, and the pool, which cannot tell a thread blocked in a system call from a busy one, adds
/// threads only about twice a second. Here the pool never waits on the disk, and a commit's write waits only for this
/// device's writes before it. A caller finding the queue full waits for room (FASTER's flushing thread: the journaler,
/// the archive's writer); the thread itself (a completion that writes again) writes at once instead of waiting on itself.
/// </summary>
internal sealed class DeviceWriteThread : IDisposable
{
    /// <summary>Writes waiting at most; a journal commit issues one or a few, the archive one a page.</summary>
    public const int Capacity = 1_024;

    private readonly DeviceWrite[] _queue = new DeviceWrite[Capacity];
    private readonly object _gate = new();
    private readonly DeviceActivity _activity;
    private readonly Thread _thread;
    private long _head; // the next write to make (under _gate)
    private long _tail; // the next free slot (under _gate)
    private int _callersWaiting;
    private bool _writerWaiting;
    private bool _stopping;

    public DeviceWriteThread(string name, DeviceActivity activity)
    {
        _activity = activity;
        _thread = new Thread(Run) { Name = name, IsBackground = true };
        _thread.Start();
    }

    /// <summary>Queues a write of <paramref name="bytes"/> from <paramref name="source"/> at <paramref name="offset"/>;
    /// <paramref name="done"/> is told on this device's thread, after every write queued before it.</summary>
    public void Enqueue(in DeviceWrite write)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_stopping, this);
            while (_tail - _head == Capacity && Thread.CurrentThread != _thread)
            {
                _callersWaiting++;
                Monitor.Wait(_gate);
                _callersWaiting--;
                ObjectDisposedException.ThrowIf(_stopping, this);
            }
            _activity.Started(write.Bytes);
            if (_tail - _head < Capacity)
            {
                _queue[_tail++ % Capacity] = write;
                if (_writerWaiting) Monitor.PulseAll(_gate);
                return;
            }
        }
        write.Make(_activity); // the device's own thread, its queue full: it would wait on itself
    }

    /// <summary>Makes every write queued, then ends the thread.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_stopping) return;
            _stopping = true;
            Monitor.PulseAll(_gate);
        }
        if (Thread.CurrentThread != _thread) _thread.Join();
    }

    private void Run()
    {
        while (true)
        {
            DeviceWrite write;
            lock (_gate)
            {
                while (_head == _tail)
                {
                    if (_stopping) return;
                    _writerWaiting = true;
                    Monitor.Wait(_gate);
                    _writerWaiting = false;
                }
                long slot = _head++ % Capacity;
                write = _queue[slot];
                _queue[slot] = default; // the callback's context is FASTER's: not kept alive here
                if (_callersWaiting > 0) Monitor.PulseAll(_gate);
            }
            write.Make(_activity);
        }
    }
}

/// <summary>One synchronous write of a device and FASTER's callback for it, made by whichever thread runs it.</summary>
internal readonly record struct DeviceWrite(SafeFileHandle File, IntPtr Source, ulong Offset, uint Bytes, DeviceIOCompletionCallback Done, object Context)
{
    /// <summary>Writes, counts it done in <paramref name="activity"/> and tells FASTER (a failure: its error, nothing written).</summary>
    public void Make(DeviceActivity activity)
    {
        uint error = 0, written = Bytes;
        activity.Writes();
        try
        {
            unsafe { RandomAccess.Write(File, new ReadOnlySpan<byte>((void*)Source, (int)Bytes), (long)Offset); }
        }
        catch (Exception e)
        {
            error = DirectLogDevice.ErrorCode(e);
            written = 0;
        }
        activity.Finished(Bytes);
        Done(error, written, Context);
    }
}
