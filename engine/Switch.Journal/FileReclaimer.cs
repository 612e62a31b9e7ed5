using System.Diagnostics;

namespace Switch.Journal;

/// <summary>
/// Deletes large files (retired journal segments, old snapshots) in paced steps on a thread of its own. On ext4 mounted
/// with <c>discard</c> (usual on cloud disks) the extents a deletion frees are trimmed in the file system's journal
/// commit that records it, and every O_SYNC write made meanwhile waits for that commit: unlinking four 256 MiB segments
/// at once (a retirement at the design peak frees about that) took 250 to 300 ms and held a 4 KiB O_SYNC write, the
/// journal's commit, up to 45 to 65 ms; in 16 MiB steps 10 ms apart, at most 5 to 7 ms (the segment-delete probe in
/// perf/Switch.Benchmarks). Here a file is renamed aside at once (<see cref="Suffix"/>: no reader lists it, and a crash
/// leaves it for the next start's <see cref="ReclaimLeftovers"/>), then cut from its end <see cref="StepBytes"/> at a
/// time with <see cref="PauseMs"/> between, so each commit trims a little, and unlinked once empty.
/// <para>One per process (<see cref="Shared"/>): the pacing is for the disk, and two reclaimers would each pace alone.
/// The queue is bounded (<see cref="MaxQueued"/>); past it, a file is deleted at once, as before.</para>
/// </summary>
public sealed class FileReclaimer : IDisposable
{
    /// <summary>What a file set aside is called: its name with this after it.</summary>
    public const string Suffix = ".reclaim";
    /// <summary>Bytes freed a step: each step's trim a few milliseconds of one commit (32 MiB: up to 15 ms; 16 MiB: up to
    /// 7). A gibibyte is freed in about a second, seven times the journal's rate at the design peak.</summary>
    public const long StepBytes = 16L << 20;
    /// <summary>Between steps: the journal commits several times in it, each with only one step's trim.</summary>
    public const int PauseMs = 10;
    /// <summary>Files waiting: far more than a retirement frees (a segment per 256 MiB of journal) and a snapshot deletes.</summary>
    public const int MaxQueued = 4096;

    /// <summary>The process's reclaimer.</summary>
    public static FileReclaimer Shared { get; } = new("switch-reclaim");

    private readonly int _maxQueued;
    private readonly object _gate = new();
    // Under _gate.
    private readonly Queue<string> _queue = new();
    /// <summary>The files queued or in hand: a directory scanned for leftovers again (each snapshot's retention scans its
    /// own) finds the files this run set aside, and each is taken once.</summary>
    private readonly HashSet<string> _taken = new(StringComparer.Ordinal);
    private readonly Thread _thread;
    private bool _working;
    private bool _stopping; // also read between a file's steps, without the lock
    private long _deletedAtOnce;
    // Written by the reclaiming thread.
    private long _reclaimed;
    private long _reclaimedBytes;
    private long _failures;
    private string? _lastFailure;

