using FASTER.core;
using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Snapshots;
using Switch.Journal;

namespace Switch.Engine.Archive;

/// <summary>
/// The transaction archive on FASTER's key-value store: the newest records in memory, the rest in segment files
/// under the data directory, found through an in-memory hash index. It is derived state: a start that replays the whole
/// journal rebuilds it from empty (its directory cleared); a start from a snapshot opens it at the FASTER checkpoint
/// taken at the snapshot's instant (<see cref="BeginCapture"/>), its filter restored from the snapshot. The logic thread
/// calls it; the store's writes are handed to a writer thread (<see cref="ArchiveHandoff{TWriter}"/>, unless
/// <see cref="ArchiveSizing.HandoffEntries"/> is 0), and a read looks at the writes not yet applied first, so an order
/// evicted a moment ago is found as surely as one written long ago. The store's one session is used by one thread at a
/// time (<see cref="_sessionGate"/>).
/// A read of a record that left memory waits for the disk on the logic thread: rare (a repeat, query or refund of an
/// old order), and the price of never executing an order twice. Forgetting drops whole segment files once every
/// record in them is past the logic's memory, so disk use is bounded by that horizon.
/// </summary>
public sealed class FasterTransactionArchive : ITransactionArchive
{
    /// <summary>Where the log stood when each run of <see cref="ArchiveSizing.MarkEveryTransactions"/> archived transactions began.</summary>
    private readonly Queue<(long FirstId, long Address)> _marks = new();
    private readonly int _markEvery;
    /// <summary>A bound on the marks: past it the oldest is dropped (forgetting becomes coarser, never wrong).</summary>
    private const int MaxMarks = 1 << 16;

    private readonly ArchivedOrderFilter _filter;
    private readonly IDevice _device;
    private readonly ICheckpointManager _checkpoints;
    private readonly FasterKV<ScopedKey, Transaction> _store;
    /// <summary>The checkpoints' writes under the snapshots' budget (null: at the disk's speed).</summary>
    private readonly PacedWrites? _paced;
    /// <summary>While a checkpoint runs, the log's writes below the tail at its start (its fold-over) are paced; the log's
    /// other page flushes never are: they must keep up with any rate the switch takes, or its memory fills.</summary>
    private readonly CheckpointWindow _window;
    /// <summary>Made once the store is recovered (<see cref="CompleteRecovery"/>): FASTER's sessions come after its recovery.</summary>
    private ClientSession<ScopedKey, Transaction, Transaction, Transaction, Empty, SimpleFunctions<ScopedKey, Transaction>> _session = null!;
    /// <summary>FASTER recovering the store from a checkpoint on its own thread, while the engine reads the logic's state
    /// from the snapshot (the two are each about half a restart); null once <see cref="CompleteRecovery"/> has seen it done.</summary>
    private Task? _recovering;
    /// <summary>Held by whichever thread uses <see cref="_session"/>: the writer for each write, the logic for a store
    /// read (rare: the filter lets through archived orders and about 1% of new ones) and for a snapshot's capture.</summary>
    private readonly object _sessionGate = new();
    /// <summary>The store's index buckets, for the writer's prefetch (null: this FASTER's are not found, or no session yet).
    /// Set with the session, before any write is handed over.</summary>
    private StoreIndexBuckets? _buckets;
    private readonly long _indexBytes;
    /// <summary>Null: the logic thread writes the store itself.</summary>
    private readonly ArchiveHandoff<StoreWriter>? _handoff;
    // The writer's (the thread that applies writes): the marks above and these counters.
    private long _puts;
    private long _lastPutId;
    /// <summary>The logic's latest horizon of remembered orders (<see cref="ForgetBelow"/>), handed over with each write.</summary>
    private long _forgetBelowId;
    /// <summary>The writer's: the address the logic's horizon allows the store to forget up to (its begin address
    /// follows it, down to <see cref="CheckpointBegins.KeepFromAddress"/>).</summary>
    private long _forgetUntilAddress;

    /// <summary>Where each kept checkpoint's log begins: the store forgets no further (see <see cref="CheckpointBegins"/>).</summary>
    private readonly CheckpointBegins _checkpointBegins = new();

