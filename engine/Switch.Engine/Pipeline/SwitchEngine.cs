using System.Runtime.CompilerServices;
using Switch.Engine.Archive;
using Switch.Engine.Business;
using Switch.Engine.Clearing;
using Switch.Engine.Events;
using Switch.Engine.Replication;
using Switch.Engine.Snapshots;
using Switch.Journal;
using Switch.Ring;

namespace Switch.Engine.Pipeline;

/// <summary>
/// The running engine: producers → input ring → journaler (group commit) → business logic (one thread) →
/// output ring → the adapters' output handler. Start recovers from the journal in the data directory: the
/// genesis configuration, then every event replayed into a fresh logic with outputs discarded; then it runs.
/// </summary>
public sealed partial class SwitchEngine : IDisposable
{
    /// <summary>Largest configuration the journal takes as its genesis record.</summary>
    public const int MaxGenesisBytes = 256 * 1024;

    private readonly EngineOptions _options;
    private readonly EventJournal _journal;
    private readonly ITransactionArchive _archive;
    private readonly RingBuffer<InputEvent> _input;
    private readonly RingBuffer<OutputEvent> _output;
    private readonly IWaitStrategy _outputWait;
    private readonly JournalHandler _journalHandler;
    private readonly BatchEventProcessor<InputEvent, JournalHandler> _journaler;
    /// <summary>With replication only: between the journaler and the logic (<see cref="ReplicationGate"/>).</summary>
    private readonly ReplicationGate? _gate;
    private readonly BatchEventProcessor<InputEvent, ReplicationGate>? _gateProcessor;
    private readonly BatchEventProcessor<InputEvent, LogicHandler> _logicProcessor;
    private readonly LogicHandler _logicHandler;
    private readonly Snapshotter? _snapshots;
    /// <summary>The start's throwaway capture (<see cref="SnapshotWarmUp"/>): joined at dispose, so no thread of a
    /// disposed engine still writes in its data directory (a copy or removal of it would race with its files).</summary>
    private Thread? _warmUp;
    /// <summary>Fills the copy-aside reserves at start (<see cref="SwitchLogic.FillAsideReserves"/>), beside the logic:
    /// joined at dispose.</summary>
    private Thread? _asideReserve;
    private readonly ManualResetEventSlim _asideReserved = new();
    private long _asideReservedBytes;
    private BatchEventProcessor<OutputEvent, IEventHandler<OutputEvent>>? _outputProcessor;
    private Thread[] _threads = [];
    private Timer? _ticker;
    private Timer? _snapshotSchedule;
    private int _disposed;

    // Roles: a primary takes inputs; a following engine takes a primary's records (ApplyReplicated) until promoted; a
    // fenced one takes nothing more.
    private const int RolePrimary = 0, RoleFollowing = 1, RolePromoting = 2, RoleFenced = 3;
    private volatile int _role;
    /// <summary>Follow, ApplyReplicated, Promote: one at a time.</summary>
    private readonly object _replicationLock = new();
    /// <summary>BeginTerm: one at a time. Its own lock: it may wait for ring space, which the replication gate frees only
    /// once a feed (taking <see cref="_hintLock"/>) brings the standby's acknowledgement.</summary>
    private readonly object _termLock = new();
    private readonly object _hintLock = new();
    /// <summary>The newest term journaled, begun, accepted from a primary or sent under by one: a term below it is stale.</summary>
    private long _newestTerm;
    /// <summary>Following: the newest term record accepted (a term record must be above it): the sender's term may run
    /// ahead of it, its term record still on the way.</summary>
    private long _recordTerm;
    /// <summary>The record that began <see cref="_newestTerm"/> when it came from recovery or a primary (the journaler
    /// knows those this engine began).</summary>
    private long _acceptedTermStartRecordNo;
    /// <summary>The journal's record count when this engine was promoted (0: not promoted in this life): every record
    /// before it came from the primary before it; its own (a tick, a bank's reachability) may precede its term record.</summary>
    private long _promotedAtRecordNo;
    /// <summary>Following: the next record expected from the primary, and the checksum of the one before it.</summary>
    private long _replicatedNext;
    private uint _replicatedLastChecksum;
    private long _maxCorrelationId;
    private InputEvent _checked;
    private SwitchableOutputHandler? _switchable;
    /// <summary>The last cursor a feed reached (at first, the last record recovery read): where the next locate of a
    /// record begins its scan.</summary>
    private JournalCursor? _feedHint;

