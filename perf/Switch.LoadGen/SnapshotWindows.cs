namespace Switch.LoadGen;

/// <summary>
/// The stretches of a run while a snapshot was being taken: from the harness asking for it (the operator API's
/// TakeSnapshot) to its answer (the file published). A request whose intended send time falls in one counts as sent
/// during a snapshot, so the report can set the p99 of those against the rest of the same run on the same machine.
/// One writer (the snapshot taker, one at a time), many readers (the answers' threads); no lock, no allocation.
/// </summary>
public sealed class SnapshotWindows
{
    /// <summary>Windows kept at most: one every 100 ms for over a day-long run is beyond any use of it.</summary>
    public const int MaxWindows = 1 << 20;

    private readonly long[] _beginTicks;
    private readonly long[] _endTicks;
    private int _count;

    public SnapshotWindows(int capacity = 4096)
    {
        if (capacity is < 1 or > MaxWindows) throw new ArgumentOutOfRangeException(nameof(capacity), $"1 to {MaxWindows}");
        _beginTicks = new long[capacity];
        _endTicks = new long[capacity];
    }

    public int Count => Volatile.Read(ref _count);

    /// <summary>A snapshot asked for at <paramref name="ticks"/> (Stopwatch ticks); the previous one has ended.
    /// False when full (the rest of the run counts as outside).</summary>
    public bool Begin(long ticks)
    {
        int n = _count;
        if (n > 0 && Volatile.Read(ref _endTicks[n - 1]) == long.MaxValue) throw new InvalidOperationException("snapshot windows: one is still open");
        if (n > 0 && ticks < _endTicks[n - 1]) throw new ArgumentOutOfRangeException(nameof(ticks), "windows come in order");
        if (n == _beginTicks.Length) return false;
        _beginTicks[n] = ticks;
        _endTicks[n] = long.MaxValue; // open: a request intended after its begin is inside until it ends
        Volatile.Write(ref _count, n + 1);
        return true;
    }

    /// <summary>The open window's snapshot answered (or failed) at <paramref name="ticks"/>.</summary>
    public void End(long ticks)
    {
        int n = _count;
        if (n == 0 || _endTicks[n - 1] != long.MaxValue) throw new InvalidOperationException("snapshot windows: none is open");
        Volatile.Write(ref _endTicks[n - 1], Math.Max(ticks, _beginTicks[n - 1]));
    }

    /// <summary>Whether a request intended at <paramref name="intendedTicks"/> was sent while a snapshot was taken.
    /// Answers come soon after their send: the newest windows are looked at first.</summary>
    public bool Contains(long intendedTicks)
    {
        for (int i = Volatile.Read(ref _count) - 1; i >= 0; i--)
        {
            if (_beginTicks[i] > intendedTicks) continue;
            return intendedTicks <= Volatile.Read(ref _endTicks[i]);
        }
        return false;
    }

    /// <summary>The windows' total length in seconds (an open one up to <paramref name="nowTicks"/>).</summary>
    public double Seconds(long nowTicks)
    {
        long ticks = 0;
        for (int i = 0; i < Count; i++) ticks += Math.Min(Volatile.Read(ref _endTicks[i]), nowTicks) - _beginTicks[i];
        return (double)ticks / System.Diagnostics.Stopwatch.Frequency;
    }
}