    /// <summary>The capture a snapshot asked for whose checkpoint is not yet answered (at most one): set by the logic,
    /// recorded and started by the writer at its mark.</summary>
    private CaptureAsked? _captureAsked;
    /// <summary>The writer's scalars at the latest mark (<see cref="RecordState"/>); read by the snapshot's writer thread
    /// once recorded. Reused: a steady state allocates nothing for them.</summary>
    private readonly StateWriter _markState = new();
    /// <summary>The filter's scalars at the latest capture, written by the logic in the pause.</summary>
    private readonly StateWriter _filterState = new();
    /// <summary>How long a snapshot's writer thread waits for the archive's writer to reach the capture's mark: the lag
    /// of a lap of writes at worst, normally well under a millisecond.</summary>
    private const int MarkWaitMs = 30_000;
    /// <summary>How often that wait looks whether the writer failed.</summary>
    private const int MarkPollMs = 50;

    /// <summary>Tests: held, the writer thread stops at its next write (as an upsert blocked on a page flush does).</summary>
    internal object SessionGateForTest => _sessionGate;

    /// <summary>Tests: called on the thread that starts a snapshot's checkpoint, just before it does.</summary>
    internal Action? CheckpointStarting { get; set; }

    /// <summary>How long the thread that starts a checkpoint waits for its session to leave the checkpointed version (normally microseconds).</summary>
    private const int CheckpointVersionWaitMs = 5_000;

    private FasterTransactionArchive(IDevice device, ICheckpointManager checkpoints, FasterKV<ScopedKey, Transaction> store, ArchiveSizing sizing,
        PacedWrites? paced, CheckpointWindow window, Task? recovering)
    {
        _paced = paced;
        CheckpointPacer = paced?.Pacer;
        _window = window;
        _checkpoints = checkpoints;
        _markEvery = sizing.MarkEveryTransactions;
        _filter = new ArchivedOrderFilter(sizing.FilterBytes, ArchiveSizing.FilterGenerations);
        _device = device;
        _store = store;
        _recovering = recovering;
        _indexBytes = sizing.IndexBytes;
        if (recovering is null) OpenSession();
        if (sizing.HandoffEntries > 0) _handoff = new ArchiveHandoff<StoreWriter>(sizing.HandoffEntries, new StoreWriter(this), "switch-archiver");
    }

    /// <summary>Disk reads so far (records that had left memory): a figure for operators and tests.</summary>
    public long DiskReads { get; private set; }

    /// <summary>The writer thread's progress: the last write it applied, and the writes published to it it has not (both
    /// 0 when the logic writes the store itself). Any thread: the stall watchdog's view.</summary>
    public long WriterApplied => _handoff?.Applied ?? 0;
    public long WriterLag => _handoff?.PublishedNotApplied ?? 0;

    /// <summary>The store's log device's writes outstanding (its page flushes and a checkpoint's fold-over).</summary>
    public DeviceActivity? DeviceWrites { get; private init; }
    /// <summary>Look-ups the filter let through to the store (archived orders, and the filter's false positives).</summary>
    public long StoreLookups { get; private set; }
    /// <summary>The filter was too small for the memory of orders this many times (see <see cref="ArchivedOrderFilter"/>).</summary>
    public long FilterOverfills => _filter.Overfills;
    public long BeginAddress => _store.Log.BeginAddress;
    public long TailAddress => _store.Log.TailAddress;

    /// <summary>The budget its checkpoints keep to (null: none), shared with the snapshot file's writer.</summary>
    public WritePacer? CheckpointPacer { get; }

    /// <summary>Bytes of the checkpoints' writes (and the log's during one) written under the budget so far.</summary>
    public long CheckpointBytesPaced => _paced?.BytesPaced ?? 0;

    /// <summary>Creates an empty archive in <paramref name="directory"/>, deleting what an earlier run left there.
    /// <paramref name="checkpointPacer"/>: the snapshots' write budget its checkpoints keep to (null: none).</summary>
    public static FasterTransactionArchive Create(string directory, ArchiveSizing sizing, WritePacer? checkpointPacer = null)
    {
        sizing.Validate();
        if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        Directory.CreateDirectory(directory);
        return Open(directory, sizing, checkpointToken: null, checkpointPacer);
    }

    /// <summary>Opens the archive in <paramref name="directory"/> as it was at the checkpoint a snapshot names. Throws if
    /// that checkpoint cannot be recovered (the caller falls back to an older snapshot or a whole replay).</summary>
    public static FasterTransactionArchive OpenAtCheckpoint(string directory, ArchiveSizing sizing, string checkpointToken, WritePacer? checkpointPacer = null)
    {
        FasterTransactionArchive archive = StartOpenAtCheckpoint(directory, sizing, checkpointToken, checkpointPacer);
        try
        {
            archive.CompleteRecovery();
            return archive;
        }
        catch
        {
            archive.Dispose();
            throw;
        }
    }