    private SwitchEngine(EngineOptions options, EventJournal journal, ITransactionArchive archive, SwitchLogic logic,
        RecoveryReport recovery, long lastRecordNo, long lastRecordAddress)
    {
        _options = options;
        _journal = journal;
        _archive = archive;
        Logic = logic;
        Recovery = recovery;
        _input = RingBuffer<InputEvent>.CreateMultiProducer(options.InputRingSize, NewWait());
        _outputWait = NewWait();
        _output = RingBuffer<OutputEvent>.CreateSingleProducer(options.OutputRingSize, _outputWait);

        var positions = new JournalPositions(options.InputRingSize);
        _journalHandler = new JournalHandler(journal, options.Clock, positions, options.CrashPoint, options.CommitObserver);
        _journaler = new BatchEventProcessor<InputEvent, JournalHandler>(_input, _input.NewBarrier(), _journalHandler, options.MaxBatchSize);
        Sequence logicFollows = _journaler.Sequence;
        if (options.Replication is { } replication)
        {
            // The gate sleeps on its own strategy, woken by the journaler's commits (and by acknowledgements, itself).
            _gate = new ReplicationGate(replication, journal, positions, options.Clock) { RequestPass = PublishNudge };
            _gateProcessor = new BatchEventProcessor<InputEvent, ReplicationGate>(_input, _input.NewBarrier(NewWait(), _journaler.Sequence), _gate, options.MaxBatchSize);
            logicFollows = _gateProcessor.Sequence;
        }
        _newestTerm = logic.Term;
        _recordTerm = logic.Term;
        _acceptedTermStartRecordNo = logic.TermStartRecordNo;
        _maxCorrelationId = recovery.LastCorrelationId;
        if (lastRecordAddress >= 0) _feedHint = new JournalCursor(lastRecordNo, lastRecordAddress);
        if (options.Snapshots.Enabled)
        {
            _snapshots = new Snapshotter(options.Snapshots, options.DataDirectory, journal, logic, archive, lastRecordNo, lastRecordAddress,
                recovery.LastCorrelationId, PublishNudge, options.OnSnapshot, options.OnSnapshotFailed);
        }
        // The logic sleeps on its own strategy, woken by the journaler's commits, not by every producer's publish.
        var outputs = new OutputRingSink(_output);
        _logicHandler = new LogicHandler(logic, positions, _snapshots, appliedRecords: lastRecordNo + 1, outputs, _input);
        _logicProcessor = new BatchEventProcessor<InputEvent, LogicHandler>(
            _input, _input.NewBarrier(NewWait(), logicFollows), _logicHandler, options.MaxBatchSize);
        _input.AddGatingSequences(_logicProcessor.Sequence);
        logic.SetSink(outputs);
        logic.VerifyInvariants = options.VerifyInvariants;
    }

    private IWaitStrategy NewWait() => _options.Wait switch
    {
        WaitKind.Blocking => new BlockingWaitStrategy(),
        WaitKind.Yielding => new YieldingWaitStrategy(),
        WaitKind.BusySpin => new BusySpinWaitStrategy(),
        _ => throw new ArgumentOutOfRangeException(nameof(_options)),
    };

    /// <summary>Recovers (<see cref="Recover"/>) and runs (<see cref="Run"/>) in one step: for callers that attach
    /// nothing in between (tests, tools). The switch process recovers, attaches its parts, then runs.</summary>
    public static SwitchEngine Start(EngineOptions options, SwitchConfig config, IEventHandler<OutputEvent>? outputHandler = null)
    {
        SwitchEngine engine = Recover(options, config);
        try
        {
            engine.Run(outputHandler);
            return engine;
        }
        catch
        {
            engine.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Phase two: attaches the output handler and starts the threads (output, logic, journaler) and the ticker. Inputs
    /// published since recovery wait in the ring until now; nothing the logic emits can miss the handler. Once.
    /// </summary>
    public void Run(IEventHandler<OutputEvent>? outputHandler = null)
    {
        // A cluster's primary leaves the scheduled snapshots to its standby (an operator may still ask it for one).
        if (_snapshots is not null && _options.Replication is not null) _snapshots.ScheduleHeld = true;
        StartThreads(outputHandler ?? new DiscardingOutputHandler());
        StartTicker();
    }

    private void StartThreads(IEventHandler<OutputEvent> outputHandler)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_outputProcessor is not null) throw new InvalidOperationException("engine: Run twice");
        // A batch of at most MaxBatchSize like the logic's: the output's sequence (the logic's room in the output ring)
        // and its flushes (bank requests, answers, feeds) come at a batch's end, so a batch of the whole ring, taken when
        // the output thread fell behind, held them all until it had handled up to 65,536 outputs.
        var output = new BatchEventProcessor<OutputEvent, IEventHandler<OutputEvent>>(
            _output, _output.NewBarrier(), outputHandler, Math.Min(_options.MaxBatchSize, _options.OutputRingSize));
        _output.AddGatingSequences(output.Sequence);
        _outputProcessor = output;
        _threads =
        [
            output.Start("switch-output"),
            _logicProcessor.Start("switch-logic"),
            .. _gateProcessor is null ? Array.Empty<Thread>() : [_gateProcessor.Start("switch-replication")],
            _journaler.Start("switch-journal"),
        ];
        if (_snapshots is not null && _options.Snapshots.Every > TimeSpan.Zero)
        {
            Snapshotter snapshots = _snapshots;
            _snapshotSchedule = new Timer(_ => snapshots.ScheduledTurn(), null, _options.Snapshots.Every, _options.Snapshots.Every);
        }
        if (_snapshots is not null)
        {
            SwitchLogic logic = Logic;
            SnapshotOptions snapshots = _options.Snapshots;
            _asideReserve = new Thread(() =>
            {
                Volatile.Write(ref _asideReservedBytes, logic.FillAsideReserves(snapshots.CopyAsideTransactionsPerSecond, snapshots.WriteMiBPerSecond));
                _asideReserved.Set();
            }) { Name = "switch-aside-reserve", IsBackground = true, Priority = ThreadPriority.BelowNormal };
            _asideReserve.Start();
        }
        if (_snapshots is not null && _archive is FasterTransactionArchive)
        {
            string warmUp = Path.Combine(_options.DataDirectory, "archive-warm-up");
            SwitchConfig config = Logic.Config;
            _warmUp = new Thread(() => SnapshotWarmUp.Run(warmUp, config)) { Name = "switch-snapshot-warm-up", IsBackground = true, Priority = ThreadPriority.BelowNormal };
            _warmUp.Start();
        }
    }

