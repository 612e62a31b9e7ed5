using System.Text;
using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Snapshots;

namespace Switch.Host.Admin;

/// <summary>
/// Per institution × bank × hour figures, derived from the engine's outputs alone (replayed at start, then live, in
/// the same order), so a restart rebuilds them exactly: hours come from event stamps, never the wall clock.
/// <para>Counted: a request at its first bank request (debit or credit); a final outcome in the hour it became final,
/// classified by its reason (<see cref="Classify"/>) with its end-to-end latency (final − received) in a small
/// histogram; a transaction answered UNKNOWN at its deadline in that hour, and at its final outcome its time since;
/// a reversal sent once per transaction, succeeded when the outcome is REVERSED. A request the switch refused itself
/// (an answer with a reject code: no bank was sent anything, and the output names no bank) counts under its
/// institution and the bank <see cref="NoBank"/>, by reject code.</para>
/// <para>Bound: at most <see cref="MaxCells"/> cells of <see cref="CellInts"/> 32-bit counters (288 bytes), about
/// 72 MiB, allocated in chunks as used; hours older than <see cref="RetentionHours"/> behind the newest are dropped,
/// and when the cells run out the oldest hour goes early. Business decline reasons: the first
/// <see cref="MaxReasons"/> − 1 distinct ones by name, the rest as OTHER. Transactions waiting for a final outcome
/// after UNKNOWN: at most <see cref="MaxPending"/> remembered (beyond, their time to final is not measured). Reject codes:
/// the first <see cref="MaxRefusalCodes"/> − 1 distinct ones, the rest as OTHER; institutions refused: codes as the
/// outputs name them, at most <see cref="SwitchConfig.MaxInstitutions"/> (beyond, not counted).</para>
/// One writer (the replay, then the output thread); readers take the lock.
/// </summary>
public sealed class MemberStats
{
    public const int RetentionHours = 31 * 24;
    public const int MaxCells = 1 << 18;
    public const int MaxReasons = 12;
    public const int MaxPending = 1 << 20;
    public const string OtherReason = "OTHER";
    public const long MicrosPerHour = 3_600_000_000L;
    public const int MaxRefusalCodes = 8;
    /// <summary>The bank of the rows of requests the switch refused itself (shown as "-").</summary>
    public const int NoBank = 1000;

    // Cell layout, in ints.
    internal const int Requests = 0, Approvals = 1, BusinessDeclines = 2, Timeouts = 3, SystemErrors = 4, Unavailable = 5,
        WentUnknown = 6, UnknownResolved = 7, ReversalsSent = 8, ReversalsSucceeded = 9, UnknownToFinalMaxMs = 10,
        UnknownToFinalSumMsLow = 11, UnknownToFinalSumMsHigh = 12, ReasonBase = 13, LatencyBase = ReasonBase + MaxReasons;
    internal const int Refused = LatencyBase + CellHistogram.Buckets, RefusalBase = Refused + 1;
    public const int CellInts = RefusalBase + MaxRefusalCodes;
    private const int ChunkCells = 4096;

    /// <summary>How a final outcome counts (switch and bank reason codes; see README "Per-member statistics").</summary>
    public enum Outcome : byte { Approved, Business, Timeout, SystemError, Unavailable }

    private readonly object _lock = new();
    private readonly Dictionary<long, int> _cells = new();
    private readonly List<int[]> _chunks = new();
    private readonly Stack<int> _free = new();
    private readonly Queue<(long Hour, List<int> Cells)> _hours = new();
    private (long Hour, List<int> Cells)? _lastHour;
    private int _allocated;
    private long _newestHour = long.MinValue;
    private readonly byte[][] _reasons = new byte[MaxReasons - 1][];
    private int _reasonCount;
    // Transactions answered UNKNOWN and not yet final: when they went unknown, and whether a reversal was counted.
    private readonly Dictionary<long, (long UnknownUs, bool Reversal)> _pending = new();
    // Refusals name their institution by code only: each code seen gets a slot, the institution part of its cells' keys.
    private readonly Dictionary<string, int> _refusedSlots = new(StringComparer.Ordinal);
    private readonly List<string> _refusedCodes = new();
    private readonly RejectCode[] _refusalCodes = new RejectCode[MaxRefusalCodes - 1];
    private int _refusalCodeCount;