    /// <summary><see cref="OpenAtCheckpoint"/> whose store recovers on its own thread: only the filter and the scalars
    /// (<see cref="RestoreScalars"/>, <see cref="RestoreArrays"/>) may be used before <see cref="CompleteRecovery"/>
    /// returns, which throws if the checkpoint could not be recovered.</summary>
    public static FasterTransactionArchive StartOpenAtCheckpoint(string directory, ArchiveSizing sizing, string checkpointToken, WritePacer? checkpointPacer = null)
    {
        sizing.Validate();
        if (!Guid.TryParse(checkpointToken, out _)) throw new InvalidDataException($"archive: checkpoint token '{checkpointToken}' is not a token");
        if (!Directory.Exists(directory)) throw new InvalidDataException($"archive: {directory} is missing");
        // Checked before FASTER is asked: it would create the missing files empty and fail parsing them with an exception
        // that says nothing (a start with snapshots off rebuilds the archive and removes every earlier checkpoint).
        // The files are named by the same scheme the checkpoint manager writes with: the index's and the log's metadata.
        Guid token = Guid.Parse(checkpointToken);
        DefaultCheckpointNamingScheme naming = CheckpointNaming(directory);
        foreach (FileDescriptor metadata in new[] { naming.IndexCheckpointMetadata(token), naming.LogCheckpointMetadata(token) })
        {
            string folder = Path.Combine(naming.BaseName(), metadata.directoryName);
            // The local device factory adds a segment number to the file's name.
            bool whole = Directory.Exists(folder) && Directory.EnumerateFiles(folder, metadata.fileName + "*").Any(f => new FileInfo(f).Length > 0);
            if (!whole) throw new InvalidDataException($"archive: checkpoint {checkpointToken} is missing from {naming.BaseName()} ({metadata.directoryName}; the archive was rebuilt or removed since the snapshot)");
        }
        return Open(directory, sizing, checkpointToken, checkpointPacer);
    }

    private static DefaultCheckpointNamingScheme CheckpointNaming(string directory) => new(Path.Combine(directory, "checkpoints"));

