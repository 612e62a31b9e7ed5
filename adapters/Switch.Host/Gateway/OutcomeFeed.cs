using System.Globalization;
using Microsoft.Win32.SafeHandles;
using Switch.Journal;

namespace Switch.Host.Gateway;

/// <summary>
/// One institution's final outcomes in feed order (1, 2, 3...), on disk: append-only segment files of
/// <c>segmentRecords</c> fixed-size records (<see cref="FeedRecord"/>), named by their first feed number, so a feed
/// number's file and offset are arithmetic. Nothing per outcome stays in memory; readers stream from the files (the
/// operating system's page cache serves the live tail). A whole segment is deleted once its newest outcome is older
/// than the retention (event time: the newest outcome's final time), so every outcome of the retention is kept.
/// <para>
/// It is derived from the journal, written by one thread (the replay at start, then the output thread), and kept
/// across restarts: at open the files' tail is checked (a torn or unchecked record is cut), the replay skips what the
/// files hold, checks that the last kept record is the one the journal makes, and appends the rest. No fsync: what
/// a crash loses is rewritten by the next start's replay. The segment's dirty pages are written back as it grows
/// (<see cref="WriteBehind"/>), not left for the kernel's burst.
/// </para>
/// </summary>
public sealed class OutcomeFeed : IDisposable
{
    private const string Extension = ".feed";
    /// <summary>Records checked at open at the end of the files (768 KiB): more than the writer buffers between writes.</summary>
    private const int TailCheckRecords = 4096;
    /// <summary>The segment's buffer: the file holds in the kernel all but at most this much of what was appended.</summary>
    private const int SegmentBufferBytes = 1 << 16;

    private readonly string _directory;
    private readonly int _segmentRecords;
    private readonly long _retentionUs;
    private readonly WriteBehind _writeBehind;
    private readonly byte[] _record = new byte[FeedRecord.Bytes];
    private readonly object _gate = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _changedObserved;
    private long _maxLag;

    // The writer's state (one thread).
    private FileStream? _segment;
    private SafeFileHandle? _segmentHandle;
    /// <summary>The segment's bytes whose writeback was started (<see cref="WriteBehind"/>).</summary>
    private long _segmentStartedBytes;
    private long _segmentFirst;
    private long _appended;
    private long _newestFinalUs;
    /// <summary>The last feed number the files held at open: the replay skips up to it.</summary>
    private long _keptAtOpen;
    private byte[]? _keptLastRecord;
    /// <summary>The last outcome the journal's replay produced (the feed's true end once the replay is over).</summary>
    private ResultFields _lastReplayed;
    /// <summary>Segments closed since the last snapshot mark, not yet made durable (the mark's views fsync them).</summary>
    private readonly List<string> _unsynced = new();
    /// <summary>Past this many closed segments between marks, the oldest is fsynced at once (a bound without snapshots).</summary>
    private const int MaxUnsyncedSegments = 16;

    // Shared with readers.
    private long _readable;
    private long _oldest;

    /// <param name="writeBehind">Starts the writeback of what was appended; null: none (<see cref="WriteBehind.Off"/>).</param>
    public OutcomeFeed(string directory, int segmentRecords, long retentionUs, WriteBehind? writeBehind = null)
    {
        if (segmentRecords < 16) throw new ArgumentOutOfRangeException(nameof(segmentRecords), "at least 16");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(retentionUs);
        _directory = directory;
        _segmentRecords = segmentRecords;
        _retentionUs = retentionUs;
        _writeBehind = writeBehind ?? WriteBehind.Off;
        Directory.CreateDirectory(directory);
        OpenFiles();
        FoundAtOpen = _keptAtOpen;
    }

    /// <summary>The last feed number readers can read (written to the file).</summary>
    public long LastFeedNo => Volatile.Read(ref _readable);

    /// <summary>The oldest feed number still kept (1 until a segment has been deleted).</summary>
    public long OldestFeedNo => Volatile.Read(ref _oldest);

    public int SegmentRecords => _segmentRecords;

    /// <summary>In its owner's list of feeds to flush at the end of the output batch (writer thread).</summary>
    internal bool Dirty;

    /// <summary>How long outcomes are kept, in days (for messages).</summary>
    public double RetentionDays => _retentionUs / 86_400_000_000.0;

    /// <summary>The last feed number found intact on disk at open, before the replay caught the files up.</summary>
    public long FoundAtOpen { get; }

    /// <summary>The most outcomes a subscriber still had to read when it read, since the last call (metrics).</summary>
    public long TakeMaxLag() => Interlocked.Exchange(ref _maxLag, 0);