    public static Outcome Classify(TransactionStatus status, ReadOnlySpan<byte> reason)
    {
        if (status == TransactionStatus.Succeeded) return Outcome.Approved;
        if (reason.SequenceEqual("BANK_NOT_RECEIVED"u8) || reason.SequenceEqual("REVERSED"u8)) return Outcome.Timeout;
        if (reason.SequenceEqual("BANK_BUSY"u8)) return Outcome.Unavailable;
        if (EndpointBreaker.IsSystemFailure(reason)) return Outcome.SystemError;
        return Outcome.Business;
    }

    public static long HourOf(long unixUs) => Math.DivRem(unixUs, MicrosPerHour, out long rest) - (rest < 0 ? 1 : 0);

    /// <summary>The replay's sink: records each replayed output, then hands it on.</summary>
    public IOutputSink ReplaySink(IOutputSink? next) => new RecordingSink(this, next);

    /// <summary>The live path: records each output before <paramref name="next"/> carries it out.</summary>
    public Ring.IEventHandler<OutputEvent> Tap(Ring.IEventHandler<OutputEvent> next) => new TapHandler(this, next);

    public void Record(in OutputEvent o)
    {
        switch (o.Kind)
        {
            case OutputKind.BankRequest when o.Attempt == 1 && o.Operation is BankOperation.Debit or BankOperation.Credit:
                Add(o.TimestampUs, o.InstitutionIndex, o.BankCode, Requests);
                break;
            case OutputKind.BankRequest when o.Operation == BankOperation.Reverse:
                if (_pending.TryGetValue(o.TransactionId, out var p) && !p.Reversal)
                {
                    _pending[o.TransactionId] = (p.UnknownUs, true);
                    Add(o.TimestampUs, o.InstitutionIndex, o.BankCode, ReversalsSent);
                }
                break;
            case OutputKind.Answer when o.Status == TransactionStatus.Unknown && o.Reject == RejectCode.None && !o.Duplicate && !o.QueryAnswer:
                if (!_pending.ContainsKey(o.TransactionId) && _pending.Count < MaxPending)
                {
                    _pending.Add(o.TransactionId, (o.TimestampUs, false));
                    Add(o.TimestampUs, o.InstitutionIndex, o.BankCode, WentUnknown);
                }
                break;
            case OutputKind.Answer when o.Reject != RejectCode.None && !o.QueryAnswer:
                RecordRefusal(o);
                break;
            case OutputKind.Feed when o.Status is TransactionStatus.Succeeded or TransactionStatus.Failed:
                _pending.Remove(o.TransactionId, out var unknown);
                RecordFinal(o, unknown.UnknownUs);
                break;
        }
    }

    private void RecordFinal(in OutputEvent o, long unknownUs)
    {
        lock (_lock)
        {
            int cell = Cell(HourOf(o.FinalUs), o.InstitutionIndex, o.BankCode);
            if (cell < 0) return;
            int[] c = Chunk(cell, out int at);
            Outcome outcome = Classify(o.Status, o.Reason.Span);
            c[at + outcome switch
            {
                Outcome.Approved => Approvals,
                Outcome.Timeout => Timeouts,
                Outcome.Unavailable => Unavailable,
                Outcome.SystemError => SystemErrors,
                _ => BusinessDeclines,
            }]++;
            if (outcome == Outcome.Business) c[at + ReasonBase + ReasonIndex(o.Reason.Span)]++;
            if (o.Reason.Span.SequenceEqual("REVERSED"u8)) c[at + ReversalsSucceeded]++;
            c[at + LatencyBase + CellHistogram.Index(o.FinalUs - o.ReceivedUs)]++;
            if (unknownUs > 0)
            {
                long ms = Math.Max(0, (o.FinalUs - unknownUs) / 1000);
                c[at + UnknownResolved]++;
                c[at + UnknownToFinalMaxMs] = (int)Math.Max(c[at + UnknownToFinalMaxMs], Math.Min(ms, int.MaxValue));
                long sum = (uint)c[at + UnknownToFinalSumMsLow] | ((long)c[at + UnknownToFinalSumMsHigh] << 32);
                sum += ms;
                c[at + UnknownToFinalSumMsLow] = (int)sum;
                c[at + UnknownToFinalSumMsHigh] = (int)(sum >> 32);
            }
        }
    }

