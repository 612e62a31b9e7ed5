using Google.Protobuf;
using Switch.Contracts.V1;
using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Snapshots;
using EngineBreaker = Switch.Engine.Events.BreakerState;
using WireBreaker = Switch.Contracts.V1.BreakerState;

namespace Switch.Host.Admin;

/// <summary>
/// The audit log and the live routing view (weights, admin states, reachability, breakers, running ramps), built
/// only from the engine's audit outputs on top of the journal's configuration: on replay at start (through the
/// engine's replay sink) and live (from the output thread). Never reads the logic's state, so no thread but the
/// writer ever touches it. Entries replayed before the configuration is known wait until <see cref="Attach"/>.
/// </summary>
public sealed class AuditLog
{
    /// <summary>Entries kept in memory for the API; older ones are still in the journal (and rebuilt at start).</summary>
    public const int MaxEntries = 100_000;

    private readonly object _lock = new();
    private readonly List<OutputEvent> _pending = new();
    private readonly Queue<AuditEntry> _entries = new();
    private SwitchConfig? _config;
    private BankRouting[] _banks = [];
    private long _lastAuditNo;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    /// <summary>The routing view a snapshot held (restored before the configuration is known), applied by <see cref="Attach"/>.</summary>
    private BankRouting[]? _restoredBanks;

    /// <summary>The number of the last entry applied to the view (0: none).</summary>
    public long LastAuditNo { get { lock (_lock) return _lastAuditNo; } }

    /// <summary>Called with the journal's configuration once the engine has started; applies what replay produced.</summary>
    public void Attach(SwitchConfig config)
    {
        lock (_lock)
        {
            if (_config is not null) throw new InvalidOperationException("audit log: attached twice");
            _config = config;
            _banks = config.Banks.Select((b, i) => new BankRouting(i, b.Code, b.Name,
                b.Endpoints.Select(e => new EndpointRouting(e.Name, e.WeightBps, EndpointState.Up, true, EngineBreaker.Closed)).ToArray(),
                null)).ToArray();
            if (_restoredBanks is not null)
            {
                if (_restoredBanks.Length != _banks.Length) throw new InvalidDataException($"audit log: the snapshot's view has {_restoredBanks.Length} banks, the configuration {_banks.Length}");
                for (int b = 0; b < _banks.Length; b++)
                {
                    BankRouting restored = _restoredBanks[b];
                    if (restored.Endpoints.Length != _banks[b].Endpoints.Length)
                        throw new InvalidDataException($"audit log: the snapshot's view has {restored.Endpoints.Length} endpoints for bank {_banks[b].Code}, the configuration {_banks[b].Endpoints.Length}");
                    _banks[b] = _banks[b] with
                    {
                        Endpoints = _banks[b].Endpoints.Select((e, i) => restored.Endpoints[i] with { Name = e.Name }).ToArray(),
                        Ramp = restored.Ramp,
                    };
                }
                _restoredBanks = null;
            }
            foreach (OutputEvent o in _pending) Apply(o);
            _pending.Clear();
        }
        Signal();
    }

    /// <summary>An audit output, from the replay sink at start or from the output thread live.</summary>
    public void Record(in OutputEvent o)
    {
        if (o.Kind != OutputKind.Audit) return;
        lock (_lock)
        {
            if (_config is null) _pending.Add(o);
            else Apply(o);
        }
        Signal();
    }

    public IReadOnlyList<BankRouting> Banks()
    {
        lock (_lock) return _banks;
    }

    public BankRouting Bank(int index)
    {
        lock (_lock) return _banks[index];
    }

    /// <summary>Entries after <paramref name="afterAuditNo"/>, oldest first, at most <paramref name="limit"/>; bank code or null.</summary>
    public List<AuditEntry> Entries(long afterAuditNo, int limit, string? bank)
    {
        var result = new List<AuditEntry>();
        lock (_lock)
        {
            foreach (AuditEntry e in _entries)
            {
                if (result.Count >= limit) break;
                if (e.AuditNo > afterAuditNo && (bank is null || e.Bank == bank)) result.Add(e);
            }
        }
        return result;
    }

    /// <summary>At a snapshot's mark (the output thread): the view as it is, cheap to take (entries and banks are
    /// immutable); <see cref="WriteMark"/> serializes it off the output thread.</summary>
    public Marked Mark()
    {
        lock (_lock)
        {
            if (_config is null) throw new InvalidOperationException("audit log: a snapshot mark before the configuration is attached");
            return new Marked(_lastAuditNo, _entries.ToArray(), (BankRouting[])_banks.Clone());
        }
    }

    public sealed record Marked(long LastAuditNo, AuditEntry[] Entries, BankRouting[] Banks);