    /// <summary>A subscriber at <paramref name="fromFeedNo"/> reads: remember the largest lag seen (any thread).</summary>
    internal void ObserveLag(long fromFeedNo)
    {
        long lag = LastFeedNo - fromFeedNo + 1;
        long seen = Volatile.Read(ref _maxLag);
        while (lag > seen)
        {
            long was = Interlocked.CompareExchange(ref _maxLag, lag, seen);
            if (was == seen) return;
            seen = was;
        }
    }

    /// <summary>Appends the next outcome (writer thread). During the replay, outcomes the files already hold are skipped.</summary>
    public void Append(in ResultFields outcome)
    {
        if (outcome.FeedNo <= _keptAtOpen)
        {
            if (outcome.FeedNo == _keptAtOpen) CheckKept(outcome);
            _lastReplayed = outcome;
            return;
        }
        if (outcome.FeedNo != _appended + 1)
        {
            throw new InvalidOperationException($"outcome feed {_directory}: feed number {outcome.FeedNo} after {_appended}");
        }
        if (_segment is null || outcome.FeedNo >= _segmentFirst + _segmentRecords)
        {
            StartSegment(outcome.FeedNo, outcome.FinalUs);
        }
        FeedRecord.Write(outcome, _record);
        _segment!.Write(_record);
        // Between flushes too: the replay at start appends a whole journal's outcomes with no flush until its end.
        _writeBehind.Appended(_segmentHandle!, ref _segmentStartedBytes, _segment.Position - SegmentBufferBytes);
        _appended = outcome.FeedNo;
        _newestFinalUs = Math.Max(_newestFinalUs, outcome.FinalUs);
        _lastReplayed = outcome;
    }

    /// <summary>Hands what was appended to the operating system and wakes followers (writer thread, per output batch).</summary>
    public void Flush()
    {
        if (_appended <= Volatile.Read(ref _readable)) return;
        if (_segment is not null)
        {
            _segment.Flush();
            _writeBehind.Appended(_segmentHandle!, ref _segmentStartedBytes, _segment.Position);
        }
        TaskCompletionSource? wake = null;
        lock (_gate)
        {
            Volatile.Write(ref _readable, _appended);
            if (_changedObserved)
            {
                // Only swap the pulse when someone waits on it: no allocation per batch otherwise.
                wake = _changed;
                _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _changedObserved = false;
            }
        }
        wake?.TrySetResult();
    }

    /// <summary>
    /// After the replay: the journal's outcomes end at <c>_lastReplayed</c>. Files that run past it (a journal cut
    /// short, or replaced) are cut back to it when the record there agrees, else refused.
    /// </summary>
    internal void EndReplay()
    {
        long journalLast = _lastReplayed.FeedNo;
        if (journalLast < _keptAtOpen)
        {
            _segment?.Dispose();
            _segment = null;
            if (journalLast == 0)
            {
                // Outcomes on disk come from a journal's transactions: with them and an empty journal, the journal was
                // lost, and starting a new one would hand out transaction ids (and feed numbers) again from 1.
                throw new InvalidDataException(
                    $"outcome feed: {_directory} holds outcomes up to feed number {_keptAtOpen} but the journal has none: the journal was lost " +
                    "(a power cut on storage that did not keep it?); restore it, the switch will not start a new journal here");
            }
            else
            {
                // Numbers are offsets: the files can only be cut back to a feed number they still hold.
                if (journalLast < _oldest) throw Disagrees(journalLast);
                byte[] expected = new byte[FeedRecord.Bytes];
                FeedRecord.Write(_lastReplayed, expected);
                long first = SegmentFirst(journalLast);
                using (SafeFileHandle h = File.OpenHandle(SegmentPath(first), FileMode.Open, FileAccess.ReadWrite))
                {
                    long offset = (journalLast - first) * FeedRecord.Bytes;
                    byte[] found = new byte[FeedRecord.Bytes];
                    RandomAccess.Read(h, found, offset);
                    if (!found.AsSpan().SequenceEqual(expected)) throw Disagrees(journalLast);
                    RandomAccess.SetLength(h, offset + FeedRecord.Bytes);
                }
                foreach ((long later, string path) in Segments()) if (later > first) File.Delete(path);
            }
            _keptAtOpen = 0;
            OpenFiles();
        }
        _keptAtOpen = 0; // from now on every append is new
        Flush();
    }

    /// <summary>
    /// At a snapshot's mark (writer thread, flushed): the last outcome appended, whose feed number and bytes the
    /// snapshot keeps, and the files a crash must not lose once the snapshot is published (fsynced off this thread).
    /// </summary>
    internal ResultFields MarkAt(List<string> toSync)
    {
        toSync.AddRange(_unsynced);
        _unsynced.Clear();
        if (_segment is not null) toSync.Add(SegmentPath(_segmentFirst));
        toSync.Add(_directory); // new segment files' entries
        return _lastReplayed;
    }

