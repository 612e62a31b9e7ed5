using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Tests.Support;
using static Switch.Engine.Tests.Support.LogicHarness;

namespace Switch.Engine.Tests.Business;

/// <summary>Cut-over weights, ramps, endpoint states, reachability and the audit log, driven through the logic.</summary>
public sealed class OperatorControlTests
{
    private readonly LogicHarness _h = new(TestConfigs.Small(transactionCapacity: 4096));

    private static OutputEvent Audit(List<OutputEvent> outputs, AuditKind kind)
    {
        OutputEvent audit = Single(outputs, OutputKind.Audit);
        Assert.Equal(kind, audit.AuditKind);
        return audit;
    }

    private static int[] Weights(in OutputEvent audit) =>
        ((ReadOnlySpan<int>)audit.WeightsBps)[..audit.EndpointCount].ToArray();

    private int[] LogicWeights(int bankCode) => _h.Logic.BankByCode(bankCode).Endpoints.Select(e => e.WeightBps).ToArray();

    [Fact]
    public void A_weight_change_shifts_the_split_of_thousands_of_transactions_and_is_audited()
    {
        List<OutputEvent> outputs = _h.SetWeights(102, 3_000, 7_000);
        OutputEvent audit = Audit(outputs, AuditKind.Weights);
        OutputEvent answer = Single(outputs, OutputKind.CommandAnswer);
        Assert.Equal((RejectCode.None, 1L, 1L), (answer.Reject, answer.AuditNo, audit.AuditNo));
        Assert.Equal((102, -1, Operator, Note), (audit.BankCode, audit.EndpointIndex, audit.Operator.ToString(), audit.Note.ToString()));
        Assert.Equal([3_000, 7_000], Weights(audit));
        Assert.Equal(_h.NowUs, audit.TimestampUs);

        var counts = new int[2];
        for (int i = 0; i < 3_000; i++)
        {
            counts[_h.PayRouted($"P{i}")]++;
        }
        // Binomial n=3000, p=0.3: mean 900, sd 25; the tolerance is 6 sd (±150), far from the old 5% split (150).
        Assert.InRange(counts[0], 750, 1_050);
        Assert.Equal(3_000, counts[0] + counts[1]);
    }

    [Fact]
    public void A_ramp_reaches_its_target_in_equal_steps_on_ticks_each_audited()
    {
        List<OutputEvent> started = _h.Ramp(102, 3, 3_000, [0, 10_000]);
        OutputEvent startAudit = Audit(started, AuditKind.RampStarted);
        Assert.Equal(startAudit.AuditNo, Single(started, OutputKind.CommandAnswer).AuditNo);
        Assert.Equal([9_500, 500], Weights(startAudit)); // nothing moves before the first step
        Assert.Equal((3, 0, LogicHarness.StartUs + 1_000_000), (startAudit.RampSteps, startAudit.RampStepsDone, startAudit.RampNextStepUs));
        Assert.Equal([0, 10_000], ((ReadOnlySpan<int>)startAudit.RampTargetBps)[..2].ToArray());
        EndpointView view = _h.Logic.ViewEndpoint(102, 1);
        Assert.Equal((true, 500, 10_000, 0, 3, Operator), (view.Ramping, view.RampFromBps, view.RampTargetBps, view.RampStepsDone, view.RampSteps, view.RampOperator));

        Assert.DoesNotContain(_h.Tick(999), o => o.Kind == OutputKind.Audit);
        // Step 1 of 3: 9500·2/3 = 6333.3 and 11000/3 = 3666.7; the lost point goes to the larger remainder.
        OutputEvent step1 = Audit(_h.Tick(1), AuditKind.RampStep);
        Assert.Equal([6_333, 3_667], Weights(step1));
        Assert.Equal([6_333, 3_667], LogicWeights(102));
        Assert.Equal((1, LogicHarness.StartUs + 2_000_000), (step1.RampStepsDone, step1.RampNextStepUs));
        Assert.Equal((Operator, Note), (step1.Operator.ToString(), step1.Note.ToString())); // the ramp's operator, on every step

        OutputEvent step2 = Audit(_h.Tick(1_000), AuditKind.RampStep);
        Assert.Equal([3_167, 6_833], Weights(step2));
        OutputEvent done = Audit(_h.Tick(1_000), AuditKind.RampDone);
        Assert.Equal([0, 10_000], Weights(done));
        Assert.Equal((3, 0L), (done.RampStepsDone, done.RampNextStepUs));
        Assert.Equal([startAudit.AuditNo + 1, startAudit.AuditNo + 2, startAudit.AuditNo + 3], new[] { step1.AuditNo, step2.AuditNo, done.AuditNo });
        Assert.False(_h.Logic.ViewEndpoint(102, 0).Ramping);
        Assert.DoesNotContain(_h.Tick(10_000), o => o.Kind == OutputKind.Audit);
        for (int i = 0; i < 50; i++)
        {
            Assert.Equal(1, _h.PayRouted($"P{i}"));
        }
    }

