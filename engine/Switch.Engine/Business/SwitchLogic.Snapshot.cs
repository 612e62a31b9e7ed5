using Switch.Engine.Events;
using Switch.Engine.Snapshots;

namespace Switch.Engine.Business;

/// <summary>
/// Snapshots of the whole deterministic state. <see cref="BeginCapture"/> runs on the logic thread between two events
/// and writes everything small at once; the large arrays (the transaction table, the archive's filter) are captured
/// copy-on-write and copied by the snapshot writer afterwards, so the logic pauses for the small part only.
/// <see cref="Restore"/> builds a logic from a snapshot file before any event. Derived indexes (orders, parked ids) are
/// rebuilt, not stored.
/// </summary>
public sealed partial class SwitchLogic
{
    /// <summary>At most this many discrepancies' reasons are kept (<see cref="MaxDiscrepanciesKept"/>): bounds the section.</summary>
    private const int MaxReasonBytes = 256;

    /// <summary>What the logic thread hands the snapshot writer at the capture instant.</summary>
    public sealed class Capture
    {
        private readonly SwitchLogic _logic;

        internal Capture(SwitchLogic logic, ICapturedArray[] arrays, ArchiveCapture archive)
        {
            _logic = logic;
            Arrays = arrays;
            Archive = archive;
        }

        /// <summary>The daily usage, the table's ring and parked table, the deadlines, then the archive's arrays, in the
        /// order <see cref="Restore"/> reads them.</summary>
        public ICapturedArray[] Arrays { get; }
        public ArchiveCapture Archive { get; }

        /// <summary>The writer has copied every array (or failed): the logic stops copying pages aside.</summary>
        public void End()
        {
            _logic.EndCaptures();
            Archive.End();
        }
    }

    /// <summary>The list of captured arrays a capture hands out, made once: the captures are the same objects every
    /// snapshot (kept by their owners), and so are the archive's (<see cref="_captureArraysOfArchive"/>; made again if
    /// not). Built in the pause, the list cost 6 to 12 µs of every one, measured under load.</summary>
    private ICapturedArray[]? _captureArrays;
    private ICapturedArray[]? _captureArraysOfArchive;

    /// <summary>Writes the state into <paramref name="w"/> and starts the captures of the large arrays. Logic thread,
    /// between events; one capture at a time (the previous one's <see cref="Capture.End"/> called). The state is whole
    /// once <see cref="ArchiveCapture.WriteState"/> of the capture's <see cref="Capture.Archive"/> has appended the
    /// archive's part (recorded by its writer thread, which the logic does not wait for). <paramref name="pause"/>: the
    /// parts timed, if given (metrics only).</summary>
    public Capture BeginCapture(StateWriter w, PauseTimer? pause = null)
    {
        WriteState(w);
        ICapturedArray[] deadlines = _timers.BeginCapture();
        PageCapture<DailyAccountUsage.Slot> usage = _dailyUsage.BeginCapture();
        (PageCapture<Transaction> ring, PageCapture<Transaction> parked) = _transactions.BeginCapture();
        pause?.Lap(PausePart.LogicState);
        ArchiveCapture archive;
        try
        {
            archive = _orders.Archive.BeginCapture(w, pause);
        }
        catch
        {
            EndCaptures();
            throw;
        }
        if (_captureArrays is null || !ReferenceEquals(_captureArraysOfArchive, archive.Arrays))
        {
            _captureArrays = [usage, ring, parked, .. deadlines, .. archive.Arrays];
            _captureArraysOfArchive = archive.Arrays;
        }
        System.Diagnostics.Debug.Assert(ReferenceEquals(_captureArrays[0], usage) && ReferenceEquals(_captureArrays[1], ring)
            && ReferenceEquals(_captureArrays[2], parked) && ReferenceEquals(_captureArrays[3], deadlines[0]), "the logic's captures are made once");
        return new Capture(this, _captureArrays, archive);
    }

    /// <summary>At start, off the logic thread (any time before or while it runs): the pages its captures copy aside into
    /// (<see cref="AsideReserve{T}"/>), allocated and faulted in, kept for the process's life. Whole for the arrays touched
    /// at random (the daily usage, the archive filter's current generation) and the deadlines; for the transaction
    /// table, the ring's pages the logic fills at <paramref name="transactionsPerSecond"/> while the snapshot writer,
    /// at <paramref name="writeMiBPerSecond"/>, writes up to the ring's end (<see cref="RingAsidePages"/>). Returns the
    /// bytes reserved.</summary>
    public long FillAsideReserves(long transactionsPerSecond, int writeMiBPerSecond)
    {
        long bytes = _dailyUsage.FillAsideReserve();
        bytes += _orders.Archive.FillAsideReserve();
        bytes += _timers.FillAsideReserve();
        long throughRingBytes = _dailyUsage.Bytes + _transactions.RingPages * _transactions.AsidePageBytes;
        bytes += _transactions.FillAsideReserve(RingAsidePages(transactionsPerSecond, writeMiBPerSecond, throughRingBytes, _transactions.RingPages));
        return bytes;
    }