    private void StartTicker()
    {
        if (_options.TickIntervalMs > 0)
        {
            _ticker = new Timer(_ => TickIfDue(), null, _options.TickIntervalMs, _options.TickIntervalMs);
        }
    }

    /// <summary>Asks for a snapshot now (an operator's command); completes when it is published. Fails at once when
    /// snapshots are off.</summary>
    public Task<SnapshotResult> RequestSnapshotAsync(string trigger = "operator")
    {
        if (_snapshots is null) return Task.FromException<SnapshotResult>(new InvalidOperationException("SNAPSHOTS_DISABLED: snapshots are off in this switch's configuration (snapshots.enabled)"));
        if (!Running) return Task.FromException<SnapshotResult>(new InvalidOperationException("SNAPSHOT_NOT_RUNNING: the engine is not running"));
        return _snapshots.RequestAsync(trigger);
    }

    /// <summary>The output side's derived views at the mark of snapshot <paramref name="recordNo"/>
    /// (<see cref="OutputKind.SnapshotMark"/>); the snapshot's writer waits for them (<see cref="SnapshotOptions.WithViews"/>).</summary>
    public void SnapshotViewsCaptured(long recordNo, byte[] views) =>
        (_snapshots ?? throw new InvalidOperationException("snapshots: off")).ViewsCaptured(recordNo, views);

    /// <summary>The output side could not record its views at the mark of snapshot <paramref name="recordNo"/>: the
    /// snapshot fails with <paramref name="reason"/> (told through <see cref="EngineOptions.OnSnapshotFailed"/>).</summary>
    public void SnapshotViewsFailed(long recordNo, Exception reason) => _snapshots?.ViewsFailed(recordNo, reason);

    /// <summary>The logic's state hash at the position it reaches next (<see cref="StateHashAt"/>), for an operator who
    /// compares a primary and its standby: served between two events on the logic thread (a nudge wakes it). Fails when
    /// the engine is not running. A primary whose gate holds everything (fenced, or waiting for its standby) answers
    /// only once the gate opens: callers bound the wait.</summary>
    public Task<StateHashAt> RequestStateHashAsync() => Running
        ? _logicHandler.RequestStateHash(PublishNudge)
        : Task.FromException<StateHashAt>(new InvalidOperationException("STATE_HASH_NOT_RUNNING: the engine is not running"));

    /// <summary>The last snapshot published by this process, if any.</summary>
    public SnapshotResult? LastSnapshot => _snapshots?.Last;
    public long SnapshotsTaken => _snapshots?.Taken ?? 0;
    public long SnapshotsFailed => _snapshots?.Failed ?? 0;
    /// <summary>Snapshots whose state write grew its buffer inside the logic's pause (see <see cref="Snapshotter"/>).</summary>
    internal long SnapshotStateBufferGrowths => _snapshots?.StateBufferGrowths ?? 0;
    /// <summary>The snapshot writer thread's kernel id, 0 before it runs or without snapshots (see <see cref="NiceThread"/>).</summary>
    internal int SnapshotWriterThreadId => _snapshots?.WriterThreadId ?? 0;

    /// <summary>The bytes of the snapshots' copy-aside reserves, once filled (0 before, and with snapshots off).</summary>
    public long AsideReservedBytes => Volatile.Read(ref _asideReservedBytes);

    /// <summary>True once the copy-aside reserves are filled (within <paramref name="timeout"/>); false with snapshots off.</summary>
    public bool WaitAsideReserved(TimeSpan timeout) => _asideReserve is not null && _asideReserved.Wait(timeout);

    /// <summary>True once <see cref="Run"/> has started the threads.</summary>
    public bool Running => _outputProcessor is not null;

    /// <summary>Journal records the logic has applied (the genesis counted): behind the journal's durable count by what
    /// waits at the replication gate or in the ring. Updated per batch.</summary>
    public long AppliedRecordCount => _logicHandler.AppliedRecords;

    /// <summary>Journal records durable on this node's disk (the genesis counted).</summary>
    public long DurableRecordCount => _journal.DurableRecordCount;

    /// <summary>Inputs whose fill failed (<see cref="EventKind.Void"/>): skipped by the journal and the logic.</summary>
    public long VoidInputs => _logicHandler.VoidSkipped;

    /// <summary>
    /// Phase one: opens (or creates) the journal in <see cref="EngineOptions.DataDirectory"/> and rebuilds the state from
    /// it, with no thread started: the genesis configuration, then every event replayed into a fresh logic, its outputs
    /// to <see cref="EngineOptions.ReplaySink"/> (the derived views). A new journal starts from <paramref name="config"/>;
    /// an existing one from its own genesis record. Producers may publish from here on (their inputs wait in the ring);
    /// <see cref="Run"/> starts the engine. This is the seam where a snapshot (state plus a journal tail) or a standby
    /// (applying what a primary journals) will build the state instead of a whole-journal replay.
    /// </summary>
    public static SwitchEngine Recover(EngineOptions options, SwitchConfig config) => Recover(options, config, genesisRecord: null);