    [Fact]
    public void Steps_overdue_after_a_gap_are_all_applied_in_order()
    {
        _h.Ramp(103, 4, 400, [2_500, 7_500]);
        _h.NowUs += 10_000_000;
        List<OutputEvent> outputs = _h.Tick(0);
        List<OutputEvent> audits = outputs.FindAll(o => o.Kind == OutputKind.Audit);
        Assert.Equal([AuditKind.RampStep, AuditKind.RampStep, AuditKind.RampStep, AuditKind.RampDone], audits.Select(a => a.AuditKind));
        Assert.Equal([1, 2, 3, 4], audits.Select(a => a.RampStepsDone));
        Assert.Equal([2_500, 7_500], LogicWeights(103));
    }

    [Theory]
    [InlineData(9_500, 500, 0, 10_000, 7)]
    [InlineData(3_333, 6_667, 6_667, 3_333, 100)]
    [InlineData(10_000, 0, 1, 9_999, 3)]
    [InlineData(1, 9_999, 9_999, 1, 97)]
    public void Every_ramp_step_sums_to_the_total_moves_monotonically_and_ends_on_the_target(int from0, int from1, int to0, int to1, int steps)
    {
        // Three endpoints to exercise the rounding: the third keeps a fixed share of 0 (sums stay 10,000).
        var from = new EndpointWeights();
        var target = new EndpointWeights();
        (from[0], from[1], target[0], target[1]) = (from0, from1, to0, to1);
        Span<int> previous = [from0, from1];
        Span<int> weights = stackalloc int[InputEvent.MaxEndpointsPerBank];
        for (int k = 1; k <= steps; k++)
        {
            WeightRamp.WeightsAt(in from, in target, 3, k, steps, weights);
            Assert.Equal(10_000, weights[0] + weights[1] + weights[2]);
            Assert.Equal(0, weights[2]);
            for (int i = 0; i < 2; i++)
            {
                int lo = Math.Min(from[i], target[i]), hi = Math.Max(from[i], target[i]);
                Assert.InRange(weights[i], lo, hi);
                // Each step moves towards the target, never back.
                Assert.True(target[i] >= from[i] ? weights[i] >= previous[i] : weights[i] <= previous[i], $"step {k} moved endpoint {i} back");
                // Within one point of the exact fraction.
                double exact = from[i] + (target[i] - from[i]) * (double)k / steps;
                Assert.InRange(weights[i], exact - 1, exact + 1);
                previous[i] = weights[i];
            }
        }
        Assert.Equal([to0, to1], previous.ToArray());
    }

    [Fact]
    public void A_new_change_cancels_a_running_ramp()
    {
        _h.Ramp(102, 4, 4_000, [1_500, 8_500]);
        Audit(_h.Tick(1_000), AuditKind.RampStep);
        int[] atCancel = LogicWeights(102);
        List<OutputEvent> outputs = _h.SetWeights(102, 5_000, 5_000);
        List<OutputEvent> audits = outputs.FindAll(o => o.Kind == OutputKind.Audit);
        Assert.Equal([AuditKind.RampCancelled, AuditKind.Weights], audits.Select(a => a.AuditKind));
        Assert.Equal(atCancel, Weights(audits[0])); // where the ramp stopped
        Assert.Equal((4, 1), (audits[0].RampSteps, audits[0].RampStepsDone));
        Assert.Equal(audits[0].AuditNo + 1, audits[1].AuditNo);
        Assert.Equal(audits[1].AuditNo, Single(outputs, OutputKind.CommandAnswer).AuditNo);
        for (int i = 0; i < 6; i++)
        {
            Assert.DoesNotContain(_h.Tick(1_000), o => o.Kind == OutputKind.Audit);
        }
        Assert.Equal([5_000, 5_000], LogicWeights(102));

        // A new ramp over a running one: cancelled, then the new one starts from where the first stopped.
        _h.Ramp(102, 2, 2_000, [10_000, 0]);
        Audit(_h.Tick(1_000), AuditKind.RampStep);
        List<OutputEvent> again = _h.Ramp(102, 2, 2_000, [0, 10_000]);
        Assert.Equal([AuditKind.RampCancelled, AuditKind.RampStarted], again.FindAll(o => o.Kind == OutputKind.Audit).Select(a => a.AuditKind));
        Assert.Equal([7_500, 2_500], LogicWeights(102));
        Assert.Equal([3_750, 6_250], Weights(Audit(_h.Tick(1_000), AuditKind.RampStep)));
        Assert.Equal([0, 10_000], Weights(Audit(_h.Tick(1_000), AuditKind.RampDone)));
    }

