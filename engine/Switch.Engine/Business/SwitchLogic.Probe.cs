using System.Runtime.CompilerServices;
using Switch.Engine.Events;

namespace Switch.Engine.Business;

/// <summary>
/// Watches the logic decide institution requests, for routing explained. Set only on a logic that replays the journal
/// for an explanation, never on the live one: the live path pays one null check. For a request it watches, the logic
/// captures the inputs of the decision just before making it, then what it emitted for it.
/// </summary>
public interface IDecisionProbe
{
    /// <summary>Whether to capture this request's decision; reads only the event (institution, order number).</summary>
    bool Watches(ref InputEvent e);

    /// <summary>A watched request, decided: what the logic saw and what it did.</summary>
    void Decided(DecisionRecord record);
}

public sealed partial class SwitchLogic
{
    /// <summary>At most this many outputs of one request are kept for its record (an answer, or a bank request).</summary>
    private const int MaxCapturedOutputs = 8;

    private IDecisionProbe? _probe;

    /// <summary>The probe watching decisions (null: none, the live engine).</summary>
    public IDecisionProbe? DecisionProbe
    {
        get => _probe;
        set => _probe = value;
    }

    private void OnProbedRequest(ref InputEvent e)
    {
        if (!_probe!.Watches(ref e))
        {
            OnRequest(ref e);
            return;
        }
        DecisionRecord record = CaptureInputs(ref e);
        IOutputSink inner = _out.Sink;
        var capture = new CapturingSink(inner);
        _out.SetSink(capture);
        try
        {
            OnRequest(ref e);
        }
        finally
        {
            _out.SetSink(inner);
        }
        record.SetOutcome(capture.Outputs);
        _probe.Decided(record);
    }

    /// <summary>The state a transfer's decision reads, read without changing anything (the draw looks at a probe turn,
    /// it does not take it).</summary>
    private DecisionRecord CaptureInputs(ref InputEvent e)
    {
        var record = new DecisionRecord
        {
            EventTimeUs = NowUs,
            RequestType = e.RequestType,
            AmountFen = e.AmountFen,
            Institution = e.Institution.ToString(),
            OrderNo = e.OrderNo.ToString(),
            BankRef = e.BankRef.ToString(),
            OriginalOrderNo = e.OriginalOrderNo.ToString(),
            NextTransactionId = _transactions.LastId + 1,
        };
        if (CheckInstitution(ref e, out Institution? inst).Refused || e.RequestType is not (RequestType.AgreementPayment or RequestType.Payout or RequestType.Refund))
        {
            return record;
        }
        record.SingleLimitFen = inst!.Config.SingleLimitFen;
        record.FeeFen = inst.FeeFen(e.RequestType, Math.Max(0, Math.Min(e.AmountFen, inst.Config.SingleLimitFen)));
        record.PositionFen = inst.PositionFen;
        record.ReservedDebitFen = inst.ReservedDebitFen;
        record.NetDebitCapFen = inst.Config.NetDebitCapFen;
        RequestChecks.TransferFields(ref e, inst, _banksByCode, out Bank? bank);
        ReadOnlySpan<byte> account = e.Account.Span;
        if (e.RequestType == RequestType.Refund)
        {
            ref Transaction original = ref _orders.Find(new ScopedKey(inst.Index, e.OriginalOrderNo.Span), out _);
            if (!Unsafe.IsNullRef(ref original))
            {
                bank = _banks[original.BankIndex];
                record.RefundAccount = original.Account.ToString();
            }
        }
        if (bank is null)
        {
            return record;
        }
        record.BankCode = bank.Code;
        record.BankUnresolved = bank.Unresolved;
        record.MaxUnresolvedPerBank = _rules.MaxUnresolvedPerBank;
        record.DailyLimitFen = bank.Config.DailyAccountLimitFen;
        record.Day = DayOf(NowUs);
        if (e.RequestType == RequestType.AgreementPayment)
        {
            record.DailyUsedFen = _dailyUsage.UsedFen(new ScopedKey(bank.Index, account), record.Day);
        }
        record.Draw = Routing.Draw(bank, record.NextTransactionId);
        record.Endpoints = new EndpointSnapshot[bank.Endpoints.Length];
        for (int i = 0; i < bank.Endpoints.Length; i++)
        {
            Endpoint ep = bank.Endpoints[i];
            record.Endpoints[i] = new EndpointSnapshot(ep.Name, ep.WeightBps, ep.State, ep.Reachable, ep.Breaker.State,
                ep.Breaker.OpenUntilUs, ep.Breaker.ProbeTurns, ep.Breaker.ProbeEvery, ep.InFlight, ep.InFlightCap,
                EndpointSnapshot.ExclusionOf(ep, i, in record.Draw), ep.InRotation, ep.TakesTraffic);
        }
        if (bank.Ramp.Active)
        {
            record.RampTargetBps = ((ReadOnlySpan<int>)bank.Ramp.TargetBps)[..bank.Endpoints.Length].ToArray();
            record.RampStepsDone = bank.Ramp.StepsDone;
            record.RampSteps = bank.Ramp.Steps;
        }
        return record;
    }

    /// <summary>Keeps a copy of the first few outputs (one request makes one or two) and passes each on.</summary>
    private sealed class CapturingSink(IOutputSink inner) : IOutputSink
    {
        private OutputEvent _pending;
        public List<OutputEvent> Outputs { get; } = new(2);

        public ref OutputEvent Begin()
        {
            _pending.Reset();
            return ref _pending;
        }