    /// <param name="genesisRecord">The genesis record a new journal begins with (a standby's: its primary's, byte for
    /// byte); null: made from <paramref name="config"/>.</param>
    private static SwitchEngine Recover(EngineOptions options, SwitchConfig config, byte[]? genesisRecord)
    {
        options.Validate();
        ConfigValidator.Validate(config);
        DirectorySync.CreateDirectory(options.DataDirectory);
        // The genesis record holds the whole configuration: allow it up to 256 KiB (ring events stay under 512 bytes).
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        EventJournal journal = OpenJournal(options.DataDirectory, options.JournalSegmentBytes);
        ITransactionArchive? archive = null;
        try
        {
            var phases = new RecoveryPhases { JournalOpenMs = ElapsedMs(started) };
            IOutputSink replaySink = options.ReplaySink ?? new DiscardingSink();
            string archiveDirectory = Path.Combine(options.DataDirectory, "archive");
            var skipped = new List<string>();
            ReplayVisitor? replay = null;
            SnapshotPosition? from = null;
            string? snapshotPath = null;
            byte[]? views = null;
            RestoreCost? restoreCost = null;
            FileReadahead? journalReadahead = null;
            if (options.Snapshots.Enabled)
            {
                // The newest snapshot that is whole, of this build's format, consistent with the journal and with the
                // archive's checkpoint; each one that is not is reported, set aside, and the next older tried.
                foreach ((long _, string path) in new SnapshotStore(options.DataDirectory).List())
                {
                    try
                    {
                        (archive, replay, from, views) = RestoreSnapshot(path, journal, options, archiveDirectory, replaySink, ref phases, out restoreCost,
                            out journalReadahead);
                        // The host's derived views too: views that no longer fit what is on disk (files lost since) are an
                        // InvalidDataException like a damaged file; the host has undone what it took, and an older one is tried.
                        options.RestoreViews?.Invoke(views!);
                        snapshotPath = path;
                        break;
                    }
                    catch (Exception e) when (e is InvalidDataException or IOException or FASTER.core.FasterException or InvalidOperationException or FormatException)
                    {
                        archive?.Dispose();
                        archive = null;
                        journalReadahead?.Dispose();
                        journalReadahead = null;
                        replay = null; // a snapshot that restored and whose views then did not fit
                        from = null;
                        views = null;
                        restoreCost = null;
                        skipped.Add($"{Path.GetFileName(path)}: {e.Message}");
                        SnapshotStore.SetAside(path);
                    }
                }
            }
            long records;
            long replayStarted = System.Diagnostics.Stopwatch.GetTimestamp();
            if (replay is not null)
            {
                using (journalReadahead) records = journal.Replay(replay, from!.Value.RecordAddress, from.Value.RecordNo);
            }
            else
            {
                // After the journal's lock is held (one writer per directory): the archive is derived, rebuilt by the replay.
                archive = FasterTransactionArchive.Create(archiveDirectory, options.Archive, options.Snapshots.NewWritePacer());
                ITransactionArchive created = archive;
                replay = new ReplayVisitor(c => new SwitchLogic(c, replaySink, created) { VerifyInvariants = options.VerifyInvariants }, options.OnReplayProgress, options.ReplayProgressIntervalMs);
                if (journal.RetiredRecords > 0)
                {
                    // No snapshot to start from and the history's start retired: it is replayed from the journal's archive.
                    string archived = SnapshotStore.JournalArchiveDirectory(options.DataDirectory);
                    long found = JournalArchive.Replay(archived, replay);
                    if (found != journal.RetiredRecords)
                    {
                        throw new InvalidDataException($"journal: records 0 to {journal.RetiredRecords - 1} were retired to {archived}, which holds {found} " +
                            $"and no snapshot is usable ({(skipped.Count == 0 ? "none found" : string.Join("; ", skipped))}): restore the archive's files " +
                            "or a snapshot (its .snap and .archive files, with the archive/ directory it was taken with)");
                    }
                }
                records = journal.Replay(replay);
            }
            phases.ReplayMs = ElapsedMs(replayStarted);
            SwitchLogic logic;
            bool configFromJournal = replay.Logic is not null;
            long lastRecordNo = replay.LastRecordNo, lastRecordAddress = replay.LastRecordAddress;
            if (replay.Logic is null)
            {
                if (records != 0) throw new InvalidDataException("journal: records present but no genesis");
                // Clearing files come from a journal's transactions: with them and no journal, the journal was lost, and a
                // new one would hand out transaction ids again from 1.
                if (ClearingFiles.FirstBatchDirectory(options.DataDirectory) is { } batch)
                {
                    throw new InvalidDataException($"data directory {Path.GetFullPath(options.DataDirectory)} holds clearing files ({batch}) but its journal is empty or missing: the journal was lost (a power cut on storage that did not keep it?); restore it, the switch will not start a new journal here");
                }
                byte[] genesis = genesisRecord ?? EventCodec.EncodeGenesis(config.ToJsonUtf8());
                if (genesis.Length > MaxGenesisBytes)
                {
                    throw new ConfigException($"configuration: {genesis.Length} bytes as JSON, more than the {MaxGenesisBytes} the journal takes");
                }
                lastRecordAddress = journal.Append(genesis);
                lastRecordNo = 0;
                journal.Commit();
                logic = new SwitchLogic(config, new DiscardingSink(), archive);
            }
            else
            {
                logic = replay.Logic;
            }
            bool configDiffers = configFromJournal && !config.ToJsonUtf8().AsSpan().SequenceEqual(replay.GenesisConfig!.ToJsonUtf8());
            var recovery = new RecoveryReport(records, replay.EventsReplayed, configFromJournal, configDiffers,
                logic.Transactions.LastId, logic.VerifyUnresolved(), journal.TornTailCut, replay.MaxCorrelationId)
            {
                SnapshotPath = snapshotPath,
                Snapshot = from,
                SnapshotsSkipped = skipped,
                RecordsAdopted = journal.AdoptedRecords,
                RecoveryMs = ElapsedMs(started),
                Phases = phases,
                SnapshotRestore = restoreCost,
            };
            return new SwitchEngine(options, journal, archive, logic, recovery, lastRecordNo, lastRecordAddress);
        }
        catch
        {
            archive?.Dispose();
            journal.Dispose();
            throw;
        }
    }

