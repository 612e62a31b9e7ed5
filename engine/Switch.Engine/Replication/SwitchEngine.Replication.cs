using Switch.Engine.Business;
using Switch.Engine.Client;
using Switch.Engine.Events;
using Switch.Engine.Replication;
using Switch.Journal;
using Switch.Ring;

namespace Switch.Engine.Pipeline;

/// <summary>
/// Hot standby, the engine's side. Primary: <see cref="BeginTerm"/>, <see cref="OpenFeed"/> (the journal as a standby
/// reads it), <see cref="StandbyAcknowledged"/> (what the standby holds durable: the replication gate lets the logic
/// see a batch once it is, in synchronous mode), <see cref="Fence"/>, <see cref="AnswerReplica"/> (the handshake).
/// Standby: <see cref="RecoverStandby"/> (an empty journal begins with the primary's genesis), <see cref="Follow"/>,
/// <see cref="ApplyReplicated"/>, <see cref="Promote"/>, and before a start <see cref="TruncateJournal"/>.
/// No transport here: a gRPC stream carries <see cref="ReplicationBatch"/>es one way and durable counts the other.
/// </summary>
public sealed partial class SwitchEngine
{
    /// <summary>The leadership term the logic has applied (0: none yet).</summary>
    public long Term => Logic.Term;

    /// <summary>The newest term this engine journaled, began or accepted from a primary.</summary>
    public long NewestTerm => Volatile.Read(ref _newestTerm);

    /// <summary>True while the engine follows a primary (between <see cref="Follow"/> and <see cref="Promote"/>).</summary>
    public bool Following => _role is RoleFollowing or RolePromoting;

    /// <summary>The replication figures for metrics; null on a single node.</summary>
    public ReplicationStatus? Replication => _gate?.Status();

    /// <summary>
    /// The host takes office: journals term <paramref name="term"/> (above every term before it) as an input event, before
    /// it serves. The logic applies it in order (<see cref="Term"/>); in synchronous mode once the standby holds it.
    /// </summary>
    public void BeginTerm(long term)
    {
        lock (_termLock)
        {
            RequirePrimary();
            long newest = Volatile.Read(ref _newestTerm);
            if (term <= newest) throw new ReplicationRefusedException(ReplicationRefusal.TermStale, $"term {term} is not above term {newest}, the newest this engine holds");
            long sequence = _input.Next();
            _input[sequence].PrepareTerm(term);
            Volatile.Write(ref _newestTerm, term);
            Publish(sequence);
        }
    }

    // ---------------------------------------------------------------- primary

    /// <summary>A reader of the committed journal from record <paramref name="fromRecordNo"/> on, for one standby (after
    /// the handshake said where). Throws <see cref="ReplicationRefusedException"/>: REPLICA_TOO_FAR_BEHIND when those
    /// records were retired to the journal's archive (the standby joins from a snapshot), REPLICA_AHEAD past the journal.</summary>
    public JournalFeed OpenFeed(long fromRecordNo)
    {
        ReplicationOptions replication = RequireReplication();
        JournalCursor from = LocateRecord(fromRecordNo);
        return new JournalFeed(_journal, from, replication.MaxBatchBytes, MaxGenesisBytes, () => Volatile.Read(ref _newestTerm), reached =>
        {
            lock (_hintLock) _feedHint = reached;
        });
    }

    /// <summary>The transport: the standby holds <paramref name="durableRecordCount"/> records durable. In synchronous
    /// mode the gate lets the logic see every batch that ends at or below it.</summary>
    public void StandbyAcknowledged(long durableRecordCount) => (_gate ?? throw NoReplication()).Acknowledge(durableRecordCount);

    /// <summary>The leadership can no longer be trusted (the lease may expire): nothing more passes the gate (no answer,
    /// no bank request, whatever the mode) and producers are refused (FENCED). Only a restart ends it.</summary>
    public void Fence()
    {
        ReplicationGate gate = _gate ?? throw NoReplication();
        _role = RoleFenced;
        gate.Fence();
    }

