using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Business;

/// <summary>Routing with half-open probes, breaker bookkeeping and ramp steps allocate nothing per transaction.</summary>
public sealed class HotPathAllocationTests
{
    [Fact]
    public void Transactions_through_a_ramping_bank_with_a_half_open_endpoint_allocate_nothing()
    {
        SwitchConfig config = TestConfigs.Small(transactionCapacity: 1 << 14);
        config = config with { Rules = config.Rules with { BreakerMinCalls = 5, BreakerOpenMs = 1_000, BreakerProbeSuccesses = 10_000 } };
        var sink = new DiscardingSink();
        var logic = new SwitchLogic(config, sink);
        long nowUs = LogicHarness.StartUs;
        var request = LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", "", 100, "102");
        var answer = new InputEvent { Kind = EventKind.BankResult, Operation = BankOperation.Debit };
        var tick = new InputEvent { Kind = EventKind.Tick };
        var command = new InputEvent { Kind = EventKind.SetEndpointWeights, EndpointCount = 2, RampSteps = 100, RampDurationMs = 60_000 };
        command.BankRef.Set("102");
        command.Operator.Set("op-perf");
        command.Note.Set("ramp under load");
        (command.WeightsBps[0], command.WeightsBps[1]) = (5_000, 5_000);
        byte[] orderNo = new byte[16];
        int order = 0;

        void Run(int transactions)
        {
            for (int i = 0; i < transactions; i++, order++)
            {
                // Order numbers and accounts formatted in place: the test's own inputs allocate nothing either.
                order.TryFormat(orderNo.AsSpan(), out int written);
                request.OrderNo.Set(orderNo.AsSpan(0, written));
                request.Account.Set(orderNo.AsSpan(0, written));
                request.TimestampUs = nowUs += 1_000; // 1 ms apart: the breaker opens, half-opens and the ramp steps within the run
                request.CorrelationId = order;
                logic.Apply(ref request);
                answer.TransactionId = logic.Transactions.LastId;
                answer.TimestampUs = nowUs;
                // Endpoint 0 fails its first calls (system failures), so its breaker opens, then half-opens on a tick.
                bool toZero = logic.Transactions.ById(answer.TransactionId).EndpointIndex == 0;
                answer.Reply = toZero && order < 200 ? BankReply.Failed : BankReply.Succeeded;
                answer.Reason.Set(answer.Reply == BankReply.Failed ? "BANK_BUSY"u8 : default);
                logic.Apply(ref answer);
                if (i % 16 == 0)
                {
                    tick.TimestampUs = nowUs;
                    logic.Apply(ref tick);
                }
            }
        }

        command.TimestampUs = nowUs;
        logic.Apply(ref command);
        Run(2_000); // warm up: tables, queues and JIT settle; the breaker trips and half-opens
        Assert.Equal(BreakerState.HalfOpen, logic.ViewEndpoint(102, 0).Breaker);
        Assert.True(logic.ViewEndpoint(102, 0).Ramping);

        long before = GC.GetAllocatedBytesForCurrentThread();
        Run(5_000);
        long allocatedBytes = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocatedBytes);
        Assert.True(logic.ViewEndpoint(102, 0).RampStepsDone > 0);
    }
}