    /// <summary>The live journal, for read-only scans beside the writer (<see cref="DecisionReplay"/>).</summary>
    internal EventJournal Journal => _journal;
    internal string DataDirectory => _options.DataDirectory;

    /// <summary>
    /// A logic and archive as one snapshot left them, checked before anything is trusted: the file (format, layout,
    /// checksum), the journal holding the snapshot's last record where it says, the archive's checkpoint recovering, the
    /// restored state consistent with itself. Throws for any of these (the caller tries an older one). The derived views
    /// are returned for the host.
    /// </summary>
    private static long ElapsedMs(long startedTimestamp) => (long)System.Diagnostics.Stopwatch.GetElapsedTime(startedTimestamp).TotalMilliseconds;

    private static (ITransactionArchive Archive, ReplayVisitor Replay, SnapshotPosition Position, byte[] Views) RestoreSnapshot(string path,
        EventJournal journal, EngineOptions options, string archiveDirectory, IOutputSink replaySink, ref RecoveryPhases phases, out RestoreCost cost,
        out FileReadahead? journalReadahead)
    {
        journalReadahead = null;
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        MachineCounters countersBefore = MachineCounters.Read();
        using SnapshotFile.Opened opened = SnapshotFile.Open(path, readAhead: true);
        SnapshotPosition position = opened.Position;
        if (!journal.HoldsRecord(position.RecordAddress, position.RecordNo))
            throw new InvalidDataException($"the journal holds no record {position.RecordNo} at address {position.RecordAddress} (a snapshot of another journal?)");
        string token = SnapshotStore.ArchiveToken(path) ?? throw new InvalidDataException($"no archive checkpoint file ({SnapshotFile.ArchiveExtension})");
        FasterTransactionArchive archive = FasterTransactionArchive.StartOpenAtCheckpoint(archiveDirectory, options.Archive, token, options.Snapshots.NewWritePacer());
        phases.ArchiveOpenMs += ElapsedMs(started);
        var replayed = new StrongBox<ReplayVisitor?>();
        try
        {
            // The replay's journal after the snapshot is read ahead beside the restore, then ahead of the replay. Started
            // inside the try: a restore that fails stops it (its reader would never come, and it would wait for it).
            journalReadahead = new FileReadahead(journal.SegmentsFrom(position.RecordAddress)
                .Take(FileReadahead.MaxPieces)
                .Select(s => new FileReadahead.Piece(s.Path, s.From, s.To,
                    () => s.From + (Volatile.Read(ref replayed.Value)?.LastRecordAddress ?? position.RecordAddress) - s.Address))
                .ToList());
            long restoreStarted = System.Diagnostics.Stopwatch.GetTimestamp();
            SwitchLogic logic = SwitchLogic.Restore(opened.Config, opened.State, opened.Arrays, replaySink, archive, out RestoreTimes times);
            byte[] views = opened.Arrays.ReadViews();
            opened.Arrays.VerifyEnd();
            cost = new RestoreCost(opened.Arrays.BytesRead, opened.Arrays.ReadUs, times.PrefaultUs, times.PrefaultBytes,
                times.PrefaultRegionBytes, times.IndexRebuildUs, MachineCounters.Read().Since(countersBefore)) { ReadaheadBytes = opened.ReadaheadBytes };
            logic.VerifyUnresolved(); // the restored table recounted against every bank's count
            logic.VerifyInvariants = options.VerifyInvariants;
            phases.StateRestoreMs += ElapsedMs(restoreStarted);
            long waitStarted = System.Diagnostics.Stopwatch.GetTimestamp();
            archive.CompleteRecovery(); // recovering since it was opened, beside the state's restore
            phases.ArchiveWaitMs += ElapsedMs(waitStarted);
            replayed.Value = ReplayVisitor.After(logic, opened.Config, position, options.OnReplayProgress, options.ReplayProgressIntervalMs);
            return (archive, replayed.Value, position, views);
        }
        catch
        {
            archive.Dispose();
            journalReadahead?.Dispose();
            journalReadahead = null;
            throw;
        }
    }