    /// <summary>Synchronous with policy Degrade: run as asynchronous now (<see cref="ReplicationGate.Degrade"/>): a
    /// primary that takes office with no standby attached need not wait the standby timeout first.</summary>
    public void DegradeReplication(string why) => (_gate ?? throw NoReplication()).Degrade(why);

    /// <summary>The primary's side of the handshake (<see cref="HandshakeAnswer.Decide"/>).</summary>
    public HandshakeAnswer AnswerReplica(ReplicaPosition standby)
    {
        RequireReplication();
        try
        {
            long termStart = Math.Max(_journalHandler.TermStartRecordNo, Volatile.Read(ref _acceptedTermStartRecordNo));
            // Promoted in this life: a tail of the old primary's parts from this journal where the promotion began, which
            // may be before the term record (records of its own can come first).
            long promotedAt = Volatile.Read(ref _promotedAtRecordNo);
            if (promotedAt > 0 && promotedAt <= termStart) termStart = promotedAt;
            return HandshakeAnswer.Decide(standby, _journal.DurableRecordCount, termStart, ChecksumAt);
        }
        catch (ReplicationRefusedException e) when (e.Refusal == ReplicationRefusal.ReplicaTooFarBehind)
        {
            return new HandshakeAnswer(HandshakeVerdict.TooFarBehind, 0, 0, e.Message);
        }
    }

    /// <summary>Record 0, the configuration every journal of this switch begins with: a standby with an empty journal
    /// starts from it (<see cref="RecoverStandby"/>).</summary>
    public byte[] GenesisRecord()
    {
        byte[] frame = ReadFrame(_journal, 0, hint: null);
        return frame.AsSpan(JournalFrames.HeaderBytes).ToArray();
    }

    // ---------------------------------------------------------------- standby

    /// <summary>
    /// <see cref="Recover"/> for a standby: its own journal and snapshots as usual; a new journal begins with
    /// <paramref name="primaryGenesis"/> (<see cref="GenesisRecord"/>) byte for byte, so record 0 is the primary's. An
    /// existing journal begun with another configuration is refused (GENESIS_MISMATCH).
    /// </summary>
    public static SwitchEngine RecoverStandby(EngineOptions options, ReadOnlySpan<byte> primaryGenesis)
    {
        if (!EventCodec.IsGenesis(primaryGenesis)) throw new ReplicationRefusedException(ReplicationRefusal.RecordCorrupt, "the primary's record 0 is not a genesis record");
        SwitchConfig config = SwitchConfig.FromJsonUtf8(primaryGenesis[1..]);
        SwitchEngine engine = Recover(options, config, primaryGenesis.ToArray());
        if (engine.Recovery.ConfigDiffers)
        {
            engine.Dispose();
            throw new ReplicationRefusedException(ReplicationRefusal.GenesisMismatch, $"the journal in {options.DataDirectory} began with another configuration than the primary's: rebuild this standby");
        }
        return engine;
    }

    /// <summary>
    /// Before a start (no engine on the directory): keeps the first <paramref name="keepRecords"/> journal records and
    /// cuts the rest, provided record keepRecords - 1 has <paramref name="lastKeptChecksum"/> (the primary's, from
    /// <see cref="HandshakeAnswer"/>; else REPLICA_DIVERGED and nothing is cut). Snapshots taken past the cut are set
    /// aside at the next start, like any snapshot its journal does not hold. Returns what was cut (null: nothing).
    /// </summary>
    public static JournalTruncation? TruncateJournal(EngineOptions options, long keepRecords, uint lastKeptChecksum)
    {
        using EventJournal journal = OpenJournal(options.DataDirectory, options.JournalSegmentBytes);
        journal.Replay(new CountingVisitor());
        if (keepRecords < 1 || keepRecords > journal.DurableRecordCount)
            throw new ReplicationRefusedException(ReplicationRefusal.ReplicaDiverged, $"keep {keepRecords} records of a journal of {journal.DurableRecordCount}");
        uint mine = ChecksumAt(journal, keepRecords - 1, hint: null);
        if (mine != lastKeptChecksum)
            throw new ReplicationRefusedException(ReplicationRefusal.ReplicaDiverged,
                $"record {keepRecords - 1} here has checksum 0x{mine:X8}, the primary's 0x{lastKeptChecksum:X8}: the journals part before it; rebuild this standby");
        return journal.TruncateTo(keepRecords);
    }