    private void RecordRefusal(in OutputEvent o)
    {
        lock (_lock)
        {
            int slot = RefusedSlot(in o.Institution);
            if (slot < 0) return;
            int cell = Cell(HourOf(o.TimestampUs), slot, NoBank);
            if (cell < 0) return;
            int[] c = Chunk(cell, out int at);
            c[at + Refused]++;
            c[at + RefusalBase + RefusalCodeIndex(o.Reject)]++;
        }
    }

    // Caller holds the lock. A slot per institution code seen in a refusal; -1 once MaxInstitutions are taken.
    private int RefusedSlot(in Text32 institution)
    {
        // The string is made once per code; a refusal of a known code looks it up by a string of its bytes (refusals
        // are not the hot path: no bank call follows them).
        string code = institution.ToString();
        if (_refusedSlots.TryGetValue(code, out int slot)) return slot;
        if (_refusedCodes.Count == SwitchConfig.MaxInstitutions) return -1;
        _refusedSlots.Add(code, _refusedCodes.Count);
        _refusedCodes.Add(code);
        return _refusedCodes.Count - 1;
    }

    private int RefusalCodeIndex(RejectCode code)
    {
        for (int i = 0; i < _refusalCodeCount; i++)
        {
            if (_refusalCodes[i] == code) return i;
        }
        if (_refusalCodeCount == _refusalCodes.Length) return MaxRefusalCodes - 1;
        _refusalCodes[_refusalCodeCount] = code;
        return _refusalCodeCount++;
    }

    private void Add(long stampUs, int institutionIndex, int bankCode, int counter)
    {
        lock (_lock)
        {
            int cell = Cell(HourOf(stampUs), institutionIndex, bankCode);
            if (cell < 0) return;
            int[] c = Chunk(cell, out int at);
            c[at + counter]++;
        }
    }

    // The reason's slot: a known one, a new one while there is room, else OTHER (the last slot).
    private int ReasonIndex(ReadOnlySpan<byte> reason)
    {
        for (int i = 0; i < _reasonCount; i++)
        {
            if (reason.SequenceEqual(_reasons[i])) return i;
        }
        if (_reasonCount == _reasons.Length) return MaxReasons - 1;
        _reasons[_reasonCount] = reason.ToArray();
        return _reasonCount++;
    }

    private static long Key(long hour, int institutionIndex, int bankCode) => (hour << 22) | ((long)institutionIndex << 10) | (long)bankCode;