    /// <summary>The business state. Read it only while the engine is stopped or quiescent (tests, tools).</summary>
    public SwitchLogic Logic { get; }
    public RecoveryReport Recovery { get; }
    public int InputCapacity => _input.BufferSize;
    /// <summary>The highest input sequence journaled and committed.</summary>
    public long DurableSequence => _journaler.Sequence.Value;
    /// <summary>The highest input sequence applied by the business logic.</summary>
    public long AppliedSequence => _logicProcessor.Sequence.Value;
    public long PublishedSequence => _input.Cursor;
    public int OutputCapacity => _output.BufferSize;
    /// <summary>Outputs the logic has published; those not yet handed out are <see cref="OutputHandedOutSequence"/> behind.</summary>
    public long OutputPublishedSequence => _output.Cursor;
    public long OutputHandedOutSequence => _outputProcessor?.Sequence.Value ?? -1;
    /// <summary>Times the logic woke a sleeping output thread (blocking wait only; 0 otherwise): at most once per logic
    /// batch (see <see cref="OutputRingSink"/>).</summary>
    public long OutputWakes => (_outputWait as BlockingWaitStrategy)?.Pulses ?? 0;
    /// <summary>Group commits of the journal in this life: each lets the logic apply one batch (or fewer, when it lags).</summary>
    public long JournalCommits => _journalHandler.Commits;
    /// <summary>Archive look-ups of transactions that left memory, which read the disk (0 without a disk archive).</summary>
    public long ArchiveDiskReads => (_archive as FasterTransactionArchive)?.DiskReads ?? 0;
    /// <summary>The journal's device writes outstanding (the stall watchdog's view; null on another device).</summary>
    public DeviceActivity? JournalDeviceWrites => _journal.DeviceWrites;
    /// <summary>The archive's writer thread: the last write applied, and the writes handed over not yet applied (a whole
    /// ring of them makes the logic wait); 0 and 0 without one.</summary>
    public long ArchiveWriterApplied => (_archive as FasterTransactionArchive)?.WriterApplied ?? 0;
    public long ArchiveWriterLag => (_archive as FasterTransactionArchive)?.WriterLag ?? 0;
    /// <summary>The archive's log device writes outstanding (null without a disk archive).</summary>
    public DeviceActivity? ArchiveDeviceWrites => (_archive as FasterTransactionArchive)?.DeviceWrites;
    /// <summary>Look-ups that reached the archive's store (past its in-memory filter).</summary>
    public long ArchiveStoreLookups => (_archive as FasterTransactionArchive)?.StoreLookups ?? 0;
    /// <summary>What stopped the engine, if anything did. A stopped engine accepts nothing more.</summary>
    /// <summary>The clock that stamps events (the journaler's too): adapters express times the engine compares in it.</summary>
    public IClock Clock => _options.Clock;

    public Exception? Fault => _journaler.Fault ?? _gateProcessor?.Fault ?? _logicProcessor.Fault ?? _outputProcessor?.Fault
        ?? (_input.IsHalted ? _input.HaltReason : null) ?? (_output.IsHalted ? _output.HaltReason : null);

    /// <summary>Claims an input slot, waiting while the ring is full (back pressure). Fill it, then <see cref="Publish"/>.
    /// A following or fenced engine refuses (<see cref="ReplicationRefusedException"/>: NOT_PRIMARY, FENCED).</summary>
    public long Claim()
    {
        RequirePrimary();
        return _input.Next();
    }

    /// <summary>Claims <paramref name="count"/> consecutive slots (waiting while full); returns the highest. Publish with
    /// <see cref="Publish(long, long)"/>: one claim and one publish per batch instead of per event.</summary>
    public long Claim(int count)
    {
        RequirePrimary();
        return _input.Next(count);
    }

    private void RequirePrimary()
    {
        int role = _role;
        if (role == RolePrimary) return;
        throw role == RoleFenced
            ? new ReplicationRefusedException(ReplicationRefusal.Fenced, "this engine is fenced: it takes nothing more")
            : new ReplicationRefusedException(ReplicationRefusal.NotPrimary, "this engine follows a primary: it takes no inputs of its own");
    }

    /// <summary>Stamps and publishes a claimed range of filled slots.</summary>
    public void Publish(long lo, long hi)
    {
        long nowUs = _options.Clock.NowUs();
        for (long s = lo; s <= hi; s++)
        {
            _input[s].TimestampUs = nowUs;
        }
        _input.Publish(lo, hi);
    }

    /// <summary>Claims an input slot or returns false at once when the ring is full (the caller answers RESOURCE_EXHAUSTED).</summary>
    public bool TryClaim(out long sequence)
    {
        RequirePrimary();
        return _input.TryNext(out sequence);
    }

    /// <summary>Claims <paramref name="count"/> consecutive slots or returns false at once when the ring lacks room; the
    /// highest is <paramref name="highSequence"/>. Publish with <see cref="Publish(long, long)"/>.</summary>
    public bool TryClaim(int count, out long highSequence)
    {
        RequirePrimary();
        return _input.TryNext(count, out highSequence);
    }

    /// <summary>The claimed slot, reset, ready to fill.</summary>
    public ref InputEvent Slot(long sequence)
    {
        ref InputEvent slot = ref _input[sequence];
        slot.Reset();
        return ref slot;
    }

