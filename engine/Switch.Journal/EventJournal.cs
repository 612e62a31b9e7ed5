using System.Diagnostics;
using FASTER.core;

namespace Switch.Journal;

/// <summary>
/// The durable, ordered log of the engine's input events: opaque byte records on a FasterLog, each framed with a
/// format version, its length, its sequence number and a CRC-32C (see <see cref="RecordFrame"/>).
/// <para>
/// Use: <see cref="Open"/>, then <see cref="Replay"/> exactly once, then <see cref="Append"/> every event of a batch
/// and <see cref="Commit"/> once per batch (group commit). Only what Commit has returned for is durable; a crash may
/// lose later appends, which were never acknowledged. Append and Commit belong to one thread (the journaler);
/// the counters may be read from any thread.
/// </para>
/// <para>
/// Recovery: a record that fails verification with no valid record after it is a torn tail: Replay cuts it off
/// (<see cref="TornTailCut"/>, skip range kept in the manifest, see <see cref="JournalManifest"/>) and appends resume
/// cleanly. A bad record followed by a valid one is corruption: <see cref="JournalCorruptException"/>.
/// </para>
/// </summary>
public sealed class EventJournal : IDisposable
{
    /// <summary>The thread that makes the journal's device writes (at most 15 characters show on Linux).</summary>
    public const string JournalWriteThreadName = "switch-jrnl-io";
    private readonly JournalOptions _options;
    private readonly JournalLayout _layout;
    private readonly JournalManifest _manifest;
    private readonly FileStream _lock;
    private readonly IDevice _device;
    private readonly SlotCommitManager _commits;
    private readonly FasterLog _log;
    // One frame, reused: Append copies header and payload here and FasterLog copies it into its page, no allocation.
    private readonly byte[] _frame;
    /// <summary>The writer's wait for each commit: blocks without spinning (see the type).</summary>
    private readonly BlockingWait _commitWait = new();

    private bool _replayStarted;
    private bool _replayed;
    private long _recordCount;
    private long _durableRecordCount;
    private bool _appendedSinceReplay;
    /// <summary>Completed by the next Commit; made only by a reader that waits (<see cref="WaitForDurableAsync"/>).</summary>
    private TaskCompletionSource? _commitWaiter;
    private bool _disposed;
    /// <summary>Guards the count of <see cref="ScanCommitted"/> calls under way against Dispose.</summary>
    private readonly object _scanGate = new();
    private int _scans;
    private readonly CancellationTokenSource _closing = new();
    /// <summary>How long Dispose waits for scans to stop (each checks between records).</summary>
    private const int ScanStopWaitMs = 10_000;

    private EventJournal(JournalOptions options, JournalLayout layout, JournalManifest manifest, FileStream lockFile,
        IDevice device, SlotCommitManager commits, FasterLog log)
    {
        _commits = commits;
        _options = options;
        _layout = layout;
        _manifest = manifest;
        _lock = lockFile;
        _device = device;
        _log = log;
        _frame = new byte[RecordFrame.HeaderBytes + options.MaxRecordBytes];
    }

