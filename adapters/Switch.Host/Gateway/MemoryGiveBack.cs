namespace Switch.Host.Gateway;

/// <summary>
/// Gives memory back to the system once Transact streams have ended: their answers, the ones written and the ones
/// dropped unread (the client stopped reading, then left), are garbage, but an idle switch allocates nothing, so no
/// full collection runs and the process keeps it. Once streams that carried at least <see cref="MinAnswers"/>
/// answers have ended and no stream has ended for <see cref="QuietMs"/> (the burst of closes is over), one
/// aggressive collection runs: blocking, compacting, and decommitting what it frees. At most one per
/// <see cref="MinIntervalMs"/>, on a timer thread; what it costs is one pause after a client left, never per call.
/// Never while a Transact stream is open: one that sends allocates, so the collector runs anyway, and a blocking
/// compaction of the whole heap (the large objects too) stalled every open stream (at 180,000/s: 66-351 ms, a second
/// into each load run, once the warm-up's streams had closed). The last open stream to end arms it.
/// </summary>
internal sealed class MemoryGiveBack
{
    /// <summary>Fewer answers (a few hundred bytes each) are not worth a full collection's pause.</summary>
    public const int MinAnswers = 4_096;

    /// <summary>How long after the last stream that ended the collection runs.</summary>
    public const int QuietMs = 1_000;

    /// <summary>The least time between two collections, whatever the streams do.</summary>
    public const int MinIntervalMs = 10_000;

    private readonly Timer _timer;
    private long _answers;
    private long _openStreams;
    private long _collections;
    private long _lastCollectionMs = long.MinValue / 2;

    public MemoryGiveBack() => _timer = new Timer(static s => ((MemoryGiveBack)s!).Collect(), this, Timeout.Infinite, Timeout.Infinite);

    /// <summary>Collections run so far.</summary>
    public long Collections => Interlocked.Read(ref _collections);

    /// <summary>A Transact stream opened: no collection runs until it has ended (<see cref="StreamEnded"/>, once).</summary>
    public void StreamOpened() => Interlocked.Increment(ref _openStreams);

    /// <summary>A stream ended that carried <paramref name="answers"/> (written or dropped): (re)arms the collection if
    /// it was the last one open.</summary>
    public void StreamEnded(long answers)
    {
        long open = Interlocked.Decrement(ref _openStreams);
        System.Diagnostics.Debug.Assert(open >= 0, "a stream ends once, after it opened");
        long garbage = answers > 0 ? Interlocked.Add(ref _answers, answers) : Interlocked.Read(ref _answers);
        if (open > 0 || garbage < MinAnswers) return; // armed when the last open stream ends
        long sinceLastMs = Environment.TickCount64 - Interlocked.Read(ref _lastCollectionMs);
        _timer.Change(Math.Max(QuietMs, MinIntervalMs - sinceLastMs), Timeout.Infinite);
    }

    private void Collect()
    {
        if (Interlocked.Read(ref _openStreams) > 0) return; // the answers stay counted for the next stream's end
        if (Interlocked.Exchange(ref _answers, 0) < MinAnswers) return;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        Interlocked.Exchange(ref _lastCollectionMs, Environment.TickCount64);
        Interlocked.Increment(ref _collections);
    }
}