    public static void WriteMark(StateWriter w, Marked m)
    {
        w.Section("audit");
        w.Long(m.LastAuditNo);
        w.Int(m.Banks.Length);
        foreach (BankRouting bank in m.Banks)
        {
            w.Int(bank.Endpoints.Length);
            foreach (EndpointRouting e in bank.Endpoints)
            {
                w.Int(e.WeightBps);
                w.Int((int)e.State);
                w.Bool(e.Reachable);
                w.Int((int)e.Breaker);
            }
            w.Bool(bank.Ramp is not null);
            if (bank.Ramp is { } ramp)
            {
                w.Array<int>(ramp.FromWeightsBps);
                w.Array<int>(ramp.TargetWeightsBps);
                w.Int(ramp.StepsTotal);
                w.Int(ramp.StepsDone);
                w.Long(ramp.NextStepUs);
                w.String(ramp.OperatorId);
            }
        }
        w.Int(m.Entries.Length);
        foreach (AuditEntry entry in m.Entries) w.Array<byte>(entry.ToByteArray());
    }

    /// <summary>At a start from a snapshot, before the replay after it (and before <see cref="Attach"/>).</summary>
    public void RestoreMark(ref StateReader r)
    {
        r.Section("audit");
        long lastAuditNo = r.Long();
        int banks = r.Int();
        if (banks is < 0 or > SwitchConfig.MaxBanks) throw new InvalidDataException($"snapshot views: {banks} banks in the audit view");
        var restored = new BankRouting[banks];
        for (int b = 0; b < banks; b++)
        {
            int endpoints = r.Int();
            if (endpoints is < 0 or > InputEvent.MaxEndpointsPerBank) throw new InvalidDataException($"snapshot views: {endpoints} endpoints in the audit view");
            var list = new EndpointRouting[endpoints];
            for (int e = 0; e < endpoints; e++)
            {
                list[e] = new EndpointRouting("", r.Int(), (EndpointState)r.Int(), r.Bool(), (EngineBreaker)r.Int());
            }
            RampInfo? ramp = null;
            if (r.Bool())
            {
                ramp = new RampInfo(r.Array<int>(endpoints).ToArray(), r.Array<int>(endpoints).ToArray(), r.Int(), r.Int(), r.Long(), r.String());
            }
            restored[b] = new BankRouting(b, 0, "", list, ramp);
        }
        int count = r.Int();
        if (count is < 0 or > MaxEntries) throw new InvalidDataException($"snapshot views: {count} audit entries");
        var entries = new List<AuditEntry>(count);
        for (int i = 0; i < count; i++)
        {
            AuditEntry entry = AuditEntry.Parser.ParseFrom(r.Array<byte>(1 << 20));
            if (entry.AuditNo > lastAuditNo || (entries.Count > 0 && entry.AuditNo <= entries[^1].AuditNo))
                throw new InvalidDataException($"snapshot views: audit entry {entry.AuditNo} out of order");
            entries.Add(entry);
        }
        lock (_lock)
        {
            if (_config is not null || _lastAuditNo != 0 || _pending.Count != 0) throw new InvalidOperationException("audit log: restored after recording began");
            _lastAuditNo = lastAuditNo;
            foreach (AuditEntry entry in entries) _entries.Enqueue(entry);
            _restoredBanks = restored;
        }
    }

    /// <summary>Undoes <see cref="RestoreMark"/> (the engine tries an older snapshot, or the whole journal).</summary>
    public void ForgetMark()
    {
        lock (_lock)
        {
            _lastAuditNo = 0;
            _entries.Clear();
            _restoredBanks = null;
        }
    }

    /// <summary>Completes when anything is appended after this call (a new task each time).</summary>
    public Task Changed()
    {
        lock (_lock) return _changed.Task;
    }

    /// <summary>Waits until the view has applied entry <paramref name="auditNo"/>.</summary>
    public async Task WaitForAsync(long auditNo, CancellationToken cancellation)
    {
        while (true)
        {
            Task changed = Changed();
            if (LastAuditNo >= auditNo) return;
            await changed.WaitAsync(cancellation);
        }
    }

