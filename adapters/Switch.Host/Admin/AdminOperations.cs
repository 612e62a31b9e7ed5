using System.Text;
using Switch.Contracts.V1;
using Switch.Engine.Business;
using Switch.Engine.Client;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Grpc;
using Switch.Host.Gateway;
using BankView = Switch.Contracts.V1.BankView;
using EndpointView = Switch.Contracts.V1.EndpointView;

namespace Switch.Host.Admin;

/// <summary>
/// The operator API's cut-over, live-view and audit methods: one implementation of each, taking the request message
/// and the authenticated operator and answering the reply message, or throwing <see cref="RpcException"/> with a
/// precise status. gRPC and the JSON API both call these. Changes are engine events (journaled with the operator's
/// identity and reason); the reply shows the bank after the engine applied the change.
/// </summary>
public sealed class AdminOperations(EngineClient engine, AuditLog audit, LiveStats stats,
    SuccessRateWatch? watch, IClock clock)
{
    public const int MaxReasonBytes = Text64.CapacityBytes;
    public const int MaxRampSteps = 100;
    public const long MaxRampDurationMs = 24L * 3_600_000;
    public const int DefaultAuditLimit = 1_000;
    public const int MaxAuditLimit = 1_000;
    /// <summary>How long a change may wait for the engine's answer and the view to follow.</summary>
    public const int CommandTimeoutMs = 30_000;

    public OperatorInfo WhoAmI(AuthenticatedOperator op) => new()
    {
        OperatorId = op.Id,
        Role = op.Role,
        ScopeBank = op.Scope?.Bank ?? "",
        ScopeInstitution = op.Scope?.Institution ?? "",
    };

    public ListBanksReply ListBanks(ListBanksRequest request)
    {
        var reply = new ListBanksReply();
        long nowUs = clock.NowUs();
        foreach (BankRouting bank in SelectBanks(request.Bank))
        {
            reply.Banks.Add(BankView(bank, nowUs));
        }
        return reply;
    }

    public async Task<CommandReply> SetWeightsAsync(SetWeightsRequest request, AuthenticatedOperator op, CancellationToken cancellation)
    {
        op.RequireOperate("set weights");
        BankRouting bank = FindBank(request.Bank);
        CheckReason(request.Reason);
        int[] weights = WeightsOf(request, bank);
        if (request.RampSteps is < 0 or > MaxRampSteps)
        {
            throw Invalid($"ramp_steps: 0 (at once) to {MaxRampSteps}, got {request.RampSteps}");
        }
        if (request.RampDurationMs is < 0 or > MaxRampDurationMs)
        {
            throw Invalid($"ramp_duration_ms: 0 to {MaxRampDurationMs} (24 hours), got {request.RampDurationMs}");
        }
        if ((request.RampSteps == 0) != (request.RampDurationMs == 0))
        {
            throw Invalid("ramp_steps and ramp_duration_ms: both 0 (at once) or both greater than 0 (a ramp)");
        }
        OutputEvent answer = await CommandAsync(
            new SetWeightsFill(bank.CodeText, weights, request.RampSteps, request.RampDurationMs, op.Id, request.Reason), cancellation);
        return new CommandReply { AuditNo = answer.AuditNo, Bank = BankView(audit.Bank(bank.Index), clock.NowUs()) };
    }

    public async Task<CommandReply> SetEndpointStateAsync(SetEndpointStateRequest request, AuthenticatedOperator op, CancellationToken cancellation)
    {
        op.RequireOperate("set endpoint states");
        BankRouting bank = FindBank(request.Bank);
        int endpoint = Array.FindIndex(bank.Endpoints, e => e.Name == request.Endpoint);
        if (endpoint < 0)
        {
            throw Invalid($"endpoint: bank {bank.CodeText} has no endpoint '{request.Endpoint}' (it has {string.Join(", ", bank.Endpoints.Select(e => e.Name))})");
        }
        EndpointState state = request.State switch
        {
            EndpointAdminState.Up => EndpointState.Up,
            EndpointAdminState.Draining => EndpointState.Draining,
            EndpointAdminState.Down => EndpointState.Down,
            _ => throw Invalid($"state: ENDPOINT_ADMIN_STATE_UP, _DRAINING or _DOWN, got {request.State}"),
        };
        CheckReason(request.Reason);
        OutputEvent answer = await CommandAsync(
            new SetStateFill(bank.CodeText, endpoint, state, op.Id, request.Reason), cancellation);
        return new CommandReply { AuditNo = answer.AuditNo, Bank = BankView(audit.Bank(bank.Index), clock.NowUs()) };
    }

    public StatsReply GetStats(StatsRequest request)
    {
        long nowUs = clock.NowUs();
        var reply = new StatsReply { AtUnixMs = nowUs / 1000 };
        foreach (BankRouting bank in SelectBanks(request.Bank))
        {
            var b = new BankStats { Bank = bank.CodeText, InFlight = stats.BankInFlight(bank.Index) };
            foreach (int w in LiveStats.WindowSeconds) b.Windows.Add(Window(bank.Index, -1, w, nowUs));
            for (int e = 0; e < bank.Endpoints.Length; e++)
            {
                var ep = new EndpointStats { Name = bank.Endpoints[e].Name, InFlight = stats.InFlight(bank.Index, e) };
                foreach (int w in LiveStats.WindowSeconds) ep.Windows.Add(Window(bank.Index, e, w, nowUs));
                b.Endpoints.Add(ep);
            }
            reply.Banks.Add(b);
        }
        return reply;
    }

    /// <summary>
    /// Per second, ending with the last complete second (the current one is still filling): the bank and each of its
    /// endpoints, so a page opened during an incident shows the last 15 minutes at once.
    /// </summary>
    public HistoryReply GetHistory(HistoryRequest request)
    {
        if (request.Seconds is < 0 or > LiveStats.HistorySeconds)
        {
            throw Invalid($"seconds: 1 to {LiveStats.HistorySeconds} (0 = {LiveStats.HistorySeconds}), got {request.Seconds}");
        }
        int seconds = request.Seconds == 0 ? LiveStats.HistorySeconds : request.Seconds;
        long from = LiveStats.SecondOf(clock.NowUs()) - seconds;
        var reply = new HistoryReply { FromUnixSecond = from, Seconds = seconds };
        foreach (BankRouting bank in SelectBanks(request.Bank))
        {
            var b = new BankHistory { Bank = bank.CodeText, Total = Series(bank.Index, -1, "", from, seconds) };
            for (int e = 0; e < bank.Endpoints.Length; e++) b.Endpoints.Add(Series(bank.Index, e, bank.Endpoints[e].Name, from, seconds));
            reply.Banks.Add(b);
        }
        return reply;
    }

    private SecondSeries Series(int bank, int endpoint, string name, long from, int seconds)
    {
        var series = new SecondSeries { Endpoint = name };
        stats.EachSecond(bank, endpoint, from, seconds, (_, f) =>
        {
            series.Requests.Add(Narrow(f.Requests));
            series.Succeeded.Add(Narrow(f.Succeeded));
            series.Failed.Add(Narrow(f.Failed));
            series.TimedOut.Add(Narrow(f.TimedOut));
            series.P99LatencyUs.Add(Narrow(f.LatencyPercentileUs(0.99)));
        });
        return series;
    }

    // A second's count is an int in the ring; a sum over endpoints or a latency beyond 35 minutes is capped, never wrapped.
    private static int Narrow(long value) => (int)Math.Min(value, int.MaxValue);

    /// <summary>WatchStats: the interval asked for, checked (at least 250 ms; default 1 s; at most a minute).</summary>
    public static TimeSpan WatchInterval(StatsRequest request) => request.IntervalMs switch
    {
        0 => TimeSpan.FromSeconds(1),
        >= 250 and <= 60_000 => TimeSpan.FromMilliseconds(request.IntervalMs),
        _ => throw Invalid($"interval_ms: 250 to 60000 (0 = 1000), got {request.IntervalMs}"),
    };

    public ListAlertsReply ListAlerts()
    {
        var reply = new ListAlertsReply();
        if (watch is null) return reply;
        foreach (SuccessRateAlert a in watch.Alerts())
        {
            reply.Alerts.Add(new Alert
            {
                Bank = a.Bank, Kind = SuccessRateWatch.Kind, Active = a.Active, SinceUnixMs = a.SinceUnixMs, ClearedUnixMs = a.ClearedUnixMs,
                BaselineSuccessRate = a.BaselineSuccessRate, ActualSuccessRate = a.ActualSuccessRate, WindowsBelow = a.WindowsBelow,
                Message = a.Message,
            });
        }
        return reply;
    }

    public AuditReply ListAudit(AuditRequest request)
    {
        (int limit, string? bank) = CheckAudit(request);
        var reply = new AuditReply();
        reply.Entries.AddRange(audit.Entries(request.AfterAuditNo, limit, bank));
        return reply;
    }

    /// <summary>Checks an audit request: the limit (0 = default) and the bank filter (null = all).</summary>
    public (int Limit, string? Bank) CheckAudit(AuditRequest request)
    {
        if (request.AfterAuditNo < 0) throw Invalid($"after_audit_no: 0 or more, got {request.AfterAuditNo}");
        if (request.Limit is < 0 or > MaxAuditLimit) throw Invalid($"limit: 0 (default {DefaultAuditLimit}) to {MaxAuditLimit}, got {request.Limit}");
        string? bank = request.Bank.Length == 0 ? null : FindBank(request.Bank).CodeText;
        return (request.Limit == 0 ? DefaultAuditLimit : request.Limit, bank);
    }

    public AuditLog Audit => audit;

    // ---------------------------------------------------------------- helpers

    private readonly struct SetWeightsFill(string bank, int[] weightsBps, int rampSteps, long rampDurationMs, string operatorId, string reason) : IInputFill
    {
        public void Fill(ref InputEvent e, long correlationId) =>
            e.PrepareSetEndpointWeights(correlationId, bank, weightsBps, rampSteps, rampDurationMs, operatorId, reason);
    }

    private readonly struct SetStateFill(string bank, int endpoint, EndpointState state, string operatorId, string reason) : IInputFill
    {
        public void Fill(ref InputEvent e, long correlationId) => e.PrepareSetEndpointState(correlationId, bank, endpoint, state, operatorId, reason);
    }

    /// <summary>Publishes an operator command, waits for the engine's answer and for the view to apply its entry.</summary>
    private async Task<OutputEvent> CommandAsync<TFill>(TFill fill, CancellationToken cancellation) where TFill : struct, IInputFill
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        timeout.CancelAfter(CommandTimeoutMs);
        try
        {
            OutputEvent answer;
            try
            {
                answer = await engine.CallAsync(fill, timeout.Token);
            }
            catch (Exception e) when (InstitutionGateway.EngineError(e) is { } status)
            {
                throw status;
            }
            if (answer.Reject != RejectCode.None)
            {
                throw new RpcException(ResultMapping.StatusOf(answer.Reject),
                    $"{ResultMapping.RejectName(answer.Reject)}: {FieldName(answer.RejectField)} {ResultMapping.Describe(answer.Reject)}");
            }
            await audit.WaitForAsync(answer.AuditNo, timeout.Token);
            return answer;
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            throw new RpcException(StatusCode.DeadlineExceeded, $"the engine did not apply the command within {CommandTimeoutMs} ms (it may still apply; see the audit log)");
        }
    }

    private static string FieldName(RequestField field) => field switch
    {
        RequestField.Bank => "bank",
        RequestField.Endpoint => "endpoint",
        RequestField.Weights => "weights_bps",
        RequestField.EndpointState => "state",
        RequestField.Operator => "operator_id",
        RequestField.Ramp => "ramp_steps/ramp_duration_ms",
        RequestField.Note => "reason",
        _ => ResultMapping.FieldName(field),
    };

    private int[] WeightsOf(SetWeightsRequest request, BankRouting bank)
    {
        int n = bank.Endpoints.Length;
        int[] weights;
        if (request.WeightsBps.Count > 0 && request.ByEndpoint.Count > 0)
        {
            throw Invalid("weights_bps and by_endpoint: give one of the two, not both");
        }
        if (request.ByEndpoint.Count > 0)
        {
            weights = new int[n];
            foreach (var (name, weight) in request.ByEndpoint)
            {
                int index = Array.FindIndex(bank.Endpoints, e => e.Name == name);
                if (index < 0)
                {
                    throw Invalid($"by_endpoint: bank {bank.CodeText} has no endpoint '{name}' (it has {string.Join(", ", bank.Endpoints.Select(e => e.Name))})");
                }
                weights[index] = weight;
            }
            string[] missing = bank.Endpoints.Select(e => e.Name).Where(name => !request.ByEndpoint.ContainsKey(name)).ToArray();
            if (missing.Length > 0) throw Invalid($"by_endpoint: give every endpoint of bank {bank.CodeText} a weight; missing {string.Join(", ", missing)}");
        }
        else
        {
            if (request.WeightsBps.Count != n)
            {
                throw Invalid($"weights_bps: bank {bank.CodeText} has {n} endpoints ({string.Join(", ", bank.Endpoints.Select(e => e.Name))}), got {request.WeightsBps.Count} weights");
            }
            weights = request.WeightsBps.ToArray();
        }
        long sum = 0;
        for (int i = 0; i < n; i++)
        {
            if (weights[i] is < 0 or > Routing.TotalWeightBps)
            {
                throw Invalid($"weights_bps: the weight of {bank.Endpoints[i].Name} must be 0 to {Routing.TotalWeightBps} basis points, got {weights[i]}");
            }
            sum += weights[i];
        }
        if (sum != Routing.TotalWeightBps) throw Invalid($"weights_bps: must sum to {Routing.TotalWeightBps} basis points, got {sum}");
        return weights;
    }

    private static void CheckReason(string reason)
    {
        if (string.IsNullOrWhiteSpace(reason)) throw Invalid("reason: required (why the change is made; it goes into the audit log)");
        int bytes = Encoding.UTF8.GetByteCount(reason);
        if (bytes > MaxReasonBytes) throw Invalid($"reason: at most {MaxReasonBytes} bytes of UTF-8, got {bytes}");
        foreach (char c in reason)
        {
            if (char.IsControl(c)) throw Invalid($"reason: no control characters (found U+{(int)c:X4})");
        }
    }

    private IEnumerable<BankRouting> SelectBanks(string bank) => bank.Length == 0 ? audit.Banks() : [FindBank(bank)];

    private BankRouting FindBank(string code)
    {
        if (code.Length == 0) throw Invalid("bank: required (a 3-digit bank code, e.g. 102)");
        foreach (BankRouting b in audit.Banks())
        {
            if (b.CodeText == code) return b;
        }
        throw Invalid($"bank: no bank '{code}' is connected to the switch (banks: {string.Join(", ", audit.Banks().Select(b => b.CodeText))})");
    }

    private static RpcException Invalid(string message) => new(StatusCode.InvalidArgument, message);

    private WindowStats Window(int bank, int endpoint, int seconds, long nowUs) => ToWire(stats.Window(bank, endpoint, seconds, nowUs), seconds);

    public static WindowStats ToWire(WindowFigures f, int seconds) => new()
    {
        WindowSeconds = seconds,
        RequestsPerSecond = (double)f.Requests / seconds,
        SuccessRate = f.SuccessRate,
        TimeoutRate = f.TimeoutRate,
        Requests = f.Requests,
        Succeeded = f.Succeeded,
        Failed = f.Failed,
        TimedOut = f.TimedOut,
        P50LatencyUs = f.LatencyPercentileUs(0.50),
        P99LatencyUs = f.LatencyPercentileUs(0.99),
    };

    private BankView BankView(BankRouting bank, long nowUs)
    {
        var view = new BankView { Bank = bank.CodeText, Name = bank.Name, Last10S = Window(bank.Index, -1, 10, nowUs) };
        for (int e = 0; e < bank.Endpoints.Length; e++)
        {
            EndpointRouting ep = bank.Endpoints[e];
            view.Endpoints.Add(new EndpointView
            {
                Name = ep.Name,
                WeightBps = ep.WeightBps,
                State = AuditLog.WireState(ep.State),
                Reachable = ep.Reachable,
                Breaker = AuditLog.WireBreakerState(ep.Breaker),
                TakesTraffic = ep.TakesTraffic,
                InFlight = stats.InFlight(bank.Index, e),
                Last10S = Window(bank.Index, e, 10, nowUs),
            });
        }
        if (bank.Ramp is { } ramp)
        {
            var r = new RampView { StepsTotal = ramp.StepsTotal, StepsDone = ramp.StepsDone, OperatorId = ramp.OperatorId, NextStepUnixMs = ramp.NextStepUs / 1000 };
            r.FromWeightsBps.AddRange(ramp.FromWeightsBps);
            r.TargetWeightsBps.AddRange(ramp.TargetWeightsBps);
            view.Ramp = r;
        }
        return view;
    }
}