    // Caller holds the lock. -1: the hour is older than what is kept, or the participant is out of range.
    private int Cell(long hour, int institutionIndex, int bankCode)
    {
        if ((uint)institutionIndex >= SwitchConfig.MaxInstitutions || (uint)bankCode > NoBank) return -1;
        if (hour > _newestHour)
        {
            _newestHour = hour;
            while (_hours.Count > 0 && _hours.Peek().Hour <= hour - RetentionHours) DropOldestHour();
        }
        if (hour <= _newestHour - RetentionHours) return -1;
        long key = Key(hour, institutionIndex, bankCode);
        if (_cells.TryGetValue(key, out int cell)) return cell;
        if (_free.Count == 0 && _allocated == MaxCells)
        {
            // Full: the oldest hour goes early (never the hour being written).
            if (_hours.Peek().Hour >= hour) return -1;
            DropOldestHour();
        }
        cell = _free.Count > 0 ? _free.Pop() : _allocated++;
        if (cell / ChunkCells == _chunks.Count) _chunks.Add(new int[ChunkCells * CellInts]);
        _cells.Add(key, cell);
        // Hours arrive in order, save a stamp of an earlier hour still kept (an outcome stamped just before a new hour
        // began): it joins the list of its own hour.
        if (_lastHour is { } last && last.Hour == hour) last.Cells.Add(cell);
        else if (CellsOf(hour) is { } cells) cells.Add(cell);
        else
        {
            _lastHour = (hour, [cell]);
            _hours.Enqueue(_lastHour.Value);
        }
        return cell;
    }

    /// <summary>The cells of a kept hour, or null. A loop, not a lambda: one capturing <c>hour</c> made every
    /// <see cref="Cell"/> call allocate its closure on the output thread, taken or not.</summary>
    private List<int>? CellsOf(long hour)
    {
        foreach ((long kept, List<int> cells) in _hours)
        {
            if (kept == hour) return cells;
        }
        return null;
    }

    private void DropOldestHour()
    {
        (long hour, List<int> cells) = _hours.Dequeue();
        foreach (int cell in cells)
        {
            int[] c = Chunk(cell, out int at);
            Array.Clear(c, at, CellInts);
            _free.Push(cell);
        }
        // Keys of the hour: rebuilt from the dictionary (bounded by the cells of one hour's participants).
        List<long> keys = [];
        foreach (long key in _cells.Keys)
        {
            if (key >> 22 == hour) keys.Add(key);
        }
        foreach (long key in keys) _cells.Remove(key);
    }

    private int[] Chunk(int cell, out int at)
    {
        at = cell % ChunkCells * CellInts;
        return _chunks[cell / ChunkCells];
    }

    /// <summary>
    /// At a snapshot's mark (the writer thread): everything the figures go on from, in an order that depends only on
    /// the outputs seen (hours as they were queued, each hour's cells as they were added, pending transactions by id),
    /// never on where cells sit in memory, so the same outputs give the same bytes.
    /// </summary>
    public void WriteMark(StateWriter w)
    {
        lock (_lock)
        {
            w.Section("members");
            w.Long(_newestHour);
            w.Int(_reasonCount);
            for (int i = 0; i < _reasonCount; i++) w.Array<byte>(_reasons[i]);
            // The institutions of refusal rows, in slot order (the order their first refusal came): a cell's key names the slot.
            w.Int(_refusedCodes.Count);
            foreach (string code in _refusedCodes) w.String(code);
            w.Int(_refusalCodeCount); // the reject codes of refusal counters, in the order first seen
            for (int i = 0; i < _refusalCodeCount; i++) w.Int((int)_refusalCodes[i]);
            var keyOf = new Dictionary<int, long>(_cells.Count);
            foreach ((long key, int cell) in _cells) keyOf.Add(cell, key);
            w.Int(_hours.Count);
            foreach ((long hour, List<int> cells) in _hours)
            {
                w.Long(hour);
                w.Int(cells.Count);
                foreach (int cell in cells)
                {
                    w.Long(keyOf[cell]);
                    int[] c = Chunk(cell, out int at);
                    w.Array<int>(c.AsSpan(at, CellInts));
                }
            }
            w.Bool(_lastHour is not null);
            if (_lastHour is { } last) w.Long(last.Hour);
            var pending = _pending.ToArray();
            Array.Sort(pending, (a, b) => a.Key.CompareTo(b.Key));
            w.Int(pending.Length);
            foreach ((long transactionId, (long unknownUs, bool reversal)) in pending)
            {
                w.Long(transactionId);
                w.Long(unknownUs);
                w.Bool(reversal);
            }
        }
    }