    [Fact]
    public void A_draining_endpoint_gets_nothing_new_and_its_in_flight_work_completes()
    {
        _h.SetWeights(102, 5_000, 5_000);
        var inFlightOnZero = new List<OutputEvent>();
        for (int i = 0; inFlightOnZero.Count < 10; i++)
        {
            OutputEvent request = Single(_h.Pay($"A{i}", 100, account: $"ACC{i}"), OutputKind.BankRequest);
            if (request.EndpointIndex == 0) inFlightOnZero.Add(request);
            else _h.BankAnswer(request.TransactionId, BankOperation.Debit, BankReply.Succeeded);
        }
        Assert.Equal(10, _h.Logic.ViewEndpoint(102, 0).InFlight);

        OutputEvent audit = Audit(_h.SetState(102, 0, EndpointState.Draining), AuditKind.State);
        Assert.Equal((0, EndpointState.Draining, true, BreakerState.Closed), (audit.EndpointIndex, audit.EndpointState, audit.Reachable, audit.Breaker));
        Assert.Equal([5_000, 5_000], Weights(audit));
        for (int i = 0; i < 200; i++)
        {
            Assert.Equal(1, _h.PayRouted($"D{i}"));
        }
        foreach (OutputEvent request in inFlightOnZero)
        {
            OutputEvent feed = Single(_h.BankAnswer(request.TransactionId, BankOperation.Debit, BankReply.Succeeded), OutputKind.Feed);
            Assert.Equal(TransactionStatus.Succeeded, feed.Status);
        }
        Assert.Equal(0, _h.Logic.ViewEndpoint(102, 0).InFlight);
    }

    [Fact]
    public void An_operators_down_survives_the_connector_reconnecting_and_unreachable_endpoints_get_nothing()
    {
        Audit(_h.SetState(102, 0, EndpointState.Down), AuditKind.State);
        OutputEvent lost = Audit(_h.Reachability(102, 0, reachable: false), AuditKind.Reachability);
        Assert.Equal(("connector", false, EndpointState.Down), (lost.Operator.ToString(), lost.Reachable, lost.EndpointState));
        Assert.Empty(_h.Reachability(102, 0, reachable: false)); // not a change: no entry
        OutputEvent back = Audit(_h.Reachability(102, 0, reachable: true), AuditKind.Reachability);
        Assert.Equal((true, EndpointState.Down), (back.Reachable, back.EndpointState));
        Assert.Equal(EndpointState.Down, _h.Logic.ViewEndpoint(102, 0).State);
        for (int i = 0; i < 100; i++)
        {
            Assert.Equal(1, _h.PayRouted($"P{i}"));
        }

        // Admin up but unreachable: still nothing; reachable again: traffic returns.
        _h.SetState(102, 0, EndpointState.Up);
        _h.Reachability(102, 0, reachable: false);
        for (int i = 0; i < 100; i++)
        {
            Assert.Equal(1, _h.PayRouted($"Q{i}"));
        }
        _h.Reachability(102, 1, reachable: false);
        AssertRejected(_h.Pay("NONE", 100), RejectCode.BankUnavailable);
        _h.Reachability(102, 0, reachable: true);
        _h.Reachability(102, 1, reachable: true);
        var counts = new int[2];
        for (int i = 0; i < 200; i++)
        {
            counts[_h.PayRouted($"R{i}")]++;
        }
        Assert.True(counts[0] > 100, $"endpoint 0 took {counts[0]} of 200 at 95%");
    }

    [Fact]
    public void Follow_ups_go_to_a_reachable_endpoint_not_taken_down()
    {
        OutputEvent request = Single(_h.Pay("P1", 1_000), OutputKind.BankRequest);
        int original = request.EndpointIndex;
        _h.Tick(1_000); // deadline: unknown
        _h.Reachability(102, original, reachable: false);
        OutputEvent query = Single(_h.Tick(500), OutputKind.BankRequest);
        Assert.Equal((BankOperation.Query, 1 - original), (query.Operation, query.EndpointIndex));
        _h.SetState(102, 1 - original, EndpointState.Down);
        Assert.DoesNotContain(_h.Tick(1_000), o => o.Kind == OutputKind.BankRequest); // nobody can answer: wait
        _h.Reachability(102, original, reachable: true);
        OutputEvent again = Single(_h.Tick(2_000), OutputKind.BankRequest);
        Assert.Equal(original, again.EndpointIndex);
    }