    /// <param name="threadName">The reclaiming thread's name (at most 15 characters show on Linux).</param>
    /// <param name="maxQueued">1 to <see cref="MaxQueued"/>.</param>
    public FileReclaimer(string threadName, int maxQueued = MaxQueued)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadName);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxQueued, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxQueued, MaxQueued);
        _maxQueued = maxQueued;
        // Started here, not at the first file: a Linux thread takes its creator's nice, and the first file comes from the
        // snapshot writer, which lowers its own (writerNice). Shared is made when the journal's device opens, at start.
        _thread = new Thread(Run) { Name = threadName, IsBackground = true };
        _thread.Start();
    }

    /// <summary>Files waiting, not counting the one in hand.</summary>
    public int Queued { get { lock (_gate) return _queue.Count; } }

    /// <summary>Files set aside and not yet unlinked: those waiting and the one in hand.</summary>
    public int Outstanding { get { lock (_gate) return _queue.Count + (_working ? 1 : 0); } }

    /// <summary>Files unlinked after their steps.</summary>
    public long Reclaimed => Interlocked.Read(ref _reclaimed);
    /// <summary>Their bytes, as they were set aside.</summary>
    public long ReclaimedBytes => Interlocked.Read(ref _reclaimedBytes);
    /// <summary>Files deleted at once: the queue was full, or the reclaimer stopping.</summary>
    public long DeletedAtOnce { get { lock (_gate) return _deletedAtOnce; } }
    /// <summary>Files a step or the unlink failed on (left as they were, under their aside name).</summary>
    public long Failures => Interlocked.Read(ref _failures);
    public string? LastFailure => Volatile.Read(ref _lastFailure);

    /// <summary>
    /// Takes <paramref name="path"/> away now (renamed aside, so it is gone from its name when this returns) and frees its
    /// blocks in steps. False: there was no such file.
    /// </summary>
    public bool Delete(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Debug.Assert(!path.EndsWith(Suffix, StringComparison.Ordinal), "a file is set aside once");
        string aside = path + Suffix;
        try
        {
            File.Move(path, aside, overwrite: true);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return false;
        }
        Enqueue(aside);
        return true; // a file of that aside name still queued (a name used again) is this one now: freed with it
    }

    /// <summary>Queues what an earlier run set aside and did not finish (<paramref name="pattern"/>: the names it set
    /// aside, without <see cref="Suffix"/>); returns how many were not queued or in hand already.</summary>
    public int ReclaimLeftovers(string directory, string pattern)
    {
        if (!Directory.Exists(directory)) return 0;
        int found = 0;
        foreach (string aside in Directory.EnumerateFiles(directory, pattern + Suffix))
        {
            if (Enqueue(aside)) found++;
        }
        return found;
    }

    /// <summary>Waits until nothing is queued or in hand (tests, an orderly stop). False: <paramref name="timeout"/> passed first.</summary>
    public bool WaitIdle(TimeSpan timeout)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        lock (_gate)
        {
            while (_queue.Count > 0 || _working)
            {
                long leftMs = deadline - Environment.TickCount64;
                if (leftMs <= 0) return false;
                Monitor.Wait(_gate, (int)Math.Min(leftMs, int.MaxValue));
            }
            return true;
        }
    }

    /// <summary>Stops the thread within a step; the file in hand and those queued stay aside for the next start.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.PulseAll(_gate);
        }
        _thread.Join();
    }

    /// <summary>False: already queued or in hand.</summary>
    private bool Enqueue(string aside)
    {
        lock (_gate)
        {
            if (_taken.Contains(aside)) return false;
            if (!_stopping && _queue.Count < _maxQueued)
            {
                _taken.Add(aside);
                _queue.Enqueue(aside);
                Debug.Assert(_taken.Count == _queue.Count + (_working ? 1 : 0), "each file taken is queued or in hand, once");
                Monitor.PulseAll(_gate);
                return true;
            }
            _deletedAtOnce++;
        }
        Unlink(aside);
        return true;
    }

    private void Run()
    {
        string? aside = null;
        while (true)
        {
            lock (_gate)
            {
                if (aside is not null) _taken.Remove(aside);
                _working = false;
                Monitor.PulseAll(_gate); // a WaitIdle may be waiting for the file just done
                while (_queue.Count == 0 && !_stopping) Monitor.Wait(_gate);
                if (_stopping) return;
                aside = _queue.Dequeue();
                _working = true;
            }
            Reclaim(aside);
        }
    }

    private void Reclaim(string aside)
    {
        long bytes = 0;
        try
        {
            using (var file = File.OpenHandle(aside, FileMode.Open, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete))
            {
                bytes = RandomAccess.GetLength(file);
                for (long length = bytes; length > 0;)
                {
                    if (Volatile.Read(ref _stopping)) return; // left aside, the rest of its blocks with it
                    length = Math.Max(0, length - StepBytes);
                    RandomAccess.SetLength(file, length);
                    if (length > 0) Thread.Sleep(PauseMs);
                }
            }
            File.Delete(aside);
            Interlocked.Increment(ref _reclaimed);
            Interlocked.Add(ref _reclaimedBytes, bytes);
        }
        catch (FileNotFoundException)
        {
            // Deleted by another hand (a test's cleanup, an operator): nothing left to free.
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Failed(aside, e);
        }
    }

    private void Unlink(string aside)
    {
        try
        {
            File.Delete(aside);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Failed(aside, e);
        }
    }

    private void Failed(string aside, Exception e)
    {
        Interlocked.Increment(ref _failures);
        Volatile.Write(ref _lastFailure, $"{aside}: {e.Message}");
    }
}