    /// <summary>At a start from a snapshot, before the replay after it: what <see cref="WriteMark"/> wrote.</summary>
    public void RestoreMark(ref StateReader r)
    {
        r.Section("members");
        lock (_lock)
        {
            if (_cells.Count != 0 || _pending.Count != 0 || _refusedCodes.Count != 0) throw new InvalidOperationException("member statistics: restored after recording began");
            _newestHour = r.Long();
            _reasonCount = r.Int();
            if (_reasonCount < 0 || _reasonCount > _reasons.Length) throw new InvalidDataException($"snapshot views: {_reasonCount} decline reasons");
            for (int i = 0; i < _reasonCount; i++) _reasons[i] = r.Array<byte>(256).ToArray();
            int refused = r.Int();
            if (refused < 0 || refused > SwitchConfig.MaxInstitutions) throw new InvalidDataException($"snapshot views: {refused} institutions with refusals");
            for (int i = 0; i < refused; i++)
            {
                string code = r.String(Text32.CapacityBytes);
                if (!_refusedSlots.TryAdd(code, i)) throw new InvalidDataException($"snapshot views: refusals of {code} in two slots");
                _refusedCodes.Add(code);
            }
            _refusalCodeCount = r.Int();
            if (_refusalCodeCount < 0 || _refusalCodeCount > _refusalCodes.Length) throw new InvalidDataException($"snapshot views: {_refusalCodeCount} refusal codes");
            for (int i = 0; i < _refusalCodeCount; i++) _refusalCodes[i] = (RejectCode)r.Int();
            int hours = r.Int();
            if (hours < 0 || hours > RetentionHours) throw new InvalidDataException($"snapshot views: {hours} hours of member statistics");
            for (int h = 0; h < hours; h++)
            {
                long hour = r.Long();
                int cells = r.Int();
                if (cells < 0 || _allocated + cells > MaxCells) throw new InvalidDataException($"snapshot views: {cells} member statistics cells in hour {hour}");
                var list = new List<int>(cells);
                for (int i = 0; i < cells; i++)
                {
                    long key = r.Long();
                    if (key >> 22 != hour || !_cells.TryAdd(key, _allocated)) throw new InvalidDataException($"snapshot views: member statistics cell {key} in hour {hour}");
                    int cell = _allocated++;
                    if (cell / ChunkCells == _chunks.Count) _chunks.Add(new int[ChunkCells * CellInts]);
                    int[] c = Chunk(cell, out int at);
                    ReadOnlySpan<int> values = r.Array<int>(CellInts);
                    if (values.Length != CellInts) throw new InvalidDataException($"snapshot views: a member statistics cell of {values.Length} counters");
                    values.CopyTo(c.AsSpan(at, CellInts));
                    list.Add(cell);
                }
                _hours.Enqueue((hour, list));
            }
            if (r.Bool())
            {
                long lastHour = r.Long();
                foreach ((long Hour, List<int> Cells) entry in _hours)
                {
                    if (entry.Hour == lastHour) _lastHour = entry;
                }
            }
            int pending = r.Int();
            if (pending < 0 || pending > MaxPending) throw new InvalidDataException($"snapshot views: {pending} transactions pending after UNKNOWN");
            for (int i = 0; i < pending; i++)
            {
                long id = r.Long();
                _pending.Add(id, (r.Long(), r.Bool()));
            }
        }
    }

    /// <summary>Undoes <see cref="RestoreMark"/> (the engine tries an older snapshot, or the whole journal).</summary>
    public void ForgetMark()
    {
        lock (_lock)
        {
            _cells.Clear();
            _chunks.Clear();
            _free.Clear();
            _hours.Clear();
            _lastHour = null;
            _allocated = 0;
            _newestHour = long.MinValue;
            _reasonCount = 0;
            _refusedCodes.Clear();
            _refusedSlots.Clear();
            _refusalCodeCount = 0;
            _pending.Clear();
        }
    }

