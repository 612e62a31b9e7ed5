using Switch.Engine.Archive;
using Switch.Engine.Business;
using Switch.Engine.Clearing;
using Switch.Engine.Events;
using Switch.Journal;
using Switch.Ring;

namespace Switch.Engine.Pipeline;

/// <summary>
/// The running engine: producers → input ring → journaler (group commit) → business logic (one thread) →
/// output ring → the adapters' output handler. Start recovers from the journal in the data directory: the
/// genesis configuration, then every event replayed into a fresh logic with outputs discarded; then it runs.
/// </summary>
public sealed class SwitchEngine : IDisposable
{
    /// <summary>Largest configuration the journal takes as its genesis record.</summary>
    public const int MaxGenesisBytes = 256 * 1024;

    private readonly EngineOptions _options;
    private readonly EventJournal _journal;
    private readonly ITransactionArchive _archive;
    private readonly RingBuffer<InputEvent> _input;
    private readonly RingBuffer<OutputEvent> _output;
    private readonly BatchEventProcessor<InputEvent, JournalHandler> _journaler;
    private readonly BatchEventProcessor<InputEvent, LogicHandler> _logicProcessor;
    private readonly LogicHandler _logicHandler;
    private BatchEventProcessor<OutputEvent, IEventHandler<OutputEvent>>? _outputProcessor;
    private Thread[] _threads = [];
    private Timer? _ticker;
    private int _disposed;