    /// <summary>Where this engine's journal ends, for the handshake: what it journaled or, following, accepted.</summary>
    public ReplicaPosition ReplicaPosition
    {
        get
        {
            lock (_replicationLock)
            {
                if (Following) return new ReplicaPosition(_replicatedNext, _replicatedLastChecksum);
                long count = _journal.DurableRecordCount;
                return new ReplicaPosition(count, ChecksumAt(count - 1));
            }
        }
    }

    /// <summary>
    /// Starts the threads as a standby (after <see cref="Recover"/> or <see cref="RecoverStandby"/>): no ticker, its own
    /// producers refused (NOT_PRIMARY), snapshots as configured (a standby takes them, so its primary need not). Its
    /// outputs go to <paramref name="views"/> (the host's derived views; nothing is sent to banks or callers).
    /// <paramref name="durable"/> is told, on the journal thread after each local commit, the durable record count: the
    /// acknowledgement the transport sends back (must not block).
    /// </summary>
    public void Follow(IEventHandler<OutputEvent> views, Action<long>? durable)
    {
        ArgumentNullException.ThrowIfNull(views);
        lock (_replicationLock)
        {
            if (_role != RolePrimary || _outputProcessor is not null) throw new InvalidOperationException("engine: Follow on an engine that runs");
            _replicatedNext = _journal.DurableRecordCount;
            _replicatedLastChecksum = ChecksumAt(_replicatedNext - 1);
            _journalHandler.Follow(new ReplicaFrames(_options.InputRingSize, durable));
            _gate?.Follow(true);
            _switchable = new SwitchableOutputHandler(views);
            _role = RoleFollowing;
            StartThreads(_switchable);
        }
    }

    /// <summary>
    /// A batch from the primary: <paramref name="frames"/> holds journal frames (<see cref="JournalFrames"/>) numbered
    /// from <paramref name="firstRecordNo"/>, sent under <paramref name="term"/>. Checked whole before anything changes:
    /// refused (<see cref="ReplicationRefusedException"/>) for a term older than this engine's newest (TERM_STALE), a
    /// first record after or before the next expected (RECORD_GAP, RECORD_OVERLAP, with the expected number), a frame or
    /// event that fails its checks (RECORD_CORRUPT), a genesis or a term record out of order (RECORD_MISMATCH), an engine
    /// not following (NOT_FOLLOWING). Then published into the input ring with the primary's stamps, to be journaled
    /// (each record checked against the primary's checksum) and applied. Waits while the ring is full. One caller.
    /// Returns the records accepted so far (the genesis counted): the next record expected.
    /// </summary>
    public long ApplyReplicated(long term, long firstRecordNo, ReadOnlySpan<byte> frames)
    {
        lock (_replicationLock)
        {
            if (_role != RoleFollowing) throw new ReplicationRefusedException(ReplicationRefusal.NotFollowing, "this engine does not follow a primary (not started by Follow, or promoted)");
            if (Fault is { } fault) throw new EngineStoppedException(fault);
            long newest = Volatile.Read(ref _newestTerm);
            if (term < newest) throw new ReplicationRefusedException(ReplicationRefusal.TermStale, $"records sent under term {term}; this engine holds term {newest}");
            if (firstRecordNo != _replicatedNext)
            {
                throw firstRecordNo > _replicatedNext
                    ? new ReplicationRefusedException(ReplicationRefusal.RecordGap, $"the batch begins at record {firstRecordNo}, the next expected is {_replicatedNext}", _replicatedNext)
                    : new ReplicationRefusedException(ReplicationRefusal.RecordOverlap, $"the batch begins at record {firstRecordNo}, records up to {_replicatedNext - 1} are here already", _replicatedNext);
            }
            (int records, long recordTerm, long termStart, long maxCorrelationId, uint lastChecksum) = CheckBatch(term, firstRecordNo, frames);
            PublishReplicated(firstRecordNo, records, frames);
            _replicatedNext = firstRecordNo + records;
            if (records > 0) _replicatedLastChecksum = lastChecksum;
            if (termStart > 0) Volatile.Write(ref _acceptedTermStartRecordNo, termStart);
            _recordTerm = recordTerm;
            Volatile.Write(ref _newestTerm, Math.Max(newest, term));
            if (maxCorrelationId > _maxCorrelationId) _maxCorrelationId = maxCorrelationId;
            return _replicatedNext;
        }
    }