    /// <summary>The newest hour with figures (event time), or null when there are none.</summary>
    public long? NewestHour
    {
        get { lock (_lock) return _newestHour == long.MinValue ? null : _newestHour; }
    }

    /// <summary>The oldest hour still kept, or null when there are none.</summary>
    public long? OldestHour
    {
        get { lock (_lock) return _hours.Count == 0 ? null : _hours.Min(h => h.Hour); }
    }

    /// <summary>
    /// Sums of the hours [fromHour, fromHour + hours) per institution × bank, in rows of <paramref name="spanHours"/>
    /// hours each (1: hourly, 24: daily), ordered by period, institution index, bank code; only rows with figures.
    /// Refusals (bank <see cref="NoBank"/>) are told by institution code: <paramref name="institutionIndexOf"/> gives its
    /// index (-1: not configured; such a row keeps its code in <see cref="MemberFigures.InstitutionCode"/>).
    /// </summary>
    public List<MemberFigures> Report(long fromHour, int hours, int spanHours, Func<int, int, bool> include, Func<string, int>? institutionIndexOf = null)
    {
        if (hours is < 1 or > RetentionHours + 24) throw new ArgumentOutOfRangeException(nameof(hours));
        if (spanHours < 1) throw new ArgumentOutOfRangeException(nameof(spanHours));
        var rows = new SortedDictionary<(long, int, int), MemberFigures>();
        lock (_lock)
        {
            foreach ((long key, int cell) in _cells)
            {
                long hour = key >> 22;
                if (hour < fromHour || hour >= fromHour + hours) continue;
                int institution = (int)(key >> 10) & 0xFFF, bank = (int)(key & 0x3FF);
                string? refusedCode = null;
                if (bank == NoBank)
                {
                    refusedCode = _refusedCodes[institution];
                    institution = institutionIndexOf?.Invoke(refusedCode) ?? -1;
                }
                if (!include(institution, bank)) continue;
                long period = fromHour + (hour - fromHour) / spanHours * spanHours;
                if (!rows.TryGetValue((period, institution, bank), out MemberFigures? row))
                {
                    rows.Add((period, institution, bank), row = new MemberFigures(period, spanHours, institution, bank) { InstitutionCode = refusedCode });
                }
                int[] c = Chunk(cell, out int at);
                row.Add(c.AsSpan(at, CellInts));
            }
            foreach (MemberFigures row in rows.Values)
            {
                for (int i = 0; i < MaxReasons; i++)
                {
                    if (row.ReasonCounts[i] == 0) continue;
                    row.Reasons.Add((i == MaxReasons - 1 ? OtherReason : Encoding.UTF8.GetString(_reasons[i]), row.ReasonCounts[i]));
                }
                for (int i = 0; i < MaxRefusalCodes; i++)
                {
                    if (row.RefusalCounts[i] == 0) continue;
                    row.Refusals.Add((i == MaxRefusalCodes - 1 ? OtherReason : Gateway.ResultMapping.RejectName(_refusalCodes[i]), row.RefusalCounts[i]));
                }
            }
        }
        return rows.Values.Where(r => !r.IsEmpty).ToList();
    }

    private sealed class RecordingSink(MemberStats stats, IOutputSink? next) : IOutputSink
    {
        private OutputEvent _scratch;

        public ref OutputEvent Begin()
        {
            _scratch.Reset();
            return ref _scratch;
        }

        public void End()
        {
            stats.Record(in _scratch);
            if (next is null) return;
            ref OutputEvent o = ref next.Begin();
            o = _scratch;
            next.End();
        }
    }

    private sealed class TapHandler(MemberStats stats, Ring.IEventHandler<OutputEvent> next) : Ring.IEventHandler<OutputEvent>
    {
        public void OnEvent(ref OutputEvent evt, long sequence, bool endOfBatch)
        {
            stats.Record(in evt);
            next.OnEvent(ref evt, sequence, endOfBatch);
        }
    }
}