    /// <summary>
    /// At a start from a snapshot (before the replay after it): the feed ended at <paramref name="record"/> then. The
    /// files must hold it (they were fsynced before the snapshot was published); the replay then goes on from there as
    /// it would after a whole replay up to it, so files are neither cut nor doubled.
    /// </summary>
    internal void RestoreMark(ReadOnlySpan<byte> record)
    {
        long feedNo = FeedRecord.FeedNoOf(record);
        if (record.Length != FeedRecord.Bytes || !FeedRecord.IsIntact(record) || feedNo < 1)
            throw new InvalidDataException($"outcome feed {_directory}: the snapshot's last outcome is not a whole feed record");
        if (feedNo > _keptAtOpen)
        {
            throw new InvalidDataException(
                $"outcome feed: {_directory} holds outcomes up to feed number {_keptAtOpen}, the snapshot's views up to {feedNo}: the files lost " +
                "outcomes that only the journal before the snapshot holds (an older snapshot or the whole journal rebuilds them)");
        }
        if (feedNo >= _oldest)
        {
            byte[] found = new byte[FeedRecord.Bytes];
            using (SafeFileHandle h = File.OpenHandle(SegmentPath(SegmentFirst(feedNo)), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
            {
                RandomAccess.Read(h, found, (feedNo - SegmentFirst(feedNo)) * FeedRecord.Bytes);
            }
            if (!found.AsSpan().SequenceEqual(record)) throw Disagrees(feedNo);
        }
        _lastReplayed = FeedRecord.Read(record);
    }

    /// <summary>A snapshot's restore was undone: the replay starts earlier.</summary>
    internal void ForgetMark() => _lastReplayed = default;

    /// <summary>Reads from <paramref name="fromFeedNo"/> on; one cursor per subscriber.</summary>
    public FeedCursor OpenCursor(long fromFeedNo, int maxRecords) => new(this, fromFeedNo, maxRecords);

    /// <summary>Completes when something is appended after this call.</summary>
    internal Task Changed()
    {
        lock (_gate)
        {
            _changedObserved = true;
            return _changed.Task;
        }
    }

    internal long SegmentFirst(long feedNo) => (feedNo - 1) / _segmentRecords * _segmentRecords + 1;

    internal string SegmentPath(long first) => Path.Combine(_directory, first.ToString("D19", CultureInfo.InvariantCulture) + Extension);

    public void Dispose()
    {
        Flush();
        _segment?.Dispose();
        _segment = null;
    }

    private void CheckKept(in ResultFields outcome)
    {
        FeedRecord.Write(outcome, _record);
        if (_keptLastRecord is not null && !_record.AsSpan().SequenceEqual(_keptLastRecord)) throw Disagrees(outcome.FeedNo);
    }

    private InvalidDataException Disagrees(long feedNo) => new(
        $"outcome feed: the files in {_directory} disagree with the journal at feed number {feedNo} (they belong to another journal): " +
        "delete that directory and start again, it is rebuilt from the journal");

    private void StartSegment(long first, long finalUs)
    {
        if (_segment is not null)
        {
            _segment.Flush();
            _writeBehind.Closing(_segmentHandle!, ref _segmentStartedBytes, _segment.Position);
            _segment.Dispose();
            _unsynced.Add(SegmentPath(_segmentFirst));
            if (_unsynced.Count > MaxUnsyncedSegments)
            {
                SnapshotViews.Fsync(_unsynced[0]);
                _unsynced.RemoveAt(0);
            }
        }
        UseSegment(new FileStream(SegmentPath(first), FileMode.Create, FileAccess.Write, FileShare.Read | FileShare.Delete, SegmentBufferBytes));
        _segmentFirst = first;
        if (first != SegmentFirst(first)) throw new InvalidOperationException($"outcome feed: a segment starting at {first}");
        Prune(Math.Max(_newestFinalUs, finalUs));
    }

    /// <summary>Deletes whole segments before the current one whose newest outcome is past the retention.</summary>
    private void Prune(long newestFinalUs)
    {
        Span<byte> last = stackalloc byte[FeedRecord.Bytes];
        while (_oldest < _segmentFirst)
        {
            string path = SegmentPath(_oldest);
            using (SafeFileHandle h = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
            {
                RandomAccess.Read(h, last, (long)(_segmentRecords - 1) * FeedRecord.Bytes);
            }
            if (FeedRecord.FinalUsOf(last) >= newestFinalUs - _retentionUs) return;
            // Readers learn the new oldest before the file goes; one already reading it keeps its open handle.
            Volatile.Write(ref _oldest, _oldest + _segmentRecords);
            File.Delete(path);
        }
    }

    private List<(long First, string Path)> Segments()
    {
        var found = new List<(long, string)>();
        foreach (string path in Directory.EnumerateFiles(_directory, "*" + Extension))
        {
            string name = Path.GetFileNameWithoutExtension(path);
            if (name.Length == 19 && long.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out long first) && first >= 1) found.Add((first, path));
            else File.Delete(path); // not a name this feed writes
        }
        found.Sort();
        return found;
    }

    private void DeleteAll()
    {
        _segment?.Dispose();
        _segment = null;
        foreach ((_, string path) in Segments()) File.Delete(path);
    }

    /// <summary>
    /// Finds what the files hold: whole segments back to back from a segment boundary, the last one cut after its
    /// last intact record. Files that do not fit this layout (another segment size, a gap) are deleted and rebuilt.
    /// </summary>
    private void OpenFiles()
    {
        List<(long First, string Path)> segments = Segments();
        long segmentBytes = (long)_segmentRecords * FeedRecord.Bytes;
        bool fits = segments.Count == 0 || (segments[0].First - 1) % _segmentRecords == 0;
        for (int i = 0; fits && i < segments.Count; i++)
        {
            long length = new FileInfo(segments[i].Path).Length;
            fits = length <= segmentBytes && (i == 0 || segments[i].First == segments[i - 1].First + _segmentRecords)
                && (i == segments.Count - 1 || length == segmentBytes);
        }
        if (!fits)
        {
            foreach ((_, string path) in segments) File.Delete(path);
            segments.Clear();
        }
        // Cut the tail at its first damaged record: after a machine crash any of the last pages written may hold
        // zeros or garbage, not only the last one, so the newest TailCheckRecords are checked, oldest first.
        byte[] tail = new byte[TailCheckRecords * FeedRecord.Bytes];
        while (segments.Count > 0)
        {
            (long first, string path) = segments[^1];
            using SafeFileHandle h = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
            long count = RandomAccess.GetLength(h) / FeedRecord.Bytes;
            long from = Math.Max(0, count - TailCheckRecords);
            int read = RandomAccess.Read(h, tail.AsSpan(0, (int)(count - from) * FeedRecord.Bytes), from * FeedRecord.Bytes);
            for (long i = from; i < count; i++)
            {
                ReadOnlySpan<byte> r = tail.AsSpan((int)(i - from) * FeedRecord.Bytes, FeedRecord.Bytes);
                if ((i - from + 1) * FeedRecord.Bytes > read || !FeedRecord.IsIntact(r) || FeedRecord.FeedNoOf(r) != first + i)
                {
                    count = i;
                    break;
                }
            }
            RandomAccess.SetLength(h, count * FeedRecord.Bytes);
            if (count > 0)
            {
                ReadOnlySpan<byte> last = tail.AsSpan((int)(count - 1 - from) * FeedRecord.Bytes, FeedRecord.Bytes);
                _keptAtOpen = first + count - 1;
                _keptLastRecord = last.ToArray();
                _newestFinalUs = FeedRecord.FinalUsOf(last);
                break;
            }
            h.Dispose();
            File.Delete(path);
            segments.RemoveAt(segments.Count - 1);
        }
        if (segments.Count == 0)
        {
            _keptAtOpen = 0;
            _keptLastRecord = null;
            _newestFinalUs = 0;
        }
        _appended = _keptAtOpen;
        _oldest = segments.Count == 0 ? 1 : segments[0].First;
        Volatile.Write(ref _readable, _keptAtOpen);
        if (segments.Count > 0 && _keptAtOpen < segments[^1].First + _segmentRecords - 1)
        {
            // Continue the last segment where it ends.
            _segmentFirst = segments[^1].First;
            var segment = new FileStream(segments[^1].Path, FileMode.Open, FileAccess.Write, FileShare.Read | FileShare.Delete, SegmentBufferBytes);
            segment.Seek(0, SeekOrigin.End);
            UseSegment(segment);
        }
    }

    /// <summary>Appends go to <paramref name="segment"/> from its end on; its writeback is started from the page that holds its end.</summary>
    private void UseSegment(FileStream segment)
    {
        _segment = segment;
        _segmentHandle = segment.SafeFileHandle; // once, while nothing is buffered: the getter flushes
        _segmentStartedBytes = segment.Position & ~(DirectFile.AlignBytes - 1L);
    }
}