    /// <summary>Ring pages (of <see cref="PageCapture{T}.MaxPageItems"/> transactions) the logic fills at
    /// <paramref name="transactionsPerSecond"/> while a writer at <paramref name="writeMiBPerSecond"/> writes
    /// <paramref name="throughRingBytes"/> (the arrays before the ring, and the ring): the most the ring can copy aside,
    /// at most <paramref name="ringPages"/>. No budget (0): the writer's speed is the disk's, unknown here: the whole
    /// ring. A rate of 0: none.</summary>
    public static int RingAsidePages(long transactionsPerSecond, int writeMiBPerSecond, long throughRingBytes, int ringPages)
    {
        if (transactionsPerSecond <= 0) return 0;
        if (writeMiBPerSecond <= 0) return ringPages;
        double writeSeconds = (double)throughRingBytes / ((long)writeMiBPerSecond << 20);
        double pages = Math.Ceiling(transactionsPerSecond * writeSeconds / PageCapture<Transaction>.MaxPageItems) + 1; // +1: the page it is in
        return (int)Math.Min(ringPages, pages);
    }

    /// <summary>The logic's own captures end (the archive's ends with its <see cref="ArchiveCapture"/>).</summary>
    private void EndCaptures()
    {
        _timers.EndCapture();
        _dailyUsage.EndCapture();
        _transactions.EndCapture();
    }

    /// <summary>Everything the state section holds but the archive's part, into <paramref name="w"/> (cleared first).
    /// Changes nothing: <see cref="BeginCapture"/> writes it, and a start writes it once into the snapshot writer's
    /// buffer so the first snapshot's pause neither grows that buffer nor runs these writes for the first time.</summary>
    public void WriteState(StateWriter w)
    {
        w.Clear();
        w.Section("logic");
        w.Long(NowUs);
        w.Long(EventsApplied);
        w.Long(UnmatchedBankResults);
        w.Long(DuplicateBankResults);
        w.Long(DiscrepancyCount);
        w.Long(IgnoredReachabilityReports);
        w.Long(_nextScheduledCloseUs);
        w.Long(Term);
        w.Long(TermStartRecordNo);
        w.Int(_discrepancies.Count);
        foreach (Discrepancy d in _discrepancies)
        {
            w.Long(d.TransactionId);
            w.Int((int)d.Final);
            w.Int((int)d.Reported);
            w.String(d.Reason);
            w.Long(d.AtUs);
        }
        w.Section("institutions");
        w.Int(_institutions.Length);
        foreach (Institution inst in _institutions)
        {
            w.Bool(inst.Enabled);
            w.Long(inst.PositionFen);
            w.Value(in inst.Open);
            w.Long(inst.ReservedDebitFen);
            w.Long(inst.FeedCount);
        }
        w.Section("banks");
        w.Int(_banks.Length);
        foreach (Bank bank in _banks)
        {
            w.Long(bank.PositionFen);
            w.Value(in bank.Open);
            w.Int(bank.Unresolved);
            bank.Ramp.Save(w);
            w.Int(bank.Endpoints.Length);
            foreach (Endpoint endpoint in bank.Endpoints)
            {
                w.Int(endpoint.WeightBps);
                w.Int((int)endpoint.State);
                w.Bool(endpoint.Reachable);
                w.Int(endpoint.InFlight);
                w.Long(endpoint.DispatchedCount);
                w.Long(endpoint.SucceededCount);
                w.Long(endpoint.FailedCount);
                w.Long(endpoint.TimedOutCount);
                endpoint.Breaker.Save(w);
            }
        }
        _book.Save(w);
        _endpoints.Save(w);
        _out.Save(w);
        _timers.Save(w);
        _dailyUsage.Save(w);
        _transactions.Save(w);
    }

    /// <summary>Emits the snapshot mark after a capture (live only: the replay takes no snapshot).</summary>
    public void EmitSnapshotMark(long recordNo) => _out.SnapshotMark(recordNo);

    /// <summary>
    /// A logic as the snapshot left it: <paramref name="config"/> is the snapshot's, <paramref name="archive"/> opened at
    /// the snapshot's checkpoint. Reads the state, then the arrays, then checks the restored state against itself (the
    /// state hash recounts every bank's unresolved transactions). Throws <see cref="InvalidDataException"/> for anything
    /// that does not fit; the caller's file check (its checksum) comes after the arrays.
    /// </summary>
    public static SwitchLogic Restore(SwitchConfig config, ReadOnlySpan<byte> state,
        SnapshotArrayReader arrays, IOutputSink sink, ITransactionArchive archive) => Restore(config, state, arrays, sink, archive, out _);

