using Switch.Engine.Business;
using Switch.Engine.Events;

namespace Switch.Engine.Tests.Support;

/// <summary>Drives a <see cref="SwitchLogic"/> directly, one event at a time, with a controlled clock.</summary>
public sealed class LogicHarness
{
    public const long StartUs = 1_763_000_000_000_000; // a day in November 2025, UTC
    public readonly CollectingSink Sink = new();
    public readonly SwitchLogic Logic;
    public long NowUs = StartUs;
    private long _correlation;

    public LogicHarness(SwitchConfig? config = null, ITransactionArchive? archive = null) =>
        Logic = new SwitchLogic(config ?? TestConfigs.Small(), Sink, archive) { VerifyInvariants = true };

    /// <summary>The last event applied, stamped: what the journal would hold (for replay tests).</summary>
    public InputEvent LastApplied;

    public List<OutputEvent> Apply(ref InputEvent e)
    {
        int before = Sink.Outputs.Count;
        e.TimestampUs = NowUs;
        LastApplied = e;
        Logic.Apply(ref e);
        Assert.Equal(0, Logic.PositionSumFen());
        return Sink.Outputs.GetRange(before, Sink.Outputs.Count - before);
    }

    public static InputEvent Request(RequestType type, string institution, string orderNo, long amountFen,
        string bank = "102", string account = "6222020200112233", string currency = "CNY", string? echo = null,
        string? originalOrderNo = null)
    {
        var e = new InputEvent { Kind = EventKind.InstitutionRequest, RequestType = type, AmountFen = amountFen };
        e.Institution.Set(institution);
        e.OrderNo.Set(orderNo);
        e.BankRef.Set(bank);
        e.Account.Set(account);
        e.Currency.Set(currency);
        e.Echo.Set(echo);
        e.OriginalOrderNo.Set(originalOrderNo);
        return e;
    }

    public List<OutputEvent> Send(InputEvent e)
    {
        e.CorrelationId = ++_correlation;
        return Apply(ref e);
    }

    public List<OutputEvent> Pay(string orderNo, long amountFen, string institution = "ALIPAY", string bank = "102",
        string account = "6222020200112233", string? echo = null) =>
        Send(Request(RequestType.AgreementPayment, institution, orderNo, amountFen, bank, account, echo: echo));

    public List<OutputEvent> Payout(string orderNo, long amountFen, string institution = "ALIPAY", string bank = "103") =>
        Send(Request(RequestType.Payout, institution, orderNo, amountFen, bank));

    public List<OutputEvent> Refund(string orderNo, string originalOrderNo, long amountFen, string institution = "ALIPAY") =>
        Send(Request(RequestType.Refund, institution, orderNo, amountFen, bank: "", account: "", originalOrderNo: originalOrderNo));

    public List<OutputEvent> Query(string orderNo, string institution = "ALIPAY") =>
        Send(Request(RequestType.Query, institution, orderNo, 0, bank: "", account: "", currency: ""));

    public List<OutputEvent> BankAnswer(long transactionId, BankOperation operation, BankReply reply, string reason = "")
    {
        var e = new InputEvent { Kind = EventKind.BankResult, TransactionId = transactionId, Operation = operation, Reply = reply };
        e.Reason.Set(reason);
        return Apply(ref e);
    }

    public List<OutputEvent> Tick(long advanceMs)
    {
        NowUs += advanceMs * 1000;
        var e = new InputEvent { Kind = EventKind.Tick };
        return Apply(ref e);
    }

    public const string Operator = "op-alice";
    public const string Note = "cut-over plan 7";

    public List<OutputEvent> SetWeights(int bankCode, params int[] weightsBps) => Ramp(bankCode, 0, 0, weightsBps);

    public List<OutputEvent> Ramp(int bankCode, int steps, long durationMs, int[] weightsBps,
        string? operatorId = Operator, string? note = Note)
    {
        var e = new InputEvent
        {
            Kind = EventKind.SetEndpointWeights, CorrelationId = ++_correlation, EndpointCount = weightsBps.Length,
            RampSteps = steps, RampDurationMs = durationMs,
        };
        e.BankRef.Set(bankCode.ToString("D3"));
        e.Operator.Set(operatorId);
        e.Note.Set(note);
        for (int i = 0; i < weightsBps.Length; i++) e.WeightsBps[i] = weightsBps[i];
        return Apply(ref e);
    }

    public List<OutputEvent> SetState(int bankCode, int endpointIndex, EndpointState state, string? operatorId = Operator, string? note = Note)
    {
        var e = new InputEvent { Kind = EventKind.SetEndpointState, CorrelationId = ++_correlation, EndpointIndex = endpointIndex, EndpointState = state };
        e.BankRef.Set(bankCode.ToString("D3"));
        e.Operator.Set(operatorId);
        e.Note.Set(note);
        return Apply(ref e);
    }

    /// <summary>What the bank connector publishes when it loses or regains an endpoint.</summary>
    public List<OutputEvent> Reachability(int bankCode, int endpointIndex, bool reachable)
    {
        var e = new InputEvent { Kind = EventKind.EndpointReachability, EndpointIndex = endpointIndex, Reachable = reachable };
        e.BankRef.Set(bankCode.ToString("D3"));
        e.Operator.Set("connector");
        e.Note.Set(reachable ? "probe answered" : "stream ended");
        return Apply(ref e);
    }

    public List<OutputEvent> CloseBatch(string? operatorId = "op-alice")
    {
        var e = new InputEvent { Kind = EventKind.CloseBatch, CorrelationId = ++_correlation };
        e.Operator.Set(operatorId);
        return Apply(ref e);
    }

    /// <summary>Sends a transfer and has the bank answer it at once; returns the final answer.</summary>
    public OutputEvent PayAndSettle(string orderNo, long amountFen, BankReply reply = BankReply.Succeeded, string institution = "ALIPAY")
    {
        OutputEvent request = Single(Pay(orderNo, amountFen, institution), OutputKind.BankRequest);
        return Single(BankAnswer(request.TransactionId, BankOperation.Debit, reply), OutputKind.Answer);
    }

    /// <summary>The request was refused with this code and field, and nothing else came out.</summary>
    public static void AssertReject(List<OutputEvent> outputs, RejectCode code, RequestField field)
    {
        if (code == RejectCode.None)
        {
            return;
        }
        OutputEvent answer = Assert.Single(outputs);
        Assert.Equal(OutputKind.Answer, answer.Kind);
        Assert.Equal(code, answer.Reject);
        Assert.Equal(field, answer.RejectField);
    }

    public static OutputEvent Single(List<OutputEvent> outputs, OutputKind kind)
    {
        var matching = outputs.FindAll(o => o.Kind == kind);
        Assert.True(matching.Count == 1, $"expected one {kind} output, got {matching.Count} of {outputs.Count} outputs");
        return matching[0];
    }
}