    private SwitchEngine(EngineOptions options, EventJournal journal, ITransactionArchive archive, SwitchLogic logic,
        RecoveryReport recovery)
    {
        _options = options;
        _journal = journal;
        _archive = archive;
        Logic = logic;
        Recovery = recovery;
        _input = RingBuffer<InputEvent>.CreateMultiProducer(options.InputRingSize, NewWait());
        _output = RingBuffer<OutputEvent>.CreateSingleProducer(options.OutputRingSize, NewWait());

        _journaler = new BatchEventProcessor<InputEvent, JournalHandler>(
            _input, _input.NewBarrier(), new JournalHandler(journal, options.Clock, options.CrashPoint, options.CommitObserver), options.MaxBatchSize);
        // The logic sleeps on its own strategy, woken by the journaler's commits, not by every producer's publish.
        _logicHandler = new LogicHandler(logic);
        _logicProcessor = new BatchEventProcessor<InputEvent, LogicHandler>(
            _input, _input.NewBarrier(NewWait(), _journaler.Sequence), _logicHandler, options.MaxBatchSize);
        _input.AddGatingSequences(_logicProcessor.Sequence);
        logic.SetSink(new OutputRingSink(_output));
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
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_outputProcessor is not null) throw new InvalidOperationException("engine: Run twice");
        var output = new BatchEventProcessor<OutputEvent, IEventHandler<OutputEvent>>(
            _output, _output.NewBarrier(), outputHandler ?? new DiscardingOutputHandler(), _options.OutputRingSize);
        _output.AddGatingSequences(output.Sequence);
        _outputProcessor = output;
        _threads =
        [
            output.Start("switch-output"),
            _logicProcessor.Start("switch-logic"),
            _journaler.Start("switch-journal"),
        ];
        if (_options.TickIntervalMs > 0)
        {
            _ticker = new Timer(_ => PublishTick(), null, _options.TickIntervalMs, _options.TickIntervalMs);
        }
    }

    /// <summary>True once <see cref="Run"/> has started the threads.</summary>
    public bool Running => _outputProcessor is not null;

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
    public static SwitchEngine Recover(EngineOptions options, SwitchConfig config)
    {
        options.Validate();
        ConfigValidator.Validate(config);
        DirectorySync.CreateDirectory(options.DataDirectory);
        // The genesis record holds the whole configuration: allow it up to 256 KiB (ring events stay under 512 bytes).
        EventJournal journal = OpenJournal(options.DataDirectory);
        ITransactionArchive? archive = null;
        try
        {
            // After the journal's lock is held (one writer per directory): the archive is derived, rebuilt by the replay.
            archive = FasterTransactionArchive.Create(Path.Combine(options.DataDirectory, "archive"), options.Archive);
            IOutputSink replaySink = options.ReplaySink ?? new DiscardingSink();
            var replay = new ReplayVisitor(c => new SwitchLogic(c, replaySink, archive) { VerifyInvariants = options.VerifyInvariants }, options.OnReplayProgress, options.ReplayProgressIntervalMs);
            long records = journal.Replay(replay);
            SwitchLogic logic;
            bool configFromJournal = replay.Logic is not null;
            if (replay.Logic is null)
            {
                if (records != 0) throw new InvalidDataException("journal: records present but no genesis");
                // Clearing files come from a journal's transactions: with them and no journal, the journal was lost, and a
                // new one would hand out transaction ids again from 1.
                if (ClearingFiles.FirstBatchDirectory(options.DataDirectory) is { } batch)
                {
                    throw new InvalidDataException($"data directory {Path.GetFullPath(options.DataDirectory)} holds clearing files ({batch}) but its journal is empty or missing: the journal was lost (a power cut on storage that did not keep it?); restore it, the switch will not start a new journal here");
                }
                byte[] genesis = EventCodec.EncodeGenesis(config.ToJsonUtf8());
                if (genesis.Length > MaxGenesisBytes)
                {
                    throw new ConfigException($"configuration: {genesis.Length} bytes as JSON, more than the {MaxGenesisBytes} the journal takes");
                }
                journal.Append(genesis);
                journal.Commit();
                logic = new SwitchLogic(config, new DiscardingSink(), archive);
            }
            else
            {
                logic = replay.Logic;
            }
            bool configDiffers = configFromJournal && !config.ToJsonUtf8().AsSpan().SequenceEqual(replay.GenesisConfig!.ToJsonUtf8());
            var recovery = new RecoveryReport(records, replay.EventsReplayed, configFromJournal, configDiffers,
                logic.Transactions.LastId, CountUnresolved(logic), journal.TornTailCut, replay.MaxCorrelationId);
            return new SwitchEngine(options, journal, archive, logic, recovery);
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
    /// <summary>Archive look-ups of transactions that left memory, which read the disk (0 without a disk archive).</summary>
    public long ArchiveDiskReads => (_archive as FasterTransactionArchive)?.DiskReads ?? 0;
    /// <summary>Look-ups that reached the archive's store (past its in-memory filter).</summary>
    public long ArchiveStoreLookups => (_archive as FasterTransactionArchive)?.StoreLookups ?? 0;
    /// <summary>What stopped the engine, if anything did. A stopped engine accepts nothing more.</summary>
    /// <summary>The clock that stamps events (the journaler's too): adapters express times the engine compares in it.</summary>
    public IClock Clock => _options.Clock;

    public Exception? Fault => _journaler.Fault ?? _logicProcessor.Fault ?? _outputProcessor?.Fault
        ?? (_input.IsHalted ? _input.HaltReason : null) ?? (_output.IsHalted ? _output.HaltReason : null);

    /// <summary>Claims an input slot, waiting while the ring is full (back pressure). Fill it, then <see cref="Publish"/>.</summary>
    public long Claim() => _input.Next();

    /// <summary>Claims <paramref name="count"/> consecutive slots (waiting while full); returns the highest. Publish with
    /// <see cref="Publish(long, long)"/>: one claim and one publish per batch instead of per event.</summary>
    public long Claim(int count) => _input.Next(count);

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
    public bool TryClaim(out long sequence) => _input.TryNext(out sequence);

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
        long sequence = _input.Next();
        _input[sequence] = e;
        Publish(sequence);
        return sequence;
    }

    public void PublishTick()
    {
        if (Volatile.Read(ref _disposed) != 0 || _input.IsHalted)
        {
            return;
        }
        // A tick never waits: if the ring is full, the next one will do.
        if (_input.TryNext(out long sequence))
        {
            _input[sequence].PrepareTick();
            Publish(sequence);
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
        if (_outputProcessor is not null)
        {
            WaitUntilIdle(_options.DrainTimeoutMs);
            _journaler.Halt();
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
        _journal.Dispose();
        _archive.Dispose();
    }

    internal static EventJournal OpenJournal(string dataDirectory) => EventJournal.Open(new JournalOptions
    {
        DirectoryPath = Path.Combine(dataDirectory, "journal"),
        MaxRecordBytes = MaxGenesisBytes,
    });

    private static long CountUnresolved(SwitchLogic logic)
    {
        logic.StateHash(); // recounts each bank's unresolved transactions against its count (throws if they differ)
        long count = 0;
        foreach (Bank bank in logic.Banks) count += bank.Unresolved;
        return count;
    }

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
    long LastTransactionId, long Unresolved, JournalTailCut? TornTail = null, long LastCorrelationId = 0);

/// <summary>Rebuilds the logic from a stopped engine's journal with its outputs going to a sink of the caller's
/// choosing: replay checks, audits, tools.</summary>
public static class JournalReplay
{
    public static SwitchLogic Run(string dataDirectory, IOutputSink sink)
    {
        using EventJournal journal = SwitchEngine.OpenJournal(dataDirectory);
        var replay = new ReplayVisitor(c => new SwitchLogic(c, sink));
        journal.Replay(replay);
        return replay.Logic ?? throw new InvalidDataException("journal: empty, no genesis record");
    }
}