    /// <summary>Creates the journal in <see cref="JournalOptions.DirectoryPath"/>, or recovers the one there.</summary>
    public static EventJournal Open(JournalOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var layout = new JournalLayout(options);
        // A journal that existed has its manifest (the manifest is written last when a journal is made): from here on
        // it must be whole, and a missing piece is a loss to report, never a reason to start a fresh journal.
        bool existed = File.Exists(layout.ManifestPath);
        DirectorySync.CreateDirectory(layout.DirectoryPath);
        DirectorySync.CreateDirectory(Path.GetDirectoryName(layout.LogBasePath)!);

        // One writer: a second process (or a second Open here) would interleave appends and destroy the log.
        var lockFile = new FileStream(layout.LockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        IDevice? device = null;
        SlotCommitManager? commits = null;
        try
        {
            // A journal of an earlier build keeps its commits as one file each: opened with the slot file its log
            // would look empty. Refuse it rather than lose it.
            if (Directory.Exists(layout.LegacyCommitDirectory) && Directory.EnumerateFileSystemEntries(layout.LegacyCommitDirectory).Any())
                throw new JournalCorruptException(-1, JournalCorruptionReason.UnsupportedFormatVersion,
                    $"journal written by an earlier build (commit files in {layout.LegacyCommitDirectory}); this build keeps commits in {layout.CommitSlotsPath}");
            if (existed && !File.Exists(layout.CommitSlotsPath))
                throw new JournalCorruptException(-1, JournalCorruptionReason.Missing,
                    $"{layout.ManifestPath} exists but the commit file {layout.CommitSlotsPath} does not: the journal was lost (a power cut on storage that did not keep it?); restore it, the switch will not start a new one here");
            DirectorySync.CreateDirectory(layout.CommitDirectory);
            commits = SlotCommitManager.Open(layout, options.CommitSlotEveryBytes);
            if (!existed && commits.ListCommits().Any())
                throw new JournalCorruptException(-1, JournalCorruptionReason.Missing,
                    $"the commit file {layout.CommitSlotsPath} holds commits but the manifest {layout.ManifestPath} is missing: restore it, the switch will not start over this journal");
            var manifest = existed ? JournalManifest.Read(layout) : JournalManifest.Create(layout);
            if (manifest.SegmentBytes != 0 && manifest.SegmentBytes != layout.SegmentSizeBytes)
                throw new JournalCorruptException(-1, JournalCorruptionReason.ManifestInconsistent,
                    $"the journal was made with segments of {manifest.SegmentBytes} bytes, opened with {layout.SegmentSizeBytes}: open it with its own");
            // Listed before FasterLog opens: its recovery makes an empty file for a segment it expects and does not find.
            var segmentsFound = Directory.EnumerateFiles(Path.GetDirectoryName(layout.LogBasePath)!).ToHashSet();
            // O_DIRECT and O_SYNC: durable when written, as FASTER's own device was, without the page cache's copy. On a
            // thread of its own: on the pool a commit's write waited behind socket work for a pool thread, 200 to 340 ms
            // at the design peak (stall records with the write outstanding and not in its system call, on tmpfs).
            device = new DirectLogDevice(layout.LogBasePath, recover: true, writeThread: JournalWriteThreadName);
            var log = new FasterLog(new FasterLogSettings
            {
                LogDevice = device,
                LogCommitManager = commits,
                PageSize = options.PageSizeBytes,
                MemorySize = options.MemorySizeBytes,
                SegmentSize = options.SegmentSizeBytes,
                // Our own CRC-32C covers each record; FasterLog's per-entry checksum would be a second, slower one.
                LogChecksum = LogChecksumType.None,
                TryRecoverLatest = true,
                AutoCommit = false,
            });
            RequireCommittedSegments(layout, log, segmentsFound);
            var journal = new EventJournal(options, layout, manifest, lockFile, device, commits, log);
            try
            {
                journal.AdoptDurableTail();
            }
            catch
            {
                log.Dispose();
                throw;
            }
            return journal;
        }
        catch
        {
            device?.Dispose();
            commits?.Dispose();
            lockFile.Dispose();
            throw;
        }
    }

    /// <summary>
    /// At Open: the records of the commits after the newest commit slot (see <see cref="JournalOptions.CommitSlotEveryBytes"/>)
    /// are on disk after FasterLog's recovered tail. Reads on from it while each record is whole and numbered next
    /// (the first that is not ends it: a write a crash tore, or the end), appends them again at the same addresses (the
    /// same bytes: FasterLog lays records out deterministically) and commits them with a slot. Then cuts off whatever
    /// lies after the tail (stale bytes of a write never committed): a later crash must never find an old record where
    /// a new one of the same size and number would have followed.
    /// </summary>
    private void AdoptDurableTail()
    {
        long tail = _log.CommittedUntilAddress;
        long records = _commits.RecoveredRecords;
        // A cut resuming at the slot's address renumbers what follows it (the slot may say the count before the cut).
        foreach (var cut in _manifest.Cuts)
        {
            if (cut.ResumeAddress == tail && records >= 0) records = cut.RecordsBefore;
        }
        (long Address, JournalCorruptionReason Reason, string Detail)? torn = null;
        if (records >= 0)
        {
            List<(long Address, byte[] Frame)> found = ReadDurableTail(tail, records, out torn);
            foreach (var (address, frame) in found)
            {
                long at = _log.Enqueue(frame);
                if (at != address)
                    throw new InvalidOperationException($"journal: a record found at address {address} was appended again at {at}");
            }
            if (found.Count > 0)
            {
                _commits.RecordsCommitting = records + found.Count;
                _commits.WriteNextCommit();
                _commitWait.Wait(_log.CommitAsync());
                AdoptedRecords = found.Count;
            }
            records += found.Count;
        }
        long cutBytes = CutOffAfter(_log.TailAddress);
        // A record begun and not whole (a write a crash tore): said as Replay says a torn tail, though nothing of it is
        // kept to skip (ResumeAddress = Address: appends go on there).
        if (torn is { } t)
            TornTailCut = new JournalTailCut(t.Address, t.Address, Math.Max(cutBytes, 1), records, t.Reason, t.Detail);
    }

    /// <summary>Records adopted by this Open from after the newest commit slot (see <see cref="AdoptDurableTail"/>).</summary>
    public long AdoptedRecords { get; private set; }

    /// <summary>The whole records numbered <paramref name="recordNo"/> on found from <paramref name="address"/> on in the
    /// segment files (<see cref="SegmentReader"/>), up to the first that is not: where nothing was written, the end; else
    /// a torn write, said in <paramref name="torn"/>.</summary>
    private List<(long Address, byte[] Frame)> ReadDurableTail(long address, long recordNo,
        out (long Address, JournalCorruptionReason Reason, string Detail)? torn)
    {
        var found = new List<(long, byte[])>();
        torn = null;
        using var reader = new SegmentReader(_layout, _options.PageSizeBytes, _options.MaxRecordBytes);
        reader.Seek(address, long.MaxValue);
        while (true)
        {
            SegmentRead read = reader.Next(out long at, out ReadOnlySpan<byte> frame);
            if (read == SegmentRead.Exhausted) break;
            Debug.Assert(read != SegmentRead.End, "read with no end");
            if (read == SegmentRead.Broken)
            {
                torn = (at, reader.FailureReason, reader.FailureDetail);
                break;
            }
            var reason = RecordFrame.Verify(frame, recordNo, out string detail);
            if (reason != JournalCorruptionReason.None)
            {
                torn = (at, reason, detail);
                break;
            }
            found.Add((at, frame.ToArray()));
            recordNo++;
        }
        return found;
    }

    /// <summary>Truncates the segment file holding <paramref name="tail"/> there and empties the segment files after it,
    /// durably (the same files: FasterLog's handles stay good); returns the bytes cut. Nothing after the tail was ever
    /// committed.</summary>
    private long CutOffAfter(long tail)
    {
        var (tailPath, tailOffset) = _layout.Locate(tail);
        long tailSegment = tail / _layout.SegmentSizeBytes;
        string directory = Path.GetDirectoryName(_layout.LogBasePath)!;
        string prefix = Path.GetFileName(_layout.LogBasePath) + ".";
        long cut = 0;
        foreach (string path in Directory.EnumerateFiles(directory, prefix + "*"))
        {
            if (!long.TryParse(Path.GetFileName(path)[prefix.Length..], out long segment) || segment < tailSegment) continue;
            long keep = segment == tailSegment ? tailOffset : 0;
            Debug.Assert(segment != tailSegment || path == tailPath, "the tail's segment file");
            using var file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
            long length = RandomAccess.GetLength(file);
            if (length <= keep) continue;
            RandomAccess.SetLength(file, keep);
            RandomAccess.FlushToDisk(file);
            cut += length - keep;
        }
        return cut;
    }

    public JournalOptions Options => _options;

    /// <summary>
    /// Every segment file the recovered commit covers must exist. A missing one is a loss (a directory entry a power cut
    /// took): refused here, before Replay could mistake it for a torn tail and cut the whole journal away.
    /// </summary>
    private static void RequireCommittedSegments(JournalLayout layout, FasterLog log, HashSet<string> segmentsFound)
    {
        long begin = log.BeginAddress, committed = log.CommittedUntilAddress;
        if (committed <= begin) return;
        long segment = layout.SegmentSizeBytes;
        for (long start = begin & ~(segment - 1); start < committed; start += segment)
        {
            var (path, _) = layout.Locate(start);
            // A short file is left to Replay: a torn tail (the end of a write lost) is cut there.
            if (!segmentsFound.Contains(path))
                throw new JournalCorruptException(-1, JournalCorruptionReason.Missing,
                    $"segment file {path} is missing, the last commit covers addresses up to {committed}: the journal was lost (a power cut on storage that did not keep it?); restore it");
        }
    }

    /// <summary>Records replayed plus records appended since.</summary>
    public long RecordCount => Volatile.Read(ref _recordCount);

    /// <summary>Records known durable: replayed ones, and appended ones once a Commit covering them has returned.</summary>
    public long DurableRecordCount => Volatile.Read(ref _durableRecordCount);

    /// <summary>The log device's writes outstanding (null on a device other than <see cref="DirectLogDevice"/>).</summary>
    public DeviceActivity? DeviceWrites => (_device as DirectLogDevice)?.Writes;

    /// <summary>The torn tail this Open's Replay cut off, or null if the log ended cleanly.</summary>
    public JournalTailCut? TornTailCut { get; private set; }

    /// <summary>
    /// Visits every valid committed record in order and returns how many. Must be called exactly once, after Open
    /// and before the first Append. Cuts a torn tail (see <see cref="TornTailCut"/>); throws
    /// <see cref="JournalCorruptException"/> for a bad record followed by valid ones, or for a bad manifest.
    /// </summary>
    public long Replay(IJournalVisitor visitor) => Replay(visitor, fromAddress: -1, fromRecordNo: 0);

    /// <summary>
    /// As <see cref="Replay(IJournalVisitor)"/>, from the record numbered <paramref name="fromRecordNo"/> at
    /// <paramref name="fromAddress"/> (a snapshot's last record, which is visited first: the caller skips it) instead of
    /// the first. Check the position with <see cref="HoldsRecord"/> first. Returns the count of all records, those
    /// before the position included.
    /// </summary>
    public long Replay(IJournalVisitor visitor, long fromAddress, long fromRecordNo)
    {
        ArgumentNullException.ThrowIfNull(visitor);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_replayStarted) throw new InvalidOperationException("Replay runs once per Open.");
        _replayStarted = true;

        long committedTail = _log.CommittedUntilAddress;
        // After recovery FasterLog appends at its committed tail; a cut's resume address relies on that, so a
        // FasterLog that behaved otherwise must stop us before we write a wrong cut (checked once per Open).
        if (_log.TailAddress != committedTail)
            throw new InvalidOperationException(
                $"FasterLog recovered tail {_log.TailAddress} differs from its committed tail {committedTail}");
        var spans = ReadableSpans(committedTail);

        // After a retirement the live log begins at record RetiredRecords (the records before are in the archive).
        long count = spans[0].RecordsBefore;
        int first = 0;
        if (fromAddress >= 0)
        {
            first = spans.FindIndex(s => s.Start <= fromAddress && fromAddress < s.End);
            if (first < 0) throw new ArgumentOutOfRangeException(nameof(fromAddress), $"journal: no records at address {fromAddress}");
            spans[first] = (fromAddress, spans[first].End, fromRecordNo);
            count = fromRecordNo;
        }
        for (int i = first; i < spans.Count; i++)
        {
            var (start, end, recordsBefore) = spans[i];
            if (count != recordsBefore)
                throw new JournalCorruptException(-1, JournalCorruptionReason.ManifestInconsistent,
                    $"a cut says {recordsBefore} records precede address {start}, the log holds {count}");

            var failure = ScanSpan(start, end, visitor, ref count, copyBuffer: null, CancellationToken.None);
            if (failure is null) continue;

            var (address, reason, detail) = failure.Value;
            bool isLastSpan = i == spans.Count - 1;
            // Bytes before an existing cut were verified when that cut was made, so failing now is corruption;
            // in the last span, a bad record is a torn tail only if no intact record follows it.
            if (!isLastSpan || HasIntactRecord(address + sizeof(int), end))
                throw new JournalCorruptException(address, reason, detail);
            // A tail that takes every record is not a torn write but a lost journal (a file emptied by a power cut):
            // cutting it would leave an empty journal, and a fresh start over it would reuse every sequence number.
            if (count == 0)
                throw new JournalCorruptException(address, reason, detail + "; no record before it survives: the journal's contents were lost, not torn");

            Debug.Assert(address >= start && address < end, "a torn tail lies inside its span");
            _manifest.Cuts.Add(new JournalManifest.Cut(address, end, count));
            _manifest.WriteAtomically(_layout);
            TornTailCut = new JournalTailCut(address, end, end - address, count, reason, detail);
            break;
        }

        _recordCount = count;
        Volatile.Write(ref _durableRecordCount, count);
        _replayed = true;
        return count;
    }

