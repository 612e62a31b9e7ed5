using System.Globalization;
using System.Text;
using Switch.Contracts.V1;
using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Grpc;
using Switch.Host.Gateway;

namespace Switch.Host.Admin;

/// <summary>
/// ExplainOrder: why an order went where it went, from a replay of the journal (<see cref="DecisionReplay"/>) on a
/// thread of its own, never the live logic's. At most <c>maxConcurrent</c> replays at once (each holds a logic's
/// tables), beyond: RESOURCE_EXHAUSTED. A key scoped to an institution explains its own orders; one scoped to a bank,
/// orders decided for its bank.
/// </summary>
public sealed class OrderExplanations
{
    /// <summary>How often a replay under way logs how far it is.</summary>
    public const int ProgressLogIntervalMs = 5_000;

    private readonly SwitchEngine _engine;
    private readonly SwitchConfig _running;
    private readonly int _maxConcurrent;
    private readonly Log _log;
    private readonly string _scratchDirectory;
    private readonly SemaphoreSlim _slots;
    private readonly int _offsetHours;
    private readonly Func<CancellationToken, Task>? _heldForTest;
    private long _explains;

    /// <param name="heldForTest">Test hook (null in the switch): awaited once a replay has its slot, before it starts.</param>
    public OrderExplanations(SwitchEngine engine, SwitchConfig running, string dataDirectory, int maxConcurrent, Log log,
        Func<CancellationToken, Task>? heldForTest = null)
    {
        _engine = engine;
        _running = running;
        _maxConcurrent = maxConcurrent;
        _log = log;
        _heldForTest = heldForTest;
        _slots = new SemaphoreSlim(maxConcurrent, maxConcurrent);
        _offsetHours = running.Rules.DayUtcOffsetHours;
        // The replays' scratch archives: what a replay under way when the process stopped left is of no use.
        _scratchDirectory = Path.Combine(dataDirectory, "explain");
        if (Directory.Exists(_scratchDirectory)) Directory.Delete(_scratchDirectory, recursive: true);
    }

    /// <summary>Explanations under way now.</summary>
    public int Running => _maxConcurrent - _slots.CurrentCount;