    /// <summary>Every frame verified and decoded, term records each above the last and never above the sender's term;
    /// nothing published yet. Returns the newest term record's term.</summary>
    private (int Records, long RecordTerm, long TermStart, long MaxCorrelationId, uint LastChecksum) CheckBatch(long term, long firstRecordNo, ReadOnlySpan<byte> frames)
    {
        int offset = 0, records = 0;
        long newest = _recordTerm, termStart = 0, maxCorrelationId = 0;
        uint checksum = 0;
        while (offset < frames.Length)
        {
            long recordNo = firstRecordNo + records;
            JournalCorruptionReason reason = JournalFrames.Read(frames, ref offset, recordNo, out ReadOnlySpan<byte> payload, out checksum, out string detail);
            if (reason != JournalCorruptionReason.None)
                throw new ReplicationRefusedException(ReplicationRefusal.RecordCorrupt, $"record {recordNo}: {reason}: {detail}");
            if (EventCodec.IsGenesis(payload))
                throw new ReplicationRefusedException(ReplicationRefusal.RecordMismatch, $"record {recordNo} is a genesis record; only record 0 is");
            try
            {
                EventCodec.Decode(payload, ref _checked);
            }
            catch (FormatException e)
            {
                throw new ReplicationRefusedException(ReplicationRefusal.RecordCorrupt, $"record {recordNo} does not decode: {e.Message}");
            }
            if (_checked.Kind == EventKind.Term)
            {
                if (_checked.Term <= newest || _checked.Term > term)
                    throw new ReplicationRefusedException(ReplicationRefusal.RecordMismatch, $"record {recordNo} begins term {_checked.Term}, after term {newest}, sent under term {term}");
                newest = _checked.Term;
                termStart = recordNo;
            }
            if (_checked.CorrelationId > maxCorrelationId) maxCorrelationId = _checked.CorrelationId;
            records++;
        }
        return (records, newest, termStart, maxCorrelationId, checksum);
    }

    /// <summary>Publishes checked frames into the ring as they came (no stamp), in claims of at most a batch's size.</summary>
    private void PublishReplicated(long firstRecordNo, int records, ReadOnlySpan<byte> frames)
    {
        ReplicaFrames replica = _journalHandler.Replica ?? throw new InvalidOperationException("engine: following without replica frames");
        int offset = 0, done = 0;
        while (done < records)
        {
            int claim = Math.Min(records - done, _options.MaxBatchSize);
            long hi = _input.Next(claim), lo = hi - claim + 1;
            for (long s = lo; s <= hi; s++, done++)
            {
                long recordNo = firstRecordNo + done;
                JournalFrames.Read(frames, ref offset, recordNo, out ReadOnlySpan<byte> payload, out uint checksum, out _);
                EventCodec.Decode(payload, ref _input[s]);
                replica.Expect(s, recordNo, checksum);
            }
            _input.Publish(lo, hi);
        }
    }