    /// <summary>The claimed slot as it is: for fills that start with a Prepare method (which resets it).</summary>
    internal ref InputEvent SlotUnreset(long sequence) => ref _input[sequence];

    /// <summary>Stamps the time and publishes a claimed, filled slot.</summary>
    public void Publish(long sequence)
    {
        _input[sequence].TimestampUs = _options.Clock.NowUs();
        _input.Publish(sequence);
    }

    /// <summary>Copies a whole event in (convenient for tests and tools; adapters fill slots in place).</summary>
    public long Publish(in InputEvent e)
    {
        long sequence = Claim();
        _input[sequence] = e;
        Publish(sequence);
        return sequence;
    }

    /// <summary>Publishes a tick now (tests and tools; the engine's ticker publishes only when one is due). Never
    /// waits: false if the ring is full (the next one will do) or the engine stopped.</summary>
    public bool PublishTick()
    {
        if (Volatile.Read(ref _disposed) != 0 || _input.IsHalted || _role != RolePrimary)
        {
            return false;
        }
        if (!_input.TryNext(out long sequence)) return false;
        _input[sequence].PrepareTick();
        Publish(sequence);
        return true;
    }

    /// <summary>
    /// The ticker: a tick goes into the journal only when the logic has something due by now (a deadline, a follow-up, a
    /// ramp step, a breaker half-open, a scheduled close, a day's start: <see cref="SwitchLogic.NextTickDueUs"/>) and no
    /// tick is already on its way. An idle switch then journals nothing (it journaled 100 ticks a second, 311 MB a day).
    /// </summary>
    private void TickIfDue()
    {
        if (_options.Clock.NowUs() < _logicHandler.NextTickDueUs || !_logicHandler.TryStartTick()) return;
        if (!PublishTick()) _logicHandler.TickNotPublished();
    }

    /// <summary>Wakes the logic thread with nothing to apply (<see cref="EventKind.Nudge"/>); never waits.</summary>
    private void PublishNudge()
    {
        if (Volatile.Read(ref _disposed) != 0 && _outputProcessor is null) return;
        if (_input.IsHalted) return;
        if (_input.TryNext(out long sequence))
        {
            _input[sequence].PrepareNudge();
            _input.Publish(sequence);
        }
    }

    /// <summary>Waits until everything published so far is applied and handed out. False on timeout or fault.</summary>
    public bool WaitUntilIdle(int timeoutMs)
    {
        long target = _input.Cursor;
        var deadline = Environment.TickCount64 + timeoutMs;
        var spin = new SpinWait();
        while (Environment.TickCount64 < deadline)
        {
            if (Fault is not null)
            {
                return false;
            }
            if (_outputProcessor is null)
            {
                return _input.Cursor == _logicProcessor.Sequence.Value; // not running: idle only with nothing published
            }
            if (_logicProcessor.Sequence.Value >= target && _outputProcessor.Sequence.Value >= _output.Cursor)
            {
                return true;
            }
            spin.SpinOnce(sleep1Threshold: 20);
        }
        return false;
    }

    /// <summary>Stops accepting ticks, drains what was accepted (bounded), stops the threads, closes the journal.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _ticker?.Dispose();
        _snapshotSchedule?.Dispose();
        if (_outputProcessor is not null)
        {
            // A gate that holds (fenced, or no standby acknowledging) lets nothing drain: what it holds was journaled and
            // is applied at the next start.
            if (_gate?.Holding != true)
            {
                TakeStopSnapshot();
                WaitUntilIdle(_options.DrainTimeoutMs);
            }
            _gate?.Stop();
            _journaler.Halt();
            _gateProcessor?.Halt();
            _logicProcessor.Halt();
            _outputProcessor.Halt();
        }
        // Generous: a thread may be inside an fsync, which a busy disk can hold for seconds.
        foreach (Thread t in _threads)
        {
            if (!t.Join(TimeSpan.FromSeconds(30)))
            {
                throw new InvalidOperationException($"engine: thread {t.Name} did not stop");
            }
        }
        if (_warmUp is not null && !_warmUp.Join(TimeSpan.FromSeconds(30))) throw new InvalidOperationException("engine: the snapshot warm-up did not finish");
        if (_asideReserve is not null && !_asideReserve.Join(TimeSpan.FromSeconds(30))) throw new InvalidOperationException("engine: the copy-aside reserve was not filled");
        _asideReserved.Dispose();
        _snapshots?.Stop();
        _journal.Dispose();
        _archive.Dispose();
    }

    /// <summary>A graceful stop's snapshot, taken while the threads still run (the output side records its views at the
    /// mark), so the next start replays nothing. A failure is told and the stop goes on: the journal has everything.</summary>
    private void TakeStopSnapshot()
    {
        if (_snapshots is null || !_options.Snapshots.AtStop || Fault is not null) return;
        try
        {
            Task<SnapshotResult> stop = _snapshots.RequestAsync("stop");
            if (!stop.Wait(_options.Snapshots.StopTimeoutMs))
                _options.OnSnapshotFailed?.Invoke(new TimeoutException($"snapshots: the stop's snapshot took more than {_options.Snapshots.StopTimeoutMs} ms"));
        }
        catch (AggregateException)
        {
            // Told by the snapshotter already (OnSnapshotFailed).
        }
    }

    internal static EventJournal OpenJournal(string dataDirectory, long segmentBytes = EngineOptions.DefaultJournalSegmentBytes) => EventJournal.Open(new JournalOptions
    {
        DirectoryPath = Path.Combine(dataDirectory, "journal"),
        MaxRecordBytes = MaxGenesisBytes,
        SegmentSizeBytes = segmentBytes,
        // A page never spans segments: small segments (tests) take pages as small.
        PageSizeBytes = (int)Math.Min(1L << 20, segmentBytes),
        MemorySizeBytes = Math.Max(8L << 20, 2 * Math.Min(1L << 20, segmentBytes)),
    });

    private sealed class DiscardingOutputHandler : IEventHandler<OutputEvent>
    {
        public void OnEvent(ref OutputEvent evt, long sequence, bool endOfBatch) { }
    }
}