    private static FasterTransactionArchive Open(string directory, ArchiveSizing sizing, string? checkpointToken, WritePacer? pacer)
    {
        PacedWrites? paced = pacer is null ? null : new PacedWrites(pacer);
        var window = new CheckpointWindow();
        // Its writes skip the page cache (see DirectLogDevice); a repeat or query of an order FASTER evicted reads the disk.
        var direct = new DirectLogDevice(Path.Combine(directory, "archive.log"), recover: checkpointToken is not null, writeThread: "switch-arch-io");
        IDevice device = direct;
        if (paced is not null) device = new PacedDevice(device, paced, queueAll: false, window.Paces);
        // Checkpoints are kept until the snapshots that name them are gone (PurgeCheckpointsExcept), not just the latest:
        // recovery may fall back to an older snapshot.
        INamedDeviceFactory files = new LocalStorageNamedDeviceFactory();
        if (paced is not null) files = new PacedDeviceFactory(files, paced);
        var checkpoints = new DeviceLogCommitCheckpointManager(files,
            CheckpointNaming(directory), removeOutdated: false);
        FasterKV<ScopedKey, Transaction>? store = null;
        try
        {
            store = new FasterKV<ScopedKey, Transaction>(new FasterKVSettings<ScopedKey, Transaction>
            {
                IndexSize = sizing.IndexBytes,
                LogDevice = device,
                PageSize = sizing.PageBytes,
                MemorySize = sizing.MemoryBytes,
                MutableFraction = sizing.MutableFraction,
                SegmentSize = sizing.SegmentBytes,
                EqualityComparer = new OrderComparer(),
                CheckpointManager = checkpoints,
                RemoveOutdatedCheckpoints = false,
            });
            Task? recovering = null;
            if (checkpointToken is not null)
            {
                Guid token = Guid.Parse(checkpointToken);
                FasterKV<ScopedKey, Transaction> recovered = store;
                // No pages preloaded: recovery reads what it must (the hash index, the checkpoint's own records), and the
                // newest archived records come from disk when a look-up first wants them, instead of 256 MiB read at
                // every start whether wanted or not (half of the archive's part of a restart).
                recovering = Task.Factory.StartNew(() => recovered.Recover(token, numPagesToPreload: 0), CancellationToken.None,
                    TaskCreationOptions.LongRunning, TaskScheduler.Default);
            }
            return new FasterTransactionArchive(device, checkpoints, store, sizing, paced, window, recovering) { DeviceWrites = direct.Writes };
        }
        catch
        {
            store?.Dispose();
            checkpoints.Dispose();
            paced?.Dispose();
            device.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Snapshot, on the logic thread: the filter's scalars and capture now, and a mark handed to the writer thread after
    /// every write made so far, where it records the archive's scalars (its counters and the log's marks, once it has
    /// forgotten what the logic's horizon at the mark allows) and starts a FASTER checkpoint (index and log, fold-over)
    /// of exactly the writes made before it. FASTER's checkpoints are consistent per session at the point the session
    /// moves to the next version; the thread that starts one holds the store's only session and writes nothing until it
    /// has moved, so that point is where it started.
    /// The logic never waits for the writer here: the scalars are the writer's (a log address is known only once the
    /// write is applied, and the forgetting that trims the marks runs there), so the writer records them at the mark and
    /// the snapshot's writer thread puts them in the state afterwards (<see cref="ArchiveCapture.WriteState"/>), in the
    /// place and form the logic once wrote them itself: the file's layout is unchanged, and a snapshot at a position is
    /// the same bytes whatever the writer's progress was. Waiting here instead (a drain of the handoff) made the pause
    /// as long as the writer's backlog: up to 12.5 ms under load, an upsert blocked on a page flush. Without a writer
    /// thread the logic does the writer's part itself. The checkpoint completes on another thread
    /// (<see cref="ArchiveCapture.Checkpoint"/>).
    /// </summary>
    public long FillAsideReserve() => _filter.FillAsideReserve();

    public ArchiveCapture BeginCapture(StateWriter w, PauseTimer? pause = null)
    {
        System.Diagnostics.Debug.Assert(_recovering is null, "archive: the store used before CompleteRecovery");
        // The filter is the logic's: its scalars now, into a buffer of their own, since the writer's part comes before
        // them in the state.
        _filterState.Clear();
        ICapturedArray[] arrays = _filter.BeginCapture(_filterState);
        pause?.Lap(PausePart.ArchiveState);
        var asked = new CaptureAsked();
        if (Interlocked.CompareExchange(ref _captureAsked, asked, null) is not null)
        {
            _filter.EndCapture();
            throw new InvalidOperationException("archive: a checkpoint could not start (another is being started)");
        }
        try
        {
            if (_handoff is not null) _handoff.HandCheckpointMark(_forgetBelowId);
            else
            {
                lock (_sessionGate) AtMark(_forgetBelowId);
            }
        }
        catch
        {
            // Not handed (the writer failed, or the archive is disposed): nothing was asked, and the filter's capture ends
            // here, since no capture is returned to end it; else every later snapshot would find one "being started".
            Interlocked.CompareExchange(ref _captureAsked, null, asked);
            _filter.EndCapture();
            throw;
        }
        pause?.Lap(PausePart.CheckpointStart);
        return new ArchiveCapture(arrays, asked.Checkpoint.Task, () =>
        {
            Volatile.Write(ref asked.Ended, true);
            _filter.EndCapture();
        }, state => WriteRecordedState(state, asked));
    }

    /// <summary>Returns once the store holds every write made so far and has forgotten what the logic's latest horizon
    /// allows (on the logic thread; tests: a snapshot no longer waits for this).</summary>
    public void Flush()
    {
        _handoff?.Drain();
        lock (_sessionGate) ForgetInStore(_forgetBelowId);
    }

    /// <summary>A snapshot's mark, by the thread that writes the store (holding <see cref="_sessionGate"/>), after every
    /// write handed before it: the logic's horizon then applied, the scalars recorded, the checkpoint started.</summary>
    private void AtMark(long forgetBelowId)
    {
        ForgetInStore(forgetBelowId);
        CaptureAsked? asked = Volatile.Read(ref _captureAsked);
        System.Diagnostics.Debug.Assert(asked is not null, "archive: a checkpoint mark without a checkpoint asked for");
        if (asked is null) return;
        RecordState(_markState);
        asked.Recorded.TrySetResult();
        try
        {
            StartCheckpoint(asked);
        }
        catch (Exception e)
        {
            // Not one StartCheckpoint answers itself: it stops the writer, and the snapshot fails with it rather than
            // wait for an answer that would never come.
            Answer(asked, e);
            throw;
        }
    }

    /// <summary>The writer's counters and marks as the state holds them (the section <see cref="ReadScalars"/> reads).</summary>
    private void RecordState(StateWriter w)
    {
        w.Clear();
        w.Section("archive");
        w.Long(_puts);
        w.Long(_lastPutId);
        w.Int(_marks.Count);
        foreach ((long firstId, long address) in _marks)
        {
            w.Long(firstId);
            w.Long(address);
        }
    }

    /// <summary>The archive's part of the state (<see cref="ArchiveCapture.WriteState"/>), on the snapshot's writer
    /// thread: what the writer recorded at the mark, then the filter's scalars from the pause.</summary>
    private void WriteRecordedState(StateWriter w, CaptureAsked asked)
    {
        long deadline = Environment.TickCount64 + MarkWaitMs;
        while (!asked.Recorded.Task.Wait(MarkPollMs))
        {
            if (_handoff?.Fault is { } fault)
            {
                // The mark will never be taken: the checkpoint is answered here, so nothing waits for it.
                var failed = new InvalidOperationException("archive: the writer failed before the snapshot's mark", fault);
                Answer(asked, failed);
                throw failed;
            }
            // Still asked: a writer that comes back takes the mark and answers it; no later capture starts before.
            if (Environment.TickCount64 > deadline) throw new TimeoutException($"archive: the writer did not reach the snapshot's mark in {MarkWaitMs} ms");
        }
        // The buffers are reused by the next capture, which starts once this one ended.
        if (Volatile.Read(ref asked.Ended)) throw new InvalidOperationException("archive: a capture's state written after its end");
        w.Append(_markState.Written);
        w.Append(_filterState.Written);
    }

    /// <summary>Starts the store's checkpoint <see cref="BeginCapture"/> asked for, by the thread that writes the store
    /// (holding <see cref="_sessionGate"/>), before any later write; its outcome goes to the snapshot, never to this thread
    /// (a failed checkpoint fails the snapshot, not the archive).</summary>
    private void StartCheckpoint(CaptureAsked asked)
    {
        try
        {
            CheckpointStarting?.Invoke();
            long version = _session.Version;
            long foldOverBytes = _store.Log.TailAddress - _store.Log.ReadOnlyAddress;
            _window.Open(_store.Log.TailAddress);
            if (!_store.TryInitiateFullCheckpoint(out Guid token, CheckpointType.FoldOver))
            {
                _window.Close();
                Answer(asked, new InvalidOperationException("archive: a checkpoint could not start (another is running)"));
                return;
            }
            // Before any later write can forget: the store's begin now is where this checkpoint's log begins.
            _checkpointBegins.Add(token, _store.Log.BeginAddress);
            var checkpoint = new ArchiveCheckpoint(token.ToString(), foldOverBytes);
            CheckpointWindow window = _window;
            _ = Task.Run(async () =>
            {
                try
                {
                    await _store.CompleteCheckpointAsync().ConfigureAwait(false);
                    window.Close();
                    Answer(asked, checkpoint: checkpoint);
                }
                catch (Exception e)
                {
                    window.Close();
                    Answer(asked, e);
                }
            });
            // No later write until the session has left the checkpointed version: the checkpoint holds none of them.
            long deadline = Environment.TickCount64 + CheckpointVersionWaitMs;
            var spin = new SpinWait();
            while (_session.Version == version)
            {
                if (Environment.TickCount64 > deadline)
                {
                    // Later writes might fall in it: it never backs a snapshot (the answer above comes too late).
                    Answer(asked, new InvalidOperationException($"archive: the session stayed in version {version} for {CheckpointVersionWaitMs} ms after a checkpoint began"));
                    return;
                }
                _session.Refresh();
                spin.SpinOnce(sleep1Threshold: -1);
            }
        }
        catch (Exception e) when (e is InvalidOperationException or FasterException or IOException)
        {
            Answer(asked, e);
        }
    }

    /// <summary>The first answer to a checkpoint asked for stands; the next may be asked for once it is given.</summary>
    private void Answer(CaptureAsked asked, Exception? failure = null, ArchiveCheckpoint? checkpoint = null)
    {
        Interlocked.CompareExchange(ref _captureAsked, null, asked);
        if (failure is not null)
        {
            asked.Recorded.TrySetException(failure);
            asked.Checkpoint.TrySetException(failure);
        }
        else asked.Checkpoint.TrySetResult(checkpoint);
    }

    /// <summary>A snapshot's capture asked of the writer thread: the scalars it records at the mark, then the checkpoint
    /// it starts there.</summary>
    private sealed class CaptureAsked
    {
        public readonly TaskCompletionSource Recorded = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public readonly TaskCompletionSource<ArchiveCheckpoint?> Checkpoint = new(TaskCreationOptions.RunContinuationsAsynchronously);
        /// <summary>The capture ended (<see cref="ArchiveCapture.End"/>): the recorded buffers may be the next capture's.</summary>
        public bool Ended;
    }

    /// <summary>Reads past what <see cref="BeginCapture"/> wrote (a verification restoring the logic without the store);
    /// returns the filter arrays that follow.</summary>
    public static int SkipSnapshotScalars(ref StateReader r)
    {
        ReadScalars(ref r, marks: null);
        return ArchivedOrderFilter.SkipSnapshotScalars(ref r);
    }

    public void RestoreScalars(ref StateReader r)
    {
        _marks.Clear();
        (_puts, _lastPutId) = ReadScalars(ref r, _marks);
        _filter.RestoreScalars(ref r);
    }

    /// <summary>The counters and marks <see cref="BeginCapture"/> wrote (the marks into <paramref name="marks"/>, or
    /// dropped): one parser for a restore and a skip.</summary>
    private static (long Puts, long LastPutId) ReadScalars(ref StateReader r, Queue<(long FirstId, long Address)>? marks)
    {
        r.Section("archive");
        long puts = r.Long();
        long lastPutId = r.Long();
        int count = r.Int();
        if (count < 0 || count > MaxMarks) throw new InvalidDataException($"snapshot: {count} archive marks, at most {MaxMarks}");
        for (int i = 0; i < count; i++)
        {
            long firstId = r.Long();
            long address = r.Long();
            marks?.Enqueue((firstId, address));
        }
        return (puts, lastPutId);
    }

    public void PrefaultForRestore(Prefaulter prefault) => _filter.PrefaultForRestore(prefault);

    public void RestoreArrays(SnapshotArrayReader arrays)
    {
        for (int g = 0; g < _filter.Generations; g++) arrays.ReadInto(_filter.GenerationForRestore(g), $"archive filter generation {g}");
    }

    /// <summary>Deletes the store's checkpoints but those named (the kept snapshots'), and lets the store forget what
    /// only those held (on its writer's next write). Not while one is being taken.</summary>
    public void PurgeCheckpointsExcept(IReadOnlySet<string> keep)
    {
        foreach (Guid token in _checkpoints.GetLogCheckpointTokens().Concat(_checkpoints.GetIndexCheckpointTokens()).Distinct())
        {
            if (!keep.Contains(token.ToString())) _checkpoints.Purge(token);
        }
        _checkpointBegins.KeepOnly(keep);
    }

    /// <summary>A checkpoint's log begin address, from its metadata on disk; 0 (keep every segment) if it cannot be read:
    /// a checkpoint that might still recover is never broken by forgetting.</summary>
    private static long CheckpointBeginAddress(ICheckpointManager checkpoints, Guid token)
    {
        try
        {
            byte[] metadata = checkpoints.GetLogCheckpointMetadata(token, null, false, -1);
            if (metadata is null || metadata.Length == 0) return 0;
            var info = new HybridLogRecoveryInfo();
            using var reader = new StreamReader(new MemoryStream(metadata));
            info.Initialize(reader);
            return Math.Max(0, info.beginAddress);
        }
        catch (Exception e) when (e is IOException or FormatException or InvalidDataException or FasterException or ArgumentException or OverflowException)
        {
            return 0;
        }
    }

    public void Put(in ScopedKey order, in Transaction tx) => Put(order, order.Hash64(), tx);

    public void Put(in ScopedKey order, ulong hash, in Transaction tx)
    {
        if (tx.Id <= 0) throw new ArgumentException("archive: a transaction without an id", nameof(tx));
        System.Diagnostics.Debug.Assert(hash == order.Hash64(), "archive: the hash is the order's");
        _filter.Add(hash, tx.Id);
        Hand(isPut: true, order, hash, tx);
    }

    public void Update(in ScopedKey order, in Transaction tx) => Hand(isPut: false, order, order.Hash64(), tx);

    /// <summary>A write to the writer thread, or applied now when there is none.</summary>
    private void Hand(bool isPut, in ScopedKey order, ulong hash, in Transaction tx)
    {
        System.Diagnostics.Debug.Assert(_recovering is null, "archive: the store used before CompleteRecovery");
        if (_handoff is not null)
        {
            _handoff.Hand(isPut, order, hash, _forgetBelowId, tx);
            return;
        }
        var write = new ArchiveWrite { Order = order, OrderHash = hash, IsPut = isPut, ForgetBelowId = _forgetBelowId, Tx = tx };
        Apply(ref write);
    }

    /// <summary>One write, on the writer thread (or the logic's, without one), in the order the logic made them.</summary>
    private void Apply(ref ArchiveWrite write)
    {
        lock (_sessionGate)
        {
            if (write.StartsCheckpoint)
            {
                AtMark(write.ForgetBelowId);
                return;
            }
            if (write.IsPut) PutInStore(write.Order, write.Tx);
            else Upsert(write.Order, write.Tx);
            ForgetInStore(write.ForgetBelowId);
        }
    }

    private void PutInStore(in ScopedKey order, in Transaction tx)
    {
        // Mark the log now and then for ForgetBelow. A mark's FirstId is above every id written before its address (a
        // parked transaction arrives late with an older id), so truncating there never drops a remembered order.
        if (_puts % _markEvery == 0)
        {
            if (_marks.Count == MaxMarks) _marks.Dequeue();
            _marks.Enqueue((Math.Max(tx.Id, _lastPutId + 1), _store.Log.TailAddress));
        }
        _puts++;
        _lastPutId = Math.Max(_lastPutId, tx.Id);
        Upsert(order, tx);
    }

    private void Upsert(in ScopedKey order, in Transaction tx)
    {
        ScopedKey key = order;
        Transaction value = tx;
        Status status = _session.Upsert(ref key, ref value);
        if (status.IsFaulted || status.IsPending) throw new InvalidOperationException($"archive: upsert of {tx.Id} ended {status}");
    }

    public void Prefetch(ulong orderHash, bool forPut)
    {
        _filter.Prefetch(orderHash, forPut);
        if (forPut) _handoff?.PrefetchHand(orderHash);
    }

    public bool TryGet(in ScopedKey order, out Transaction tx)
    {
        System.Diagnostics.Debug.Assert(_recovering is null, "archive: the store used before CompleteRecovery");
        ulong hash = order.Hash64();
        if (!_filter.MayContain(hash))
        {
            tx = default;
            return false; // a new order, the common case: no store look-up
        }
        if (_handoff is not null && _handoff.TryGet(order, hash, out tx)) return true; // its newest write is not applied yet
        lock (_sessionGate) return ReadStore(order, out tx);
    }

    /// <summary>Tests: the store's own answer, past the filter (an archive reopened without its snapshot's filter).</summary>
    internal bool TryGetFromStoreForTest(in ScopedKey order, out Transaction tx)
    {
        Flush();
        lock (_sessionGate) return ReadStore(order, out tx);
    }

    private bool ReadStore(in ScopedKey order, out Transaction tx)
    {
        StoreLookups++;
        ScopedKey key = order;
        Transaction input = default;
        tx = default;
        Status status = _session.Read(ref key, ref input, ref tx, Empty.Default, 0);
        if (status.IsPending)
        {
            DiskReads++;
            _session.CompletePendingWithOutputs(out CompletedOutputIterator<ScopedKey, Transaction, Transaction, Transaction, Empty> outputs, wait: true);
            using (outputs)
            {
                if (!outputs.Next()) throw new InvalidOperationException("archive: a pending read completed with no output");
                status = outputs.Current.Status;
                tx = outputs.Current.Output;
            }
        }
        if (status.IsFaulted) throw new InvalidOperationException($"archive: read ended {status}");
        return status.Found;
    }

    public void ForgetBelow(long id)
    {
        System.Diagnostics.Debug.Assert(_recovering is null, "archive: the store used before CompleteRecovery");
        _filter.ForgetBelow(id);
        _forgetBelowId = id;
        if (_handoff is null)
        {
            lock (_sessionGate) ForgetInStore(id);
        }
    }

    /// <summary>Drops the store's segments whose records are all below <paramref name="id"/>; by the thread that writes.</summary>
    private void ForgetInStore(long id)
    {
        // A segment may go once a later mark's run starts at or below the horizon: every record before that mark's
        // address belongs to a transaction with an id below its FirstId, so is past the logic's memory.
        while (_marks.TryPeek(out var mark) && mark.FirstId <= id)
        {
            _forgetUntilAddress = mark.Address;
            _marks.Dequeue();
        }
        // Not past the oldest kept checkpoint's begin: what is held back goes once it is purged.
        long until = Math.Min(_forgetUntilAddress, _checkpointBegins.KeepFromAddress);
        if (until > _store.Log.BeginAddress)
        {
            _store.Log.ShiftBeginAddress(until, snapToPageStart: true, truncateLog: true);
        }
    }

    /// <summary>Waits for the store's recovery from its checkpoint (nothing to wait for on a new archive) and opens the
    /// session every read and write goes through. Throws <see cref="InvalidDataException"/> if the checkpoint could not
    /// be recovered.</summary>
    public void CompleteRecovery()
    {
        if (_recovering is not { } recovering) return;
        try
        {
            recovering.GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is not InvalidDataException)
        {
            throw new InvalidDataException($"archive: its checkpoint could not be recovered: {e.GetType().Name}: {e.Message}", e);
        }
        _recovering = null;
        // After FASTER's recovery, not beside it: its checkpoint manager's reads of the metadata are not safe to share.
        foreach (Guid token in _checkpoints.GetLogCheckpointTokens()) _checkpointBegins.Add(token, CheckpointBeginAddress(_checkpoints, token));
        OpenSession();
    }

    /// <summary>The session every read and write goes through, once the store is created or recovered (its index then
    /// stays where it is: the writer's prefetch and the huge pages are found and asked for here).</summary>
    private void OpenSession()
    {
        _session = _store.For(new SimpleFunctions<ScopedKey, Transaction>()).NewSession<SimpleFunctions<ScopedKey, Transaction>>();
        _buckets = StoreIndexBuckets.Find(_store, _indexBytes);
        IndexHugePages = _buckets?.AdviseHugePages() ?? false;
    }

    /// <summary>Whether the kernel took the advice to back the store's index with huge pages (a figure for tests and operators).</summary>
    public bool IndexHugePages { get; private set; }

    /// <summary>Tests: the store's index buckets as the writer's prefetch sees them.</summary>
    internal StoreIndexBuckets? IndexBucketsForTest => _buckets;

    public void Dispose()
    {
        _handoff?.Dispose();
        // A recovery still running (the start failed before it was wanted) finishes before the store goes.
        try
        {
            _recovering?.Wait();
        }
        catch (AggregateException)
        {
            // Its failure was reported by CompleteRecovery, or never mattered: the archive is being thrown away.
        }
        _session?.Dispose();
        _store.Dispose();
        _checkpoints.Dispose();
        _paced?.Dispose();
        _device.Dispose();
    }

    /// <summary>The log's addresses a running checkpoint folds over (<see cref="_window"/>): opened by the logic thread
    /// at the capture, closed by the checkpoint's end.</summary>
    private sealed class CheckpointWindow
    {
        /// <summary>The log's tail when the checkpoint began; 0: none runs.</summary>
        private long _foldOverEnd;

        public void Open(long tailAddress) => Volatile.Write(ref _foldOverEnd, tailAddress);
        public void Close() => Volatile.Write(ref _foldOverEnd, 0);
        /// <summary>Whether a write at log address <paramref name="address"/> is the running checkpoint's fold-over.</summary>
        public bool Paces(ulong address) => address < (ulong)Volatile.Read(ref _foldOverEnd);
    }

    /// <summary>The writer thread's end of the handoff.</summary>
    private readonly struct StoreWriter(FasterTransactionArchive archive) : IArchiveWriter
    {
        public void Write(ref ArchiveWrite write) => archive.Apply(ref write);

        /// <summary>The index bucket its upsert will read (a mark's has no order: there is nothing to load for it).</summary>
        public void Prefetch(in ArchiveWrite ahead)
        {
            if (!ahead.StartsCheckpoint) archive._buckets?.Prefetch(ahead.OrderHash);
        }
    }

    /// <summary>The same hash in every process (FASTER's index must agree with itself only, but one hash for one key
    /// keeps the order index and the archive alike).</summary>
    private sealed class OrderComparer : IFasterEqualityComparer<ScopedKey>
    {
        public long GetHashCode64(ref ScopedKey key) => (long)key.Hash64();
        public bool Equals(ref ScopedKey k1, ref ScopedKey k2) => k1.Equals(k2);
    }
}