        public void End()
        {
            if (Outputs.Count < MaxCapturedOutputs) Outputs.Add(_pending);
            inner.Begin() = _pending;
            inner.End();
        }
    }
}

/// <summary>Why an endpoint did not take the transaction, the first reason in the order routing checks them.</summary>
public enum EndpointExclusion : byte
{
    /// <summary>In the draw.</summary>
    None = 0,
    Down,
    Draining,
    Unreachable,
    BreakerOpen,
    /// <summary>Half-open, the draw landed on it and it was not the probe's turn: the closed endpoints drew again.</summary>
    HalfOpenNotProbeTurn,
    /// <summary>Half-open and the transaction went through the second draw (the closed endpoints only).</summary>
    HalfOpenSecondDraw,
    /// <summary>A weight of 0: no traffic.</summary>
    NoWeight,
}

/// <summary>An endpoint as a decision saw it.</summary>
public readonly record struct EndpointSnapshot(string Name, int WeightBps, EndpointState State, bool Reachable,
    BreakerState Breaker, long BreakerOpenUntilUs, long ProbeTurns, int ProbeEvery, int InFlight, int InFlightCap,
    EndpointExclusion Exclusion, bool InFirstDraw, bool InSecondDraw)
{
    /// <summary>In flight at its cap: a draw landing here is refused ENDPOINT_BUSY (the cap is not a reason to skip it).</summary>
    public bool AtInFlightCap => InFlight >= InFlightCap;

    internal static EndpointExclusion ExclusionOf(Endpoint ep, int index, in RoutingDraw draw) =>
        ep.State == EndpointState.Down ? EndpointExclusion.Down
        : ep.State == EndpointState.Draining ? EndpointExclusion.Draining
        : !ep.Reachable ? EndpointExclusion.Unreachable
        : ep.Breaker.State == BreakerState.Open ? EndpointExclusion.BreakerOpen
        : ep.WeightBps == 0 ? EndpointExclusion.NoWeight
        : ep.Breaker.State == BreakerState.HalfOpen && draw.LandedOnHalfOpen && !draw.ProbeTurn
            ? (draw.Endpoint == index ? EndpointExclusion.HalfOpenNotProbeTurn : EndpointExclusion.HalfOpenSecondDraw)
        : EndpointExclusion.None;
}

/// <summary>
/// One institution request's decision as the logic made it: the inputs it read (the institution's limits and position,
/// the bank's endpoints, weights and breakers, the routing draw, the account's daily usage) and what it emitted (the
/// refusal, or the transaction and the endpoint its request went to). Built only under a probe.
/// </summary>
public sealed class DecisionRecord
{
    public long EventTimeUs { get; init; }
    public RequestType RequestType { get; init; }
    public long AmountFen { get; init; }
    public required string Institution { get; init; }
    public required string OrderNo { get; init; }
    public required string BankRef { get; init; }
    public required string OriginalOrderNo { get; init; }
    /// <summary>The id the transaction gets if admitted, which the routing hash is taken of.</summary>
    public long NextTransactionId { get; init; }

    public long SingleLimitFen { get; internal set; }
    /// <summary>The fee the request would carry (against the net debit cap with the amount).</summary>
    public long FeeFen { get; internal set; }
    public long PositionFen { get; internal set; }
    public long ReservedDebitFen { get; internal set; }
    public long NetDebitCapFen { get; internal set; }
    /// <summary>A refund's payer: the original payment's account.</summary>
    public string RefundAccount { get; internal set; } = "";

    /// <summary>The bank the decision concerns (a refund: its original's), -1 when none was resolved.</summary>
    public int BankCode { get; internal set; } = -1;
    public int BankUnresolved { get; internal set; }
    public int MaxUnresolvedPerBank { get; internal set; }
    public long DailyUsedFen { get; internal set; }
    public long DailyLimitFen { get; internal set; }
    /// <summary>The day (days since the epoch in the switch's day zone) daily limits count on.</summary>
    public int Day { get; internal set; }
    public EndpointSnapshot[] Endpoints { get; internal set; } = [];
    public RoutingDraw Draw;
    /// <summary>A running ramp's target weights (null: none running), and how far it is.</summary>
    public int[]? RampTargetBps { get; internal set; }
    public int RampStepsDone { get; internal set; }
    public int RampSteps { get; internal set; }

    // ---- what the logic did
    public RejectCode Reject { get; private set; }
    public RequestField RejectField { get; private set; }
    /// <summary>What the engine added to a refusal (BANK_UNRESOLVED_LIMIT: the bank and its bound).</summary>
    public string RejectDetail { get; private set; } = "";
    /// <summary>Answered as a repeat of an order already made.</summary>
    public bool Duplicate { get; private set; }
    /// <summary>The transaction issued (or the repeat's), 0 when refused.</summary>
    public long TransactionId { get; private set; }
    /// <summary>The endpoint the bank request went to, -1 when none was sent.</summary>
    public int SentToEndpoint { get; private set; } = -1;

    public bool Admitted => SentToEndpoint >= 0;

    internal void SetOutcome(List<OutputEvent> outputs)
    {
        foreach (OutputEvent o in outputs)
        {
            if (o.Kind == OutputKind.BankRequest)
            {
                SentToEndpoint = o.EndpointIndex;
                TransactionId = o.TransactionId;
            }
            else if (o.Kind == OutputKind.Answer)
            {
                Reject = o.Reject;
                RejectField = o.RejectField;
                Duplicate = o.Duplicate;
                if (o.Reject != RejectCode.None) RejectDetail = o.Reason.ToString();
                else TransactionId = o.TransactionId;
            }
        }
    }
}