    private void Signal()
    {
        TaskCompletionSource done;
        lock (_lock)
        {
            done = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        done.TrySetResult();
    }

    // Caller holds the lock.
    private void Apply(in OutputEvent o)
    {
        if (o.AuditNo != _lastAuditNo + 1)
        {
            throw new InvalidOperationException($"audit log: entry {o.AuditNo} after {_lastAuditNo} (entries are numbered without gaps)");
        }
        _lastAuditNo = o.AuditNo;
        BankRouting? bank = o.AuditKind == AuditKind.BatchClosed || o.BankIndex < 0 || o.BankIndex >= _banks.Length ? null : _banks[o.BankIndex];
        if (bank is not null)
        {
            _banks[bank.Index] = Applied(bank, o);
        }
        var entry = new AuditEntry
        {
            AuditNo = o.AuditNo,
            AtUnixUs = o.TimestampUs,
            OperatorId = o.Operator.ToString(),
            Reason = o.Note.ToString(),
            Kind = KindName(o.AuditKind),
            Bank = bank?.CodeText ?? "",
            Endpoint = bank is not null && o.EndpointIndex >= 0 && o.EndpointIndex < bank.Endpoints.Length ? bank.Endpoints[o.EndpointIndex].Name : "",
            BatchId = o.BatchId,
        };
        if (IsWeights(o.AuditKind))
        {
            for (int i = 0; i < o.EndpointCount; i++) entry.WeightsBps.Add(o.WeightsBps[i]);
            if (o.AuditKind is AuditKind.RampStarted or AuditKind.RampStep)
            {
                for (int i = 0; i < o.EndpointCount; i++) entry.TargetWeightsBps.Add(o.RampTargetBps[i]);
            }
        }
        else if (o.EndpointIndex >= 0 && o.AuditKind != AuditKind.BatchClosed)
        {
            entry.State = WireState(o.EndpointState);
            entry.Reachable = o.Reachable;
            entry.Breaker = WireBreakerState(o.Breaker);
        }
        _entries.Enqueue(entry);
        if (_entries.Count > MaxEntries) _entries.Dequeue();
    }

    private static BankRouting Applied(BankRouting bank, in OutputEvent o)
    {
        if (IsWeights(o.AuditKind))
        {
            if (o.EndpointCount != bank.Endpoints.Length)
            {
                throw new InvalidOperationException($"audit log: entry {o.AuditNo} has {o.EndpointCount} weights for bank {bank.Code} of {bank.Endpoints.Length} endpoints");
            }
            var endpoints = new EndpointRouting[bank.Endpoints.Length];
            int[] weights = new int[endpoints.Length];
            for (int i = 0; i < endpoints.Length; i++)
            {
                weights[i] = o.WeightsBps[i];
                endpoints[i] = bank.Endpoints[i] with { WeightBps = weights[i] };
            }
            int[] target = new int[endpoints.Length];
            for (int i = 0; i < target.Length; i++) target[i] = o.RampTargetBps[i];
            RampInfo? ramp = o.AuditKind switch
            {
                AuditKind.RampStarted => new RampInfo(weights, target, o.RampSteps, o.RampStepsDone, o.RampNextStepUs, o.Operator.ToString()),
                // A step keeps where the ramp started from (a replay starting mid-ramp cannot know it: the step's own weights then).
                AuditKind.RampStep => new RampInfo(bank.Ramp?.FromWeightsBps ?? weights, target, o.RampSteps, o.RampStepsDone, o.RampNextStepUs,
                    bank.Ramp?.OperatorId ?? o.Operator.ToString()),
                _ => null, // at once, done or cancelled: no ramp runs
            };
            return bank with { Endpoints = endpoints, Ramp = ramp };
        }
        if (o.EndpointIndex >= 0 && o.EndpointIndex < bank.Endpoints.Length)
        {
            // Every endpoint entry carries the endpoint's admin state, reachability and breaker after the change.
            var endpoints = (EndpointRouting[])bank.Endpoints.Clone();
            endpoints[o.EndpointIndex] = endpoints[o.EndpointIndex] with { State = o.EndpointState, Reachable = o.Reachable, Breaker = o.Breaker };
            return bank with { Endpoints = endpoints };
        }
        return bank;
    }

    private static bool IsWeights(AuditKind kind) =>
        kind is AuditKind.Weights or AuditKind.RampStarted or AuditKind.RampStep or AuditKind.RampDone or AuditKind.RampCancelled;

    public static EndpointAdminState WireState(EndpointState state) => state switch
    {
        EndpointState.Up => EndpointAdminState.Up,
        EndpointState.Draining => EndpointAdminState.Draining,
        EndpointState.Down => EndpointAdminState.Down,
        _ => EndpointAdminState.Unspecified,
    };

    public static WireBreaker WireBreakerState(EngineBreaker breaker) => breaker switch
    {
        EngineBreaker.Closed => WireBreaker.Closed,
        EngineBreaker.Open => WireBreaker.Open,
        EngineBreaker.HalfOpen => WireBreaker.HalfOpen,
        _ => WireBreaker.Unspecified,
    };

    public static string KindName(AuditKind kind) => kind switch
    {
        AuditKind.Weights => "WEIGHTS",
        AuditKind.RampStarted => "RAMP_STARTED",
        AuditKind.RampStep => "RAMP_STEP",
        AuditKind.RampDone => "RAMP_DONE",
        AuditKind.RampCancelled => "RAMP_CANCELLED",
        AuditKind.State => "STATE",
        AuditKind.Reachability => "REACHABILITY",
        AuditKind.BreakerOpen => "BREAKER_OPEN",
        AuditKind.BreakerHalfOpen => "BREAKER_HALF_OPEN",
        AuditKind.BreakerClosed => "BREAKER_CLOSED",
        AuditKind.BatchClosed => "BATCH_CLOSED",
        _ => kind.ToString().ToUpperInvariant(),
    };
}