    /// <param name="times">Where the restore's time went (the start's log line).</param>
    public static SwitchLogic Restore(SwitchConfig config, ReadOnlySpan<byte> state,
        SnapshotArrayReader arrays, IOutputSink sink, ITransactionArchive archive, out RestoreTimes times)
    {
        var logic = new SwitchLogic(config, sink, archive);
        var r = new StateReader(state);
        logic.RestoreState(ref r);
        if (r.Remaining != 0) throw new InvalidDataException($"snapshot: {r.Remaining} bytes left after the state");
        // The large arrays' fresh memory faulted in on a helper thread, ahead of the reads that fill it.
        var prefault = new Prefaulter();
        try
        {
            logic._dailyUsage.PrefaultForRestore(prefault);
            logic._transactions.PrefaultForRestore(prefault);
            logic._timers.PrefaultForRestore(prefault);
            logic._orders.PrefaultForRestore(prefault);
            prefault.Start();
            arrays.ReadInto(logic._dailyUsage.SlotsForRestore, "daily usage");
            arrays.ReadInto(logic._transactions.RingForRestore, "transaction table");
            arrays.ReadInto(logic._transactions.ParkedForRestore, "parked table");
            logic._timers.RestoreArrays(arrays);
            archive.RestoreArrays(arrays);
        }
        finally
        {
            prefault.Dispose();
        }
        logic._dailyUsage.FinishRestore();
        logic._transactions.FinishRestore();
        long rebuildStarted = System.Diagnostics.Stopwatch.GetTimestamp();
        logic._orders.RebuildIndex();
        times = new RestoreTimes(prefault.ElapsedUs, prefault.PopulatedBytes, prefault.RegionBytes,
            (long)System.Diagnostics.Stopwatch.GetElapsedTime(rebuildStarted).TotalMicroseconds);
        return logic;
    }

    private void RestoreState(ref StateReader r)
    {
        r.Section("logic");
        NowUs = r.Long();
        EventsApplied = r.Long();
        UnmatchedBankResults = r.Long();
        DuplicateBankResults = r.Long();
        DiscrepancyCount = r.Long();
        IgnoredReachabilityReports = r.Long();
        _nextScheduledCloseUs = r.Long();
        Term = r.Long();
        TermStartRecordNo = r.Long();
        if (Term < 0 || TermStartRecordNo < 0 || (Term == 0) != (TermStartRecordNo == 0)) throw new InvalidDataException($"snapshot: term {Term} from record {TermStartRecordNo}");
        int discrepancies = r.Int();
        if (discrepancies < 0 || discrepancies > MaxDiscrepanciesKept) throw new InvalidDataException($"snapshot: {discrepancies} discrepancies kept");
        for (int i = 0; i < discrepancies; i++)
        {
            long id = r.Long();
            var final = (TransactionStatus)r.Int();
            var reported = (TransactionStatus)r.Int();
            string reason = r.String(MaxReasonBytes);
            _discrepancies.Add(new Discrepancy(id, final, reported, reason, r.Long()));
        }
        r.Section("institutions");
        r.Expect(_institutions.Length, "institutions");
        foreach (Institution inst in _institutions)
        {
            inst.Enabled = r.Bool();
            inst.PositionFen = r.Long();
            inst.Open = r.Value<BatchTotals>();
            inst.ReservedDebitFen = r.Long();
            inst.FeedCount = r.Long();
        }
        r.Section("banks");
        r.Expect(_banks.Length, "banks");
        foreach (Bank bank in _banks)
        {
            bank.PositionFen = r.Long();
            bank.Open = r.Value<BatchTotals>();
            bank.Unresolved = r.Int();
            bank.Ramp.Restore(ref r);
            r.Expect(bank.Endpoints.Length, $"endpoints of bank {bank.Code}");
            foreach (Endpoint endpoint in bank.Endpoints)
            {
                endpoint.WeightBps = r.Int();
                int state = r.Int();
                if (!Enum.IsDefined((EndpointState)state)) throw new InvalidDataException($"snapshot: endpoint state {state}");
                endpoint.State = (EndpointState)state;
                endpoint.Reachable = r.Bool();
                endpoint.InFlight = r.Int();
                endpoint.DispatchedCount = r.Long();
                endpoint.SucceededCount = r.Long();
                endpoint.FailedCount = r.Long();
                endpoint.TimedOutCount = r.Long();
                endpoint.Breaker.Restore(ref r);
            }
        }
        _book.Restore(ref r);
        _endpoints.Restore(ref r);
        _out.Restore(ref r);
        _timers.RestoreScalars(ref r);
        _dailyUsage.RestoreScalars(ref r);
        _transactions.RestoreScalars(ref r);
        _orders.Archive.RestoreScalars(ref r);
    }
}
