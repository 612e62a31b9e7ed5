using System.Diagnostics;

namespace Switch.Journal;

/// <summary>
/// A device's writes as a watchdog sees them: how many were handed to it and are not done, how many of those are in the
/// system call (the rest wait for a thread), their bytes, and since when none completed while some were outstanding.
/// A few interlocked adds and a timestamp a write; read from any thread.
/// The figures are a diagnostic: a reader between two of a write's updates may see them one write apart.
/// </summary>
public sealed class DeviceActivity
{
    private long _inFlight;
    private long _writing;
    private long _bytesInFlight;
    private long _completed;
    // The last completion, or the moment the device went from idle to busy: a device with writes outstanding has
    // completed none since then.
    private long _progressTimestamp;

    /// <summary>Writes handed to the device and not yet completed.</summary>
    public long InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Of those, the writes in the write system call now (the others wait for a thread to make it).</summary>
    public long Writing => Volatile.Read(ref _writing);

    /// <summary>The bytes of those writes.</summary>
    public long BytesInFlight => Volatile.Read(ref _bytesInFlight);

    /// <summary>Writes completed (failed ones included) since the device was made.</summary>
    public long Completed => Volatile.Read(ref _completed);

    /// <summary>How long the device has had writes outstanding and completed none (0 when it has none outstanding).</summary>
    public long WaitingMs(long nowTimestamp)
    {
        if (Volatile.Read(ref _inFlight) <= 0) return 0;
        long since = Volatile.Read(ref _progressTimestamp);
        return Math.Max(0, (nowTimestamp - since) * 1000 / Stopwatch.Frequency);
    }

    public void Started(uint bytes)
    {
        Interlocked.Add(ref _bytesInFlight, bytes);
        if (Interlocked.Increment(ref _inFlight) == 1) Volatile.Write(ref _progressTimestamp, Stopwatch.GetTimestamp());
    }

    /// <summary>A thread makes the write's system call now.</summary>
    public void Writes() => Interlocked.Increment(ref _writing);

    public void Finished(uint bytes)
    {
        Interlocked.Decrement(ref _writing);
        Volatile.Write(ref _progressTimestamp, Stopwatch.GetTimestamp());
        Interlocked.Increment(ref _completed);
        Interlocked.Add(ref _bytesInFlight, -(long)bytes);
        long left = Interlocked.Decrement(ref _inFlight);
        Debug.Assert(left >= 0, "a device write finished that never started");
    }
}
