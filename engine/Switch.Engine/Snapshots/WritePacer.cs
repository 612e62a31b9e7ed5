using System.Diagnostics;

namespace Switch.Engine.Snapshots;

/// <summary>
/// Holds a snapshot's writing to a budget in bytes a second, so its disk writes (and the copying and checksumming that
/// feed them) come as a steady trickle beside the journal's fsyncs and the switch's threads, not as one burst of
/// hundreds of MiB at the disk's full speed. A leaky bucket: the writer sleeps when it is ahead of the budget; a writer
/// that fell behind (the machine was busy) may catch up by at most <see cref="MaxCreditMs"/> worth, no more.
/// One budget for all of a snapshot's writes: the snapshot writer thread and the archive's paced checkpoint writes
/// (<see cref="Archive.PacedWrites"/>) share one pacer, each waiting on its own thread. Its clock decides when bytes are
/// written, never what they are.
/// </summary>
public sealed class WritePacer
{
    /// <summary>The most a writer that fell behind may write at once beyond the budget, in time at that budget.</summary>
    public const int MaxCreditMs = 50;

    private readonly long _bytesPerSecond;
    private readonly Func<long> _nowTicks;
    private readonly Action<TimeSpan> _sleep;
    private readonly long _creditTicks;
    private readonly object _gate = new();
    /// <summary>When the bytes written so far are due, at the budget (under <see cref="_gate"/>).</summary>
    private long _dueTicks;
    private long _sleptTicks;

    /// <param name="bytesPerSecond">The budget; 0: none (every call returns at once).</param>
    /// <param name="nowTicks">The clock, in <see cref="Stopwatch"/> ticks (tests give their own).</param>
    /// <param name="sleep">How the writer waits (tests give their own).</param>
    public WritePacer(long bytesPerSecond, Func<long>? nowTicks = null, Action<TimeSpan>? sleep = null)
    {
        if (bytesPerSecond < 0) throw new ArgumentOutOfRangeException(nameof(bytesPerSecond), "0 (no budget) or more");
        _bytesPerSecond = bytesPerSecond;
        _nowTicks = nowTicks ?? Stopwatch.GetTimestamp;
        _sleep = sleep ?? Thread.Sleep;
        _creditTicks = Stopwatch.Frequency * MaxCreditMs / 1000;
        _dueTicks = _nowTicks();
    }

    /// <summary>Time slept waiting for the budget, in all (every writer's).</summary>
    public TimeSpan Slept => Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _sleptTicks));

    private long _bytesCharged;

    /// <summary>Bytes charged against the budget so far, in all (every writer's).</summary>
    public long BytesCharged => Interlocked.Read(ref _bytesCharged);

    /// <summary>The writer wrote <paramref name="bytes"/> more: returns once the budget allows them.</summary>
    public void Wrote(long bytes)
    {
        Debug.Assert(bytes >= 0);
        Interlocked.Add(ref _bytesCharged, bytes);
        if (_bytesPerSecond == 0 || bytes == 0) return;
        long aheadTicks;
        lock (_gate)
        {
            long now = _nowTicks();
            // Time the writers lost (a busy machine) is not made up for in one burst: at most the credit.
            _dueTicks = Math.Max(_dueTicks, now - _creditTicks) + (long)((double)bytes * Stopwatch.Frequency / _bytesPerSecond);
            aheadTicks = _dueTicks - now;
        }
        if (aheadTicks <= 0) return;
        _sleep(Stopwatch.GetElapsedTime(0, aheadTicks)); // outside the gate: another writer books its bytes meanwhile
        Interlocked.Add(ref _sleptTicks, aheadTicks);
    }
}