    public async Task<ExplainReply> ExplainAsync(ExplainRequest request, AuthenticatedOperator op, CancellationToken cancel)
    {
        string institution = request.Institution;
        if (op.Scope is { Institution: { } own })
        {
            if (institution.Length == 0) institution = own;
            else if (institution != own)
                throw new RpcException(StatusCode.PermissionDenied, $"operator '{op.Id}' is scoped to {op.Scope}: it may not see institution {institution}'s orders");
        }
        if (institution.Length == 0) throw Invalid("institution: required (the code of the institution whose order it is)");
        if (!_running.Institutions.Any(i => i.Code == institution)) throw Invalid($"institution: no institution '{institution}'");
        if (request.OrderNo.Length == 0) throw Invalid("order_no: required");
        if (Encoding.UTF8.GetByteCount(request.OrderNo) > FieldRules.OrderNoMaxBytes)
            throw Invalid($"order_no: at most {FieldRules.OrderNoMaxBytes} bytes");
        if (!_slots.Wait(0))
        {
            throw new RpcException(StatusCode.ResourceExhausted, $"{_maxConcurrent} explanations are replaying the journal already (maxConcurrentExplains); retry when one is done");
        }
        DecisionReplayResult result;
        try
        {
            if (_heldForTest is not null) await _heldForTest(cancel);
            long n = Interlocked.Increment(ref _explains);
            string scratch = Path.Combine(_scratchDirectory, n.ToString(CultureInfo.InvariantCulture));
            string orderNo = request.OrderNo;
            result = await Task.Factory.StartNew(() => DecisionReplay.Run(_engine, institution, orderNo, scratch,
                    p => _log.Info("explain_progress", "explaining an order: replaying the journal",
                        ("institution", institution), ("order_no", orderNo), ("records", p.Records), ("elapsed_ms", p.ElapsedMs)),
                    ProgressLogIntervalMs, cancel),
                cancel, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            throw new RpcException(StatusCode.Cancelled, "explain: the caller went away; the replay stopped");
        }
        catch (ObjectDisposedException)
        {
            throw new RpcException(StatusCode.Unavailable, "explain: the switch is stopping; its journal is closed");
        }
        finally
        {
            _slots.Release();
        }
        if (result.Decisions.Count == 0)
        {
            throw new RpcException(StatusCode.NotFound, $"order {request.OrderNo} of institution {institution}: no payment, payout or refund with this order number in the journal ({result.RecordsScanned} records)");
        }
        if (op.Scope is { Bank: { } bank } && result.Decisions.Any(d => d.BankCode.ToString("D3", CultureInfo.InvariantCulture) != bank))
        {
            throw new RpcException(StatusCode.PermissionDenied, $"operator '{op.Id}' is scoped to {op.Scope}: order {request.OrderNo} of institution {institution} was not decided for bank {bank}");
        }
        var reply = new ExplainReply
        {
            Institution = institution,
            OrderNo = request.OrderNo,
            DecisionsSeen = result.DecisionsSeen,
            JournalRecordsScanned = result.RecordsScanned,
            EventsReplayed = result.EventsReplayed,
            ElapsedMs = result.ElapsedMs,
        };
        SwitchConfig config = result.Config ?? _running;
        foreach (DecisionRecord d in result.Decisions) reply.Decisions.Add(ToWire(d, config));
        return reply;
    }

    private OrderDecision ToWire(DecisionRecord d, SwitchConfig config)
    {
        var w = new OrderDecision
        {
            AtUnixUs = d.EventTimeUs,
            At = DateTimeOffset.FromUnixTimeMilliseconds(d.EventTimeUs / 1000).ToOffset(TimeSpan.FromHours(_offsetHours))
                .ToString("yyyy-MM-dd'T'HH:mm:ss.fffzzz", CultureInfo.InvariantCulture),
            Kind = ResultMapping.ScreamingSnake(d.RequestType.ToString()),
            AmountFen = d.AmountFen,
            Bank = d.BankCode >= 0 ? d.BankCode.ToString("D3", CultureInfo.InvariantCulture) : "",
            Outcome = d.Admitted ? "ADMITTED" : d.Duplicate ? "REPEAT" : "REFUSED",
            TransactionId = d.TransactionId,
            HashedTransactionId = d.NextTransactionId,
        };
        for (int i = 0; i < d.Endpoints.Length; i++)
        {
            EndpointSnapshot e = d.Endpoints[i];
            w.Endpoints.Add(new ExplainEndpoint
            {
                Index = i,
                Name = e.Name,
                WeightBps = e.WeightBps,
                State = e.State.ToString().ToUpperInvariant(),
                Reachable = e.Reachable,
                Breaker = ResultMapping.ScreamingSnake(e.Breaker.ToString()),
                BreakerOpenUntilUnixUs = e.BreakerOpenUntilUs,
                InFlight = e.InFlight,
                InFlightCap = e.InFlightCap,
                Excluded = e.Exclusion == EndpointExclusion.None ? "" : ResultMapping.ScreamingSnake(e.Exclusion.ToString()),
                AtInFlightCap = e.AtInFlightCap,
                Chosen = i == d.SentToEndpoint,
            });
        }
        if (d.Admitted) w.Endpoint = d.Endpoints[d.SentToEndpoint].Name;
        if (d.RampTargetBps is { } target)
        {
            w.RampTargetBps.AddRange(target);
            w.RampStepsDone = d.RampStepsDone;
            w.RampSteps = d.RampSteps;
        }
        if (d.Endpoints.Length > 0)
        {
            RoutingDraw draw = d.Draw;
            w.Draws.Add(Step(d, draw.Hash, draw.LiveWeightBps, draw.PointBps, draw.Endpoint, second: false));
            if (draw.LandedOnHalfOpen && !draw.ProbeTurn)
            {
                w.Draws.Add(Step(d, draw.SecondHash, draw.SecondLiveWeightBps, draw.SecondPointBps, draw.SecondEndpoint, second: true));
            }
        }
        if (d.Reject != RejectCode.None)
        {
            w.RejectCode = ResultMapping.RejectName(d.Reject);
            w.RejectField = ResultMapping.FieldName(d.RejectField);
            var detail = new Text32();
            detail.Set(d.RejectDetail);
            w.RejectMessage = ResultMapping.RejectMessage(d.Reject, d.RejectField, in detail);
            w.RefusedBy = RefusedBy(d, config);
        }
        Because(w, d);
        return w;
    }

    private static DrawStep Step(DecisionRecord d, ulong hash, long liveWeightBps, long pointBps, int landedOn, bool second)
    {
        var step = new DrawStep
        {
            Hash = hash.ToString("x16", CultureInfo.InvariantCulture),
            LiveWeightBps = liveWeightBps,
            PointBps = pointBps,
            LandedOn = landedOn >= 0 ? d.Endpoints[landedOn].Name : "",
        };
        long from = 0;
        foreach (EndpointSnapshot e in d.Endpoints)
        {
            if (!(second ? e.InSecondDraw : e.InFirstDraw) || e.WeightBps == 0) continue;
            step.Ranges.Add(new WeightRange { Endpoint = e.Name, FromBps = from, ToBps = from + e.WeightBps });
            from += e.WeightBps;
        }
        return step;
    }

    /// <summary>The figures the refusing check compared.</summary>
    private static string RefusedBy(DecisionRecord d, SwitchConfig config)
    {
        string bank = d.BankCode.ToString("D3", CultureInfo.InvariantCulture);
        return d.Reject switch
        {
            RejectCode.AmountOverLimit => $"single-transaction limit of {d.Institution}: amount {d.AmountFen} > limit {d.SingleLimitFen}",
            RejectCode.DailyLimitExceeded => $"daily account limit at bank {bank}: {d.DailyUsedFen} used today + amount {d.AmountFen} = {d.DailyUsedFen + d.AmountFen} > limit {d.DailyLimitFen}",
            RejectCode.NetDebitCapExceeded => $"net debit cap of {d.Institution}: position {d.PositionFen} - reserved {d.ReservedDebitFen} - (amount {d.AmountFen} + fee {d.FeeFen}) = {d.PositionFen - d.ReservedDebitFen - d.AmountFen - d.FeeFen} < -cap {d.NetDebitCapFen}",
            RejectCode.BankUnresolvedLimit => $"bank {bank} has {d.BankUnresolved} transactions awaiting an outcome, rules.maxUnresolvedPerBank {d.MaxUnresolvedPerBank}",
            RejectCode.BankUnavailable => $"no endpoint of bank {bank} in the draw: " + string.Join(", ", d.Endpoints.Select(e => $"{e.Name} {Excluded(e)}")),
            RejectCode.EndpointBusy when d.Draw.Chosen >= 0 => $"endpoint {d.Endpoints[d.Draw.Chosen].Name} drawn with {d.Endpoints[d.Draw.Chosen].InFlight} in flight, its cap {d.Endpoints[d.Draw.Chosen].InFlightCap}",
            RejectCode.UnknownInstitution or RejectCode.InstitutionDisabled => $"institution {d.Institution}: {ResultMapping.Describe(d.Reject)}",
            _ => $"{ResultMapping.FieldName(d.RejectField)} {ResultMapping.Describe(d.Reject)}".Trim(),
        };
    }

    private static string Excluded(EndpointSnapshot e) =>
        e.Exclusion == EndpointExclusion.None ? "in the draw" : ResultMapping.ScreamingSnake(e.Exclusion.ToString());

    /// <summary>The decision in sentences, in the order the logic took it.</summary>
    private static void Because(OrderDecision w, DecisionRecord d)
    {
        if (d.Endpoints.Length > 0)
        {
            w.Because.Add($"weights of bank {w.Bank}: " + string.Join(", ", d.Endpoints.Select(e => $"{e.Name} {e.WeightBps}")) +
                (d.RampTargetBps is { } t ? $" (ramping to {string.Join("/", t)}, step {d.RampStepsDone} of {d.RampSteps})" : ""));
            foreach (EndpointSnapshot e in d.Endpoints)
            {
                if (e.Exclusion != EndpointExclusion.None) w.Because.Add($"{e.Name} excluded: {Excluded(e)}");
                if (e.AtInFlightCap) w.Because.Add($"{e.Name} at its in-flight cap ({e.InFlight} of {e.InFlightCap})");
            }
            foreach (DrawStep s in w.Draws)
            {
                string range = s.Ranges.FirstOrDefault(r => r.Endpoint == s.LandedOn) is { } r ? $" in {r.Endpoint}'s range [{r.FromBps}, {r.ToBps})" : "";
                w.Because.Add(s.LiveWeightBps == 0
                    ? "draw: no endpoint in the draw"
                    : $"draw: hash {s.Hash} of transaction {d.NextTransactionId} mod {s.LiveWeightBps} = {s.PointBps}{range}");
            }
            if (d.Draw.LandedOnHalfOpen)
            {
                w.Because.Add(d.Draw.ProbeTurn ? $"{d.Endpoints[d.Draw.Endpoint].Name} is half-open and it was its probe's turn"
                    : $"{d.Endpoints[d.Draw.Endpoint].Name} is half-open and not its probe's turn (one in {d.Endpoints[d.Draw.Endpoint].ProbeEvery}): drawn again among the closed");
            }
        }
        if (d.Admitted) w.Because.Add($"sent to {w.Endpoint} as transaction {d.TransactionId}");
        else if (d.Duplicate) w.Because.Add($"a repeat of transaction {d.TransactionId}");
        else w.Because.Add($"refused {w.RejectCode}{(w.RejectField.Length > 0 ? " (" + w.RejectField + ")" : "")}: {w.RefusedBy}");
    }

    private static RpcException Invalid(string message) => new(StatusCode.InvalidArgument, message);
}