/// <summary>What recovery found: the adapters print it at start.</summary>
/// <param name="JournalRecords">Records in the journal, genesis included.</param>
/// <param name="EventsReplayed">Input events applied during replay.</param>
/// <param name="ConfigFromJournal">The engine runs on the journal's genesis configuration, not the one given.</param>
/// <param name="ConfigDiffers">The given configuration differs from the journal's (change it with operator events).</param>
/// <param name="LastTransactionId">The last transaction id issued.</param>
/// <param name="Unresolved">Transactions not final after replay: their deadlines and queries resume on ticks.</param>
/// <param name="TornTail">The torn tail the journal cut off at this start (records of the last commit that did not
/// survive on disk intact), or null if it ended cleanly.</param>
/// <param name="LastCorrelationId">The highest correlation id of any journaled event. A recovered transaction still
/// answers to the correlation id of the request that made it, from an earlier life of the process: the adapters number
/// this life's callers above it, so such an answer can never reach a caller it was not meant for.</param>
public sealed record RecoveryReport(long JournalRecords, long EventsReplayed, bool ConfigFromJournal, bool ConfigDiffers,
    long LastTransactionId, long Unresolved, JournalTailCut? TornTail = null, long LastCorrelationId = 0)
{
    /// <summary>The snapshot the state started from (then <see cref="EventsReplayed"/> counts the journal after it), or null.</summary>
    public string? SnapshotPath { get; init; }
    public SnapshotPosition? Snapshot { get; init; }
    /// <summary>Snapshots found unusable and set aside (renamed .skipped), newest first, each with why.</summary>
    public IReadOnlyList<string> SnapshotsSkipped { get; init; } = [];
    /// <summary>Records of group commits after the journal's newest commit slot, found whole on disk by reading on from
    /// it and kept (their commits had returned, or their writes had finished: none is lost).</summary>
    public long RecordsAdopted { get; init; }
    /// <summary>From opening the journal to the state rebuilt.</summary>
    public long RecoveryMs { get; init; }
    /// <summary>Where <see cref="RecoveryMs"/> went.</summary>
    public RecoveryPhases Phases { get; init; }
    /// <summary>What the snapshot's restore read and waited on (null without a snapshot): why a start was slow.</summary>
    public RestoreCost? SnapshotRestore { get; init; }
}

/// <summary>Recovery's parts, in milliseconds: what an operator needs to see when a restart is slower than it was.</summary>
/// <remarks>Snapshots tried and skipped add their archive opening and restoring to the same fields.</remarks>
public record struct RecoveryPhases
{
    /// <summary>Opening the journal: its manifest, commits, segments, and the scan for a torn tail.</summary>
    public long JournalOpenMs { get; set; }
    /// <summary>Reading the snapshot's header and opening the FASTER archive at its checkpoint (its recovery then runs
    /// on another thread while the state is restored).</summary>
    public long ArchiveOpenMs { get; set; }
    /// <summary>Waiting, after the state's restore, for the archive's recovery to finish.</summary>
    public long ArchiveWaitMs { get; set; }
    /// <summary>The logic's state read from the snapshot: tables, indexes rebuilt, counts verified.</summary>
    public long StateRestoreMs { get; set; }
    /// <summary>The journal's records after the snapshot (or all of them) applied.</summary>
    public long ReplayMs { get; set; }
}

/// <summary>Rebuilds the logic from a stopped engine's journal with its outputs going to a sink of the caller's
/// choosing: replay checks, audits, tools.</summary>
public static class JournalReplay
{
    /// <summary>The whole history: the journal's archive (records retired after snapshots), then the live journal.</summary>
    public static SwitchLogic Run(string dataDirectory, IOutputSink sink, Action<long, SwitchLogic>? afterRecord = null,
        long segmentBytes = EngineOptions.DefaultJournalSegmentBytes)
    {
        using EventJournal journal = SwitchEngine.OpenJournal(dataDirectory, segmentBytes);
        var replay = new ReplayVisitor(c => new SwitchLogic(c, sink)) { AfterRecord = afterRecord };
        long archived = JournalArchive.Replay(SnapshotStore.JournalArchiveDirectory(dataDirectory), replay);
        if (archived != journal.RetiredRecords)
            throw new InvalidDataException($"journal: its archive holds records 0 to {archived - 1}, the live journal begins at record {journal.RetiredRecords}");
        journal.Replay(replay);
        return replay.Logic ?? throw new InvalidDataException("journal: empty, no genesis record");
    }
}