    public static TheoryData<string, Func<LogicHarness, List<OutputEvent>>, RejectCode, RequestField> BadCommands => new()
    {
        { "unknown bank", h => h.SetWeights(999, 5_000, 5_000), RejectCode.UnknownBank, RequestField.Bank },
        { "unknown endpoint", h => h.SetState(102, 2, EndpointState.Down), RejectCode.UnknownEndpoint, RequestField.Endpoint },
        { "negative endpoint", h => h.SetState(102, -1, EndpointState.Down), RejectCode.UnknownEndpoint, RequestField.Endpoint },
        { "unknown state", h => h.SetState(102, 0, (EndpointState)9), RejectCode.InvalidField, RequestField.EndpointState },
        { "wrong count", h => h.SetWeights(102, 10_000), RejectCode.InvalidWeights, RequestField.Weights },
        { "too many", h => h.SetWeights(102, 5_000, 5_000, 0), RejectCode.InvalidWeights, RequestField.Weights },
        { "negative", h => h.SetWeights(102, 11_000, -1_000), RejectCode.InvalidWeights, RequestField.Weights },
        { "sum below", h => h.SetWeights(102, 5_000, 4_999), RejectCode.InvalidWeights, RequestField.Weights },
        { "sum above", h => h.SetWeights(102, 5_000, 5_001), RejectCode.InvalidWeights, RequestField.Weights },
        { "ramp of 101 steps", h => h.Ramp(102, 101, 10_000, [0, 10_000]), RejectCode.InvalidField, RequestField.Ramp },
        { "ramp steps without time", h => h.Ramp(102, 5, 0, [0, 10_000]), RejectCode.InvalidField, RequestField.Ramp },
        { "ramp time without steps", h => h.Ramp(102, 0, 5_000, [0, 10_000]), RejectCode.InvalidField, RequestField.Ramp },
        { "ramp over a day", h => h.Ramp(102, 10, 86_400_001, [0, 10_000]), RejectCode.InvalidField, RequestField.Ramp },
        { "negative ramp", h => h.Ramp(102, -1, 1_000, [0, 10_000]), RejectCode.InvalidField, RequestField.Ramp },
        { "missing operator", h => h.Ramp(102, 0, 0, [0, 10_000], operatorId: null), RejectCode.MissingField, RequestField.Operator },
        { "operator with a space", h => h.SetState(102, 0, EndpointState.Down, operatorId: "op alice"), RejectCode.InvalidField, RequestField.Operator },
        { "operator too long", h => h.SetState(102, 0, EndpointState.Down, operatorId: new string('o', 33)), RejectCode.FieldTooLong, RequestField.Operator },
        { "missing note", h => h.SetState(102, 0, EndpointState.Down, note: null), RejectCode.MissingField, RequestField.Note },
        { "note too long", h => h.Ramp(102, 0, 0, [0, 10_000], note: new string('n', 65)), RejectCode.FieldTooLong, RequestField.Note },
        { "note with a control character", h => h.Ramp(102, 0, 0, [0, 10_000], note: "line\nbreak"), RejectCode.InvalidField, RequestField.Note },
    };

    [Theory]
    [MemberData(nameof(BadCommands))]
    public void A_bad_command_is_rejected_precisely_changes_nothing_and_is_not_audited(
        string what, Func<LogicHarness, List<OutputEvent>> command, RejectCode code, RequestField field)
    {
        _h.Ramp(102, 4, 4_000, [0, 10_000]); // a running ramp must survive a rejected command
        _h.SetState(103, 1, EndpointState.Draining);
        ulong before = _h.Logic.StateHash();
        long auditNo = _h.Logic.LastAuditNo;

        List<OutputEvent> outputs = command(_h);

        OutputEvent answer = Assert.Single(outputs);
        Assert.Equal(OutputKind.CommandAnswer, answer.Kind);
        Assert.True((code, field) == (answer.Reject, answer.RejectField), $"{what}: got {answer.Reject}/{answer.RejectField}");
        Assert.Equal(0, answer.AuditNo);
        Assert.Equal(before, _h.Logic.StateHash());
        Assert.Equal(auditNo, _h.Logic.LastAuditNo);
        Assert.Equal(RampStep(_h.Tick(1_000)), 1); // the ramp goes on as before
    }

    private static int RampStep(List<OutputEvent> outputs) => Audit(outputs, AuditKind.RampStep).RampStepsDone;

    [Fact]
    public void A_close_command_is_audited_and_answered_with_its_entry()
    {
        _h.PayAndSettle("P1", 1_000);
        List<OutputEvent> outputs = _h.CloseBatch("op-bob");
        OutputEvent audit = Audit(outputs, AuditKind.BatchClosed);
        Assert.Equal((1L, "op-bob", -1, -1), (audit.BatchId, audit.Operator.ToString(), audit.BankIndex, audit.EndpointIndex));
        Assert.Equal(audit.AuditNo, Single(outputs, OutputKind.CommandAnswer).AuditNo);
    }

    private static void AssertRejected(List<OutputEvent> outputs, RejectCode code) =>
        Assert.Equal(code, Single(outputs, OutputKind.Answer).Reject);
}
