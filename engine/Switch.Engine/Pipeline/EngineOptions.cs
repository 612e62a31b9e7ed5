namespace Switch.Engine.Pipeline;

public enum WaitKind
{
    /// <summary>Threads sleep on a lock when idle: right for shared machines and a switch that is often quiet.</summary>
    Blocking,
    /// <summary>Spin then yield: lowest latency under steady load, burns a core per consumer when idle.</summary>
    Yielding,
    BusySpin,
}

public sealed record EngineOptions
{
    /// <summary>The journal lives here (created if missing); the same directory on restart recovers.</summary>
    public required string DataDirectory { get; init; }
    /// <summary>Input ring slots (power of two): the bound on events accepted but not yet applied.</summary>
    public int InputRingSize { get; init; } = 1 << 16;
    /// <summary>Output ring slots (power of two): the bound on effects computed but not yet carried out.</summary>
    public int OutputRingSize { get; init; } = 1 << 16;
    /// <summary>Most events per journal group commit and per logic batch.</summary>
    public int MaxBatchSize { get; init; } = 4096;
    public WaitKind Wait { get; init; } = WaitKind.Blocking;
    /// <summary>How often a tick event is published (deadlines fire on ticks); 0 = none (tests publish their own).</summary>
    public int TickIntervalMs { get; init; } = 10;
    /// <summary>The time stamped on events; replaced in tests for determinism.</summary>
    public IClock Clock { get; init; } = SystemClock.Instance;
    /// <summary>
    /// Receives the outputs recomputed while the journal is replayed at start (default: discarded). Effects were
    /// carried out before the restart; a host uses this only to rebuild derived views, such as outcome feeds.
    /// </summary>
    public Business.IOutputSink? ReplaySink { get; init; }
    /// <summary>Memory and disk of the archive of transactions that left the retained table (under DataDirectory/archive).</summary>
    public Archive.ArchiveSizing Archive { get; init; } = new();
    /// <summary>How long Dispose waits for accepted events to be journaled, applied and handed out.</summary>
    public int DrainTimeoutMs { get; init; } = 10_000;
    /// <summary>Called during the replay at start every <see cref="ReplayProgressIntervalMs"/> (a long recovery says how
    /// far it is instead of nothing); null: silent. Runs on the replaying thread: keep it short.</summary>
    public Action<ReplayProgress>? OnReplayProgress { get; init; }
    public int ReplayProgressIntervalMs { get; init; } = 5_000;
    /// <summary>Told each group commit's duration in Stopwatch ticks and its event count, on the journal thread (a
    /// metrics histogram; must not block or allocate). Null: not measured.</summary>
    public ICommitObserver? CommitObserver { get; init; }
    /// <summary>After every applied event the logic recounts its state and stops the engine on a broken invariant
    /// (<see cref="Business.SwitchLogic.VerifyInvariants"/>): O(retained transactions) an event, for tests and simulations.</summary>
    public bool VerifyInvariants { get; init; }
    /// <summary>The journal's segment files (FasterLog's): retention frees whole segments. Fixed when the journal is made
    /// (a journal opened with another size is refused); tests use small ones to see segments leave.</summary>
    public long JournalSegmentBytes { get; init; } = DefaultJournalSegmentBytes;
    public const long DefaultJournalSegmentBytes = 256L << 20;
    /// <summary>Snapshots: when they are taken, how many kept; off by default (every start replays the whole journal).</summary>
    public Snapshots.SnapshotOptions Snapshots { get; init; } = new();
    /// <summary>At a start from a snapshot: its derived views' bytes (what the output side recorded at its mark), before
    /// the journal after it is replayed. Null: the snapshot's views are ignored.</summary>
    public Action<byte[]>? RestoreViews { get; init; }
    /// <summary>Told of each snapshot published, on the writer thread (a log record).</summary>
    public Action<Snapshots.SnapshotResult>? OnSnapshot { get; init; }
    /// <summary>Told of each snapshot that failed, on the thread that found it (a log record); the engine goes on.</summary>
    public Action<Exception>? OnSnapshotFailed { get; init; }
    /// <summary>Replication to a hot standby (this engine as primary; a standby follows with <see cref="SwitchEngine.Follow"/>
    /// and may be promoted): null for a single node, exactly as before (no gate, no cost).</summary>
    public Replication.ReplicationOptions? Replication { get; init; }
    /// <summary>Test hook (null in production): the journaler kills the process at this point of a group commit.</summary>
    public JournalCrashPoint? CrashPoint { get; init; }

    public void Validate()
    {
        Require(!string.IsNullOrWhiteSpace(DataDirectory), nameof(DataDirectory), "required");
        Require(InputRingSize is >= 64 and <= 1 << 24 && (InputRingSize & (InputRingSize - 1)) == 0, nameof(InputRingSize), "a power of two from 64 to 16777216");
        Require(OutputRingSize is >= 64 and <= 1 << 24 && (OutputRingSize & (OutputRingSize - 1)) == 0, nameof(OutputRingSize), "a power of two from 64 to 16777216");
        Require(MaxBatchSize >= 1 && MaxBatchSize <= InputRingSize, nameof(MaxBatchSize), "1 to InputRingSize");
        Require(TickIntervalMs is >= 0 and <= 60_000, nameof(TickIntervalMs), "0 to 60000");
        Require(DrainTimeoutMs is >= 0 and <= 600_000, nameof(DrainTimeoutMs), "0 to 600000");
        Require(ReplayProgressIntervalMs is >= 1 and <= 3_600_000, nameof(ReplayProgressIntervalMs), "1 to 3600000");
        Require(Archive is not null, nameof(Archive), "required");
        Require(JournalSegmentBytes is >= 1L << 16 and <= 1L << 36 && (JournalSegmentBytes & (JournalSegmentBytes - 1)) == 0,
            nameof(JournalSegmentBytes), "a power of two from 65536 to 2^36");
        Require(Snapshots is not null, nameof(Snapshots), "required");
        Snapshots!.Validate();
        Replication?.Validate();
        Archive!.Validate();
    }

    private static void Require(bool ok, string field, string why)
    {
        if (!ok) throw new ArgumentException($"engine options: {field}: {why}");
    }
}
