using Switch.Engine.Events;
using Switch.Engine.Replication;
using Switch.Journal;
using Switch.Ring;

namespace Switch.Engine.Pipeline;

/// <summary>
/// First consumer of the input ring: appends every event to the journal and commits once per batch (group
/// commit). Its sequence advances only after the commit, so everything behind it sees durable events only.
/// This commit is the one seam where "durable" is defined; with a standby, the replication gate behind it waits for the
/// standby's acknowledgement too. On a following engine (<see cref="Follow"/>) it journals the primary's events as they
/// came, stamps nothing, and checks each record against the primary's before appending it.
/// </summary>
internal sealed class JournalHandler(EventJournal journal, IClock clock, JournalPositions positions, JournalCrashPoint? crashPoint = null, ICommitObserver? observer = null) : IEventHandler<InputEvent>
{
    private readonly byte[] _scratch = new byte[EventCodec.MaxEncodedBytes];
    // For the crash-point test hook only: records appended by this run, and the current batch's journal addresses.
    private long _appended;
    private long _batchFirstAddress = -1;
    private long _lastAddress = -1;
    private long _batchAppendedBefore;
    private volatile ReplicaFrames? _replica;
    private long _termStartRecordNo = -1;

    public long Commits { get; private set; }

    /// <summary>The record number of the last term record journaled by this run (-1: none).</summary>
    public long TermStartRecordNo => Volatile.Read(ref _termStartRecordNo);

    /// <summary>From now on events are a primary's records (set before they are published; null: a primary again).</summary>
    public void Follow(ReplicaFrames? replica) => _replica = replica;
    public ReplicaFrames? Replica => _replica;

    public void OnEvent(ref InputEvent evt, long sequence, bool endOfBatch)
    {
        ReplicaFrames? replica = _replica;
        if (evt.Kind is EventKind.Void or EventKind.Nudge)
        {
            // A slot whose fill failed: not an input. Not journaled, so replay never sees it (and the logic skips it
            // live); its batch still commits below if it ends one.
        }
        else if (evt.Kind == EventKind.InstitutionRequest && evt.ClientDeadlineUs != 0 && replica is null)
        {
            // As late as a stamp in the record can be: the logic refuses the request if its client's deadline passed by
            // now, so one that is still awaited here is the one that executes (replay reads the same stamp). A standby
            // journals the primary's stamp as it came.
            evt.JournaledUs = clock.NowUs();
        }
        if (evt.Kind is not (EventKind.Void or EventKind.Nudge))
        {
            int length = EventCodec.Encode(ref evt, _scratch);
            replica?.Check(sequence, journal.RecordCount, _scratch.AsSpan(0, length));
            if (evt.Kind == EventKind.Term) Volatile.Write(ref _termStartRecordNo, journal.RecordCount);
            _lastAddress = journal.Append(_scratch.AsSpan(0, length));
            positions.Set(sequence, journal.RecordCount - 1, _lastAddress);
            _appended++;
            if (_batchFirstAddress < 0) _batchFirstAddress = _lastAddress;
        }
        if (endOfBatch)
        {
            bool crash = crashPoint is not null && _appended >= crashPoint.Record;
            if (crash && crashPoint!.Moment == JournalCrashMoment.BeforeCommit) CrashNow();
            long started = observer is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
            journal.Commit();
            Commits++;
            observer?.Committed(System.Diagnostics.Stopwatch.GetTimestamp() - started, (int)(_appended - _batchAppendedBefore));
            _batchAppendedBefore = _appended;
            replica?.Committed(journal.DurableRecordCount);
            if (crash && crashPoint!.Moment == JournalCrashMoment.AfterCommit) CrashNow();
            _batchFirstAddress = -1;
        }
    }

    /// <summary>The test hook's kill: says where the batch lies in the journal (the tests damage it on disk), then SIGKILL.</summary>
    private void CrashNow()
    {
        crashPoint!.Announce?.Invoke(_batchFirstAddress, _lastAddress, _appended);
        System.Diagnostics.Process.GetCurrentProcess().Kill(); // SIGKILL on Unix: no handler, no flush, no finally
        Thread.Sleep(Timeout.Infinite);
    }
}