    /// <summary>
    /// The standby takes office: refuses further <see cref="ApplyReplicated"/>, waits until everything accepted is
    /// journaled, applied and handed to the views handler, then hands outputs to <paramref name="live"/> (each output to
    /// exactly one of them), takes inputs and starts the ticker: unresolved transactions resume their deadlines and bank
    /// queries on ticks, as after a recovery. The host then calls <see cref="BeginTerm"/>. Everything the old primary
    /// sent counts as held by the other node (it sent only what it had committed).
    /// </summary>
    public PromotionReport Promote(IEventHandler<OutputEvent> live)
    {
        ArgumentNullException.ThrowIfNull(live);
        lock (_replicationLock)
        {
            if (_role != RoleFollowing) throw new ReplicationRefusedException(ReplicationRefusal.NotFollowing, "only a following engine is promoted");
            _role = RolePromoting;
            if (!WaitUntilIdle(_options.DrainTimeoutMs))
                throw new InvalidOperationException($"PROMOTE_NOT_IDLE: what the primary sent was not journaled and applied within {_options.DrainTimeoutMs} ms" + (Fault is { } f ? $" ({f.Message})" : ""));
            Volatile.Write(ref _promotedAtRecordNo, _journal.DurableRecordCount);
            _journalHandler.Follow(null);
            _gate?.Follow(false);
            _gate?.Acknowledge(_journal.DurableRecordCount);
            _switchable!.SwitchTo(live);
            long unresolved = 0;
            foreach (Bank bank in Logic.Banks) unresolved += bank.Unresolved;
            var report = new PromotionReport(_journal.DurableRecordCount, Logic.Term, _maxCorrelationId, unresolved);
            _role = RolePrimary;
            if (_snapshots is not null) _snapshots.ScheduleHeld = true; // the standby takes them from now on
            StartTicker();
            return report;
        }
    }

    // ---------------------------------------------------------------- journal reads

    private ReplicationOptions RequireReplication() => _options.Replication ?? throw NoReplication();

    private static InvalidOperationException NoReplication() => new("REPLICATION_OFF: this engine has no replication options (EngineOptions.Replication)");

    private JournalCursor LocateRecord(long recordNo)
    {
        try
        {
            return _journal.Locate(recordNo, BestHint(recordNo));
        }
        catch (JournalRecordsRetiredException e)
        {
            throw JournalFeed.TooFarBehind(e);
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new ReplicationRefusedException(ReplicationRefusal.ReplicaAhead, e.Message);
        }
    }

    /// <summary>The nearest known position at or before <paramref name="recordNo"/>: a feed's last cursor, or a snapshot's.</summary>
    private JournalCursor? BestHint(long recordNo)
    {
        JournalCursor? best = null;
        void Consider(JournalCursor c)
        {
            if (c.RecordNo <= recordNo && (best is null || c.RecordNo > best.Value.RecordNo)) best = c;
        }
        lock (_hintLock)
        {
            if (_feedHint is { } feed) Consider(feed);
        }
        if (LastSnapshot?.Position is { } last) Consider(new JournalCursor(last.RecordNo, last.RecordAddress));
        if (Recovery.Snapshot is { } recovered) Consider(new JournalCursor(recovered.RecordNo, recovered.RecordAddress));
        return best;
    }

    private uint ChecksumAt(long recordNo) => JournalFrames.Checksum(ReadFrame(_journal, recordNo, BestHint(recordNo)));

    private static uint ChecksumAt(EventJournal journal, long recordNo, JournalCursor? hint) => JournalFrames.Checksum(ReadFrame(journal, recordNo, hint));

    /// <summary>One committed record's frame (the genesis may be large: record 0 gets room for it).</summary>
    private static byte[] ReadFrame(EventJournal journal, long recordNo, JournalCursor? hint)
    {
        try
        {
            JournalCursor cursor = journal.Locate(recordNo, hint);
            var frame = new byte[JournalFrames.HeaderBytes + (recordNo == 0 ? MaxGenesisBytes : EventCodec.MaxEncodedBytes)];
            int bytes = journal.ReadFrames(ref cursor, frame, maxBytes: 1, out int records); // the first record only
            if (records != 1) throw new ReplicationRefusedException(ReplicationRefusal.ReplicaAhead, $"record {recordNo} is not committed here");
            return frame[..bytes];
        }
        catch (JournalRecordsRetiredException e)
        {
            throw JournalFeed.TooFarBehind(e);
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new ReplicationRefusedException(ReplicationRefusal.ReplicaAhead, e.Message);
        }
    }

    private sealed class CountingVisitor : IJournalVisitor
    {
        public void OnRecord(long address, ReadOnlySpan<byte> record) { }
    }
}