    /// <summary>Where the committed journal's bytes from <paramref name="fromAddress"/> on lie: each segment file's part,
    /// in address order, with the address its <c>From</c> offset holds. For a start's readahead (the replay reads them next).</summary>
    public IReadOnlyList<(string Path, long From, long To, long Address)> SegmentsFrom(long fromAddress)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        long end = _log.CommittedUntilAddress;
        var parts = new List<(string, long, long, long)>();
        for (long address = Math.Max(fromAddress, _log.BeginAddress); address < end;)
        {
            (string path, long offset) = _layout.Locate(address);
            long bytes = Math.Min(end - address, _layout.SegmentSizeBytes - offset);
            parts.Add((path, offset, offset + bytes, address));
            address += bytes;
        }
        return parts;
    }

    /// <summary>True when the committed journal holds, at <paramref name="address"/>, an intact record numbered
    /// <paramref name="recordNo"/>: a snapshot's position is checked against the journal before it is trusted.</summary>
    public unsafe bool HoldsRecord(long address, long recordNo)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        long committedTail = _log.CommittedUntilAddress;
        if (address < _log.BeginAddress || address >= committedTail || recordNo < 0) return false;
        if (!ReadableSpans(committedTail).Any(s => s.Start <= address && address < s.End)) return false;
        try
        {
            using var iterator = _log.Scan(address, committedTail);
            if (!iterator.UnsafeGetNext(out byte* entry, out int entryBytes, out long found, out _)) return false;
            try
            {
                return found == address
                    && RecordFrame.Verify(new ReadOnlySpan<byte>(entry, entryBytes), recordNo, out _) == JournalCorruptionReason.None;
            }
            finally
            {
                iterator.UnsafeRelease();
            }
        }
        catch (FasterException)
        {
            return false;
        }
    }

    /// <summary>
    /// Appends one record and returns its journal address. Not durable until <see cref="Commit"/> returns.
    /// Allocation-free; spins while FasterLog's memory is full of unflushed pages (back pressure, bounded memory).
    /// </summary>
    public long Append(ReadOnlySpan<byte> record)
    {
        if (!_replayed)
            throw new InvalidOperationException("Replay must run (once, after Open) before the first Append.");
        if (record.Length < 1 || record.Length > _options.MaxRecordBytes)
            throw new ArgumentException(
                $"record is {record.Length} bytes; a record must be 1..{_options.MaxRecordBytes} bytes", nameof(record));

        var frame = _frame.AsSpan(0, RecordFrame.HeaderBytes + record.Length);
        RecordFrame.Write(frame, _recordCount, record);
        long address = _log.Enqueue(frame);
        _appendedSinceReplay = true;
        _recordCount++;
        return address;
    }

    /// <summary>Group commit: returns once every record appended so far is durable on disk.</summary>
    public void Commit()
    {
        if (!_replayed)
            throw new InvalidOperationException("Replay must run (once, after Open) before Commit.");
        long appended = _recordCount;
        if (appended == _durableRecordCount) return; // nothing new: spare the metadata write
        // Block until the commit's write and flush complete rather than spin on them: FasterLog's spinWait yields in a
        // loop for the whole fsync, which on a 2-core machine takes the CPU the gRPC and logic threads need (a third
        // of the switch's CPU in the whole-path harness). A task's own wait spins and yields first too (2-3% of the
        // switch's CPU in the unary closed loop): the wait blocks at once instead. A commit covers a whole batch.
        _commits.RecordsCommitting = appended;
        _commitWait.Wait(_log.CommitAsync());
        Debug.Assert(_log.CommittedUntilAddress >= _log.TailAddress || appended != _recordCount,
            "a returned commit covers every record appended before it");
        Volatile.Write(ref _durableRecordCount, appended);
        // Dekker with WaitForDurableAsync: the count is visible before the waiter slot is read (one fence per commit).
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _commitWaiter) is not null) Interlocked.Exchange(ref _commitWaiter, null)?.TrySetResult();
    }

    /// <summary>Completes once <see cref="DurableRecordCount"/> reaches <paramref name="recordCount"/> (a reader for a
    /// standby at the end of the journal waits here). Costs the writer nothing while nobody waits.</summary>
    public async Task WaitForDurableAsync(long recordCount, CancellationToken cancel)
    {
        while (DurableRecordCount < recordCount)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            TaskCompletionSource waiter = Volatile.Read(ref _commitWaiter) ?? InstallWaiter();
            if (DurableRecordCount >= recordCount) return; // a commit between the check and the install
            await waiter.Task.WaitAsync(cancel).ConfigureAwait(false);
        }
    }

    private TaskCompletionSource InstallWaiter()
    {
        var fresh = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return Interlocked.CompareExchange(ref _commitWaiter, fresh, null) ?? fresh;
    }

    /// <summary>
    /// Where record <paramref name="recordNo"/> begins (from 0 up to the durable count: the end, where the next record
    /// will be). Scans the live journal from its start, or from <paramref name="hint"/> (a cursor known to be right, at
    /// or before the record): a reader locates once and then keeps its cursor (<see cref="ReadFrames"/>). Throws <see cref="JournalRecordsRetiredException"/> for a retired record.
    /// </summary>
    public unsafe JournalCursor Locate(long recordNo, JournalCursor? hint = null)
    {
        EnterScan();
        try
        {
            if (recordNo < _manifest.RetiredRecords) throw new JournalRecordsRetiredException(recordNo, _manifest.RetiredRecords);
            long committedTail = _log.CommittedUntilAddress;
            var spans = ReadableSpans(committedTail);
            for (int i = spans.Count - 1; i >= 0; i--)
            {
                var (start, end, recordsBefore) = spans[i];
                if (recordNo < recordsBefore) continue;
                long count = recordsBefore;
                long address = start;
                // A known record of this span at or before the one sought (a reader's last cursor, a snapshot's
                // position): the scan begins there instead of at the span's start.
                if (hint is { } h && h.RecordNo <= recordNo && h.RecordNo >= recordsBefore && h.Address >= start && h.Address <= end && h.Address >= _log.BeginAddress)
                {
                    count = h.RecordNo;
                    address = h.Address;
                    start = h.Address;
                }
                using var iterator = _log.Scan(start, end);
                while (count < recordNo)
                {
                    if (!iterator.UnsafeGetNext(out byte* _, out int _, out long _, out long next)) break;
                    iterator.UnsafeRelease();
                    count++;
                    address = next;
                }
                if (count == recordNo) return new JournalCursor(recordNo, address);
                throw new ArgumentOutOfRangeException(nameof(recordNo), $"journal: record {recordNo} is past the {count} committed records");
            }
            throw new ArgumentOutOfRangeException(nameof(recordNo), $"journal: record {recordNo} lies in no readable span");
        }
        finally
        {
            ExitScan();
        }
    }

    /// <summary>
    /// Copies committed records from <paramref name="cursor"/> on, each in its frame (<see cref="JournalFrames"/>), into
    /// <paramref name="destination"/>: as many as fit in <paramref name="maxBytes"/> (the first one always, if the
    /// destination holds it), never past <see cref="DurableRecordCount"/>. Moves the cursor past them and returns the bytes written
    /// (0 at the end). Any thread, beside the writer, which it never holds: each record is copied and the log's buffers
    /// released at once. Throws <see cref="JournalRecordsRetiredException"/> once the cursor's records were retired.
    /// </summary>
    public unsafe int ReadFrames(ref JournalCursor cursor, Span<byte> destination, int maxBytes, out int records)
    {
        records = 0;
        EnterScan();
        try
        {
            if (cursor.RecordNo < _manifest.RetiredRecords || cursor.Address < _log.BeginAddress)
                throw new JournalRecordsRetiredException(cursor.RecordNo, _manifest.RetiredRecords);
            long committedTail = _log.CommittedUntilAddress;
            if (cursor.Address >= committedTail) return 0;
            var spans = ReadableSpans(committedTail);
            long from = cursor.Address;
            int i = spans.FindIndex(s => s.Start <= from && from <= s.End);
            if (i < 0) throw new ArgumentException($"journal: address {cursor.Address} lies in no readable span (inside a cut?)", nameof(cursor));
            if (cursor.Address == spans[i].End)
            {
                if (i == spans.Count - 1) return 0;
                i++; // past a cut: the next span begins with the next record
                if (spans[i].RecordsBefore != cursor.RecordNo)
                    throw new JournalCorruptException(-1, JournalCorruptionReason.ManifestInconsistent, $"a cut says {spans[i].RecordsBefore} records precede address {spans[i].Start}, the reader counted {cursor.RecordNo}");
                cursor = cursor with { Address = spans[i].Start };
            }
            int written = 0;
            long recordNo = cursor.RecordNo, address = cursor.Address;
            // Records a Commit has returned for: FasterLog's committed address may run a little ahead of that count.
            long durable = DurableRecordCount;
            using var iterator = _log.Scan(address, spans[i].End);
            while (recordNo < durable)
            {
                if (!iterator.UnsafeGetNext(out byte* entry, out int entryBytes, out long at, out long next)) break;
                try
                {
                    var frame = new ReadOnlySpan<byte>(entry, entryBytes);
                    if (written > 0 && written + entryBytes > maxBytes) break;
                    if (entryBytes > destination.Length - written)
                    {
                        if (written > 0) break;
                        throw new ArgumentException($"journal: record {recordNo} is {entryBytes} bytes, the destination holds {destination.Length}", nameof(destination));
                    }
                    var reason = RecordFrame.Verify(frame, recordNo, out string detail);
                    if (reason != JournalCorruptionReason.None) throw new JournalCorruptException(at, reason, detail);
                    frame.CopyTo(destination[written..]);
                }
                finally
                {
                    iterator.UnsafeRelease();
                }
                written += entryBytes;
                records++;
                recordNo++;
                address = next;
            }
            cursor = new JournalCursor(recordNo, address);
            return written;
        }
        finally
        {
            ExitScan();
        }
    }

    /// <summary>
    /// Cuts the journal after its first <paramref name="keepRecords"/> records: a node that rejoins as a standby drops
    /// the tail the new primary never had. After Replay and before any Append (nothing of the tail may have been
    /// applied by a running engine). Kept as a cut in the manifest, as a torn tail is: the log's bytes stay, unread;
    /// appends go on after them. Returns what was cut, or null when the journal holds no more than that.
    /// </summary>
    public JournalTruncation? TruncateTo(long keepRecords)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_replayed || _appendedSinceReplay) throw new InvalidOperationException("journal: truncate after Replay and before any Append");
        if (keepRecords < 1) throw new ArgumentOutOfRangeException(nameof(keepRecords), "journal: the genesis record stays");
        if (keepRecords >= _recordCount) return null;
        if (keepRecords < _manifest.RetiredRecords) throw new JournalRecordsRetiredException(keepRecords, _manifest.RetiredRecords);
        if (_manifest.Cuts.Count >= JournalManifest.MaxCuts) throw new InvalidOperationException($"journal: {JournalManifest.MaxCuts} cuts already");
        long address = Locate(keepRecords).Address;
        long committedTail = _log.CommittedUntilAddress;
        // Cuts inside the range cut away go with it (their ranges lie wholly after the new cut's start).
        _manifest.Cuts.RemoveAll(c => c.Address >= address);
        _manifest.Cuts.Add(new JournalManifest.Cut(address, committedTail, keepRecords));
        _commits.WritePending(); // the cut's resume address within what recovery starts from
        _manifest.WriteAtomically(_layout);
        var cut = new JournalTruncation(keepRecords, _recordCount - keepRecords, address, committedTail);
        _recordCount = keepRecords;
        Volatile.Write(ref _durableRecordCount, keepRecords);
        return cut;
    }

    private void EnterScan()
    {
        lock (_scanGate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_replayed) throw new InvalidOperationException("Replay must run (once, after Open) before a scan.");
            _scans++;
        }
    }

    private void ExitScan()
    {
        lock (_scanGate)
        {
            _scans--;
            Monitor.PulseAll(_scanGate);
        }
    }

    /// <summary>
    /// Visits the records committed when the call begins, in order, on the caller's thread, while the writer goes on
    /// appending and committing: a second, read-only FasterLog iterator over the same log (FasterLog serves iterators
    /// beside its writer; a second Open of the directory is refused by the writer's lock, and rightly). Each record is
    /// copied out before the visitor sees it, so the writer is never held. Stops early once <paramref name="stop"/> is
    /// cancelled (or the journal closes); returns the records visited. Throws <see cref="JournalCorruptException"/> for
    /// a record that fails verification (committed records were verified before; this means the disk changed).
    /// </summary>
    public long ScanCommitted(IJournalVisitor visitor, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(visitor);
        EnterScan();
        try
        {
            using var both = CancellationTokenSource.CreateLinkedTokenSource(stop, _closing.Token);
            var copy = new byte[_options.MaxRecordBytes];
            long count = 0;
            foreach (var (start, end, recordsBefore) in ReadableSpans(_log.CommittedUntilAddress))
            {
                if (both.IsCancellationRequested) break;
                count = recordsBefore;
                var failure = ScanSpan(start, end, visitor, ref count, copy, both.Token);
                if (failure is { } f) throw new JournalCorruptException(f.Address, f.Reason, f.Detail);
            }
            return count;
        }
        finally
        {
            ExitScan();
        }
    }

    /// <summary>Closes the log. Does not commit: records appended since the last Commit may be lost. Waits (bounded)
    /// for scans under way, told to stop, to leave the log first.</summary>
    public void Dispose()
    {
        lock (_scanGate)
        {
            if (_disposed) return;
            _disposed = true;
            _closing.Cancel();
            Interlocked.Exchange(ref _commitWaiter, null)?.TrySetException(new ObjectDisposedException(nameof(EventJournal)));
            long waitUntil = Environment.TickCount64 + ScanStopWaitMs;
            while (_scans > 0 && Environment.TickCount64 < waitUntil)
            {
                Monitor.Wait(_scanGate, 100);
            }
        }
        _log.Dispose();
        _device.Dispose();
        _commits.Dispose(); // ours, not FasterLog's: it disposes only a manager it made itself
        _lock.Dispose();
    }

    /// <summary>Records moved to the journal's archive (<see cref="Retire"/>): the first live record's number.</summary>
    public long RetiredRecords => _manifest.RetiredRecords;

    /// <summary>
    /// Retention: copies the records before <paramref name="recordNo"/> (which is at <paramref name="address"/>) that are
    /// not yet archived into one new file of <paramref name="archiveDirectory"/> (<see cref="JournalArchive"/>: never
    /// deleted here), then moves the live log's start to that record, so FasterLog frees the segments wholly before it.
    /// Crash-safe in that order: the archive file is durable before the manifest says the records left, and the manifest
    /// before FasterLog forgets them. Any thread but the journaler's appends (it reads committed records only).
    /// Returns the records archived by this call. <paramref name="wrote"/>: a write budget's hook for the archive file's
    /// writes (<see cref="DirectWriter.Create"/>); null: none.
    /// </summary>
    public long Retire(long address, long recordNo, string archiveDirectory, Action<long>? wrote = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_replayed) throw new InvalidOperationException("Replay must run before Retire.");
        if (recordNo <= _manifest.RetiredRecords) return 0;
        if (!HoldsRecord(address, recordNo)) throw new ArgumentException($"journal: no record {recordNo} at address {address}", nameof(address));
        long first = _manifest.RetiredRecords;
        var writer = new JournalArchive.Writer(archiveDirectory, first, wrote);
        try
        {
            // Read from the segment files, not through FasterLog: its scan iterator allocated two closures per record
            // read from disk (110 MB/s, a blocking collection as each retirement began), and a sleep on the write
            // budget inside its epoch held back every commit. Each record is verified as Replay verifies it, then its frame written to the archive as it is.
            using var reader = new SegmentReader(_layout, _options.PageSizeBytes, _options.MaxRecordBytes, direct: true);
            long count = first;
            foreach (var (start, end, recordsBefore) in ReadableSpans(_log.CommittedUntilAddress))
            {
                if (start >= address) break;
                count = recordsBefore;
                long spanEnd = Math.Min(end, address);
                reader.Seek(start, spanEnd);
                while (true)
                {
                    SegmentRead read = reader.Next(out long at, out ReadOnlySpan<byte> frame);
                    if (read == SegmentRead.End) break;
                    if (read == SegmentRead.Exhausted)
                        throw new JournalCorruptException(at, JournalCorruptionReason.Unreadable,
                            $"committed bytes {at}..{spanEnd} hold no readable record (zeroed or truncated)");
                    if (read == SegmentRead.Broken) throw new JournalCorruptException(at, reader.FailureReason, reader.FailureDetail);
                    var reason = RecordFrame.Verify(frame, count, out string detail);
                    if (reason != JournalCorruptionReason.None) throw new JournalCorruptException(at, reason, detail);
                    writer.AppendFrame(frame);
                    count++;
                }
                // A span ends at a record's end: an entry that ran past it would have begun a record not retired.
                if (reader.Position != spanEnd)
                    throw new JournalCorruptException(spanEnd, JournalCorruptionReason.LengthMismatch,
                        $"the record before address {spanEnd} ends at {reader.Position}");
            }
            if (count != recordNo) throw new InvalidOperationException($"journal: archived up to record {count}, expected {recordNo}");
            writer.Publish(recordNo);
        }
        finally
        {
            writer.Dispose();
        }
        _manifest.RetiredAddress = address;
        _manifest.RetiredRecords = recordNo;
        _commits.WritePending(); // the retired address within what recovery starts from
        _manifest.WriteAtomically(_layout);
        _log.TruncateUntil(address);
        return recordNo - first;
    }

    /// <summary>The address ranges that hold records: the whole log minus the skip ranges of past cuts, from the first
    /// live record (after a retirement, <see cref="JournalManifest.RetiredAddress"/>).</summary>
    private List<(long Start, long End, long RecordsBefore)> ReadableSpans(long committedTail)
    {
        var spans = new List<(long, long, long)>(_manifest.Cuts.Count + 1);
        long start = _log.BeginAddress;
        long recordsBefore = 0;
        if (_manifest.RetiredRecords > 0)
        {
            // FasterLog's start may still be lower (a crash between the manifest and its truncation), never higher.
            if (_manifest.RetiredAddress < start)
                throw new JournalCorruptException(-1, JournalCorruptionReason.ManifestInconsistent,
                    $"records retired up to address {_manifest.RetiredAddress}, but the log begins after it, at {start}");
            start = _manifest.RetiredAddress;
            recordsBefore = _manifest.RetiredRecords;
        }
        foreach (var cut in _manifest.Cuts)
        {
            if (cut.ResumeAddress <= start && _manifest.RetiredRecords > 0) continue; // retired with what it skipped
            if (cut.Address < start || cut.ResumeAddress < cut.Address || cut.ResumeAddress > committedTail)
                throw new JournalCorruptException(-1, JournalCorruptionReason.ManifestInconsistent,
                    $"cut [{cut.Address}, {cut.ResumeAddress}) does not fit after {start} within committed tail {committedTail}");
            spans.Add((start, cut.Address, recordsBefore));
            start = cut.ResumeAddress;
            recordsBefore = cut.RecordsBefore;
        }
        spans.Add((start, committedTail, recordsBefore));
        return spans;
    }

    /// <summary>Verifies and visits the records in [start, end); returns the first failure, or null if all is well.</summary>
    /// <param name="copyBuffer">Null: the visitor reads the record in the log's buffers (Replay, nothing else running).
    /// Else the record is copied here and the log's buffers released before the visitor runs, so a slow visitor does not
    /// hold FasterLog's epoch while the writer runs (<see cref="ScanCommitted"/>).</param>
    private unsafe (long Address, JournalCorruptionReason Reason, string Detail)? ScanSpan(
        long start, long end, IJournalVisitor visitor, ref long count, byte[]? copyBuffer, CancellationToken stop)
    {
        if (start == end) return null;
        // Known FasterLog 2.6.5 limitation: an entry length of 0x7FFFFFFD..0x7FFFFFFF or int.MinValue (garbage in
        // the 4-byte length prefix) overflows the iterator's alignment arithmetic and it spins forever in GetNext.
        // Every other bad length throws or is caught below. Removing this needs a reader of our own over the
        // segment files (as HasIntactRecord already does) instead of FasterLog's iterator.
        using var iterator = _log.Scan(start, end);
        // Where the next record must begin: the end of the last good one. Kept so that bytes FasterLog skips
        // silently (zeros read as page padding, negative lengths read as its commit records) are still caught.
        long expectedAddress = start;
        while (true)
        {
            byte* entry;
            int entryBytes;
            long address, nextAddress;
            try
            {
                if (!iterator.UnsafeGetNext(out entry, out entryBytes, out address, out nextAddress)) break;
            }
            catch (FasterException e)
            {
                return (expectedAddress, JournalCorruptionReason.Unreadable, "FasterLog: " + e.Message);
            }

            int copied = -1;
            try
            {
                var frame = new ReadOnlySpan<byte>(entry, entryBytes);
                var reason = RecordFrame.Verify(frame, count, out string detail);
                if (reason != JournalCorruptionReason.None)
                {
                    // An intact record out of sequence means the records before it went missing: name where they began.
                    long at = reason == JournalCorruptionReason.SequenceMismatch ? expectedAddress : address;
                    return (at, reason, detail);
                }
                if (copyBuffer is null)
                {
                    visitor.OnRecord(address, frame[RecordFrame.HeaderBytes..]);
                }
                else
                {
                    frame[RecordFrame.HeaderBytes..].CopyTo(copyBuffer);
                    copied = entryBytes - RecordFrame.HeaderBytes;
                }
            }
            finally
            {
                iterator.UnsafeRelease();
            }
            if (copied >= 0)
            {
                visitor.OnRecord(address, copyBuffer.AsSpan(0, copied));
            }
            count++;
            expectedAddress = nextAddress;
            if (stop.IsCancellationRequested)
            {
                return null;
            }
        }

        // The committed tail is the end of the last record ever appended, so a clean span is read to its end.
        if (expectedAddress < end)
            return (expectedAddress, JournalCorruptionReason.Unreadable,
                $"committed bytes {expectedAddress}..{end} hold no readable record (zeroed or truncated)");
        return null;
    }

    /// <summary>
    /// Forensics for a failed record: is there any intact record in [from, end)? Reads the segment files directly,
    /// page by page, trying every 4-byte-aligned position (FasterLog's entry alignment) as a FasterLog entry header,
    /// because after a bad length FasterLog's own iterator cannot find the next record boundary. Runs only after a
    /// failure, so its cost (one page buffer, a linear read) does not touch the good path.
    /// </summary>
    private bool HasIntactRecord(long from, long end)
    {
        const int entryHeaderBytes = sizeof(int); // FasterLog's length prefix, with LogChecksumType.None
        long pageBytes = _options.PageSizeBytes;
        var page = new byte[pageBytes];
        from = (from + 3) & ~3L;
        while (from < end)
        {
            long pageStart = from & ~(pageBytes - 1);
            long pageEnd = Math.Min(pageStart + pageBytes, end);
            int valid = ReadLogBytes(pageStart, page.AsSpan(0, (int)(pageEnd - pageStart)));
            for (long address = from; address + entryHeaderBytes + RecordFrame.HeaderBytes <= pageStart + valid; address += 4)
            {
                int offset = (int)(address - pageStart);
                int entryBytes = BitConverter.ToInt32(page, offset);
                // long: a garbage length near int.MaxValue must not wrap around and pass the bound.
                if (entryBytes < RecordFrame.HeaderBytes || (long)offset + entryHeaderBytes + entryBytes > valid) continue;
                if (RecordFrame.IsIntact(page.AsSpan(offset + entryHeaderBytes, entryBytes))) return true;
            }
            from = pageStart + pageBytes;
        }
        return false;
    }

    /// <summary>Reads log bytes at <paramref name="address"/> from the segment file; returns how many exist on disk.</summary>
    private int ReadLogBytes(long address, Span<byte> destination)
    {
        // A page never spans segments (both are powers of two, segment >= page), so one file serves the read.
        var (path, offset) = _layout.Locate(address);
        if (!File.Exists(path)) return 0;
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        if (offset >= file.Length) return 0;
        file.Position = offset;
        int total = 0;
        while (total < destination.Length)
        {
            int read = file.Read(destination[total..]);
            if (read == 0) break;
            total += read;
        }
        return total;
    }
}
