using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Business;

/// <summary>The decision probe (routing explained): what it captures for refusals after routing, and that watching
/// changes nothing the logic decides.</summary>
public sealed class DecisionProbeTests
{
    [Fact]
    public void A_draw_landing_on_an_endpoint_at_its_in_flight_cap_is_captured_with_the_cap()
    {
        var h = new LogicHarness();
        h.SetWeights(102, 10_000, 0);
        for (int i = 0; i < 64; i++) h.Pay($"F{i}", 100, account: $"F{i}"); // unanswered: ICBC-A at its cap of 64
        var probe = new Watching("BUSY");
        h.Logic.DecisionProbe = probe;
        h.Pay("F64", 100, account: "F64");
        h.Pay("BUSY", 100, account: "BUSY");
        DecisionRecord d = Assert.Single(probe.Records);
        Assert.Equal((RejectCode.EndpointBusy, RequestField.Bank, false), (d.Reject, d.RejectField, d.Admitted));
        Assert.Equal(0, d.Draw.Chosen);
        Assert.True(d.Endpoints[0].AtInFlightCap);
        Assert.Equal((64, 64), (d.Endpoints[0].InFlight, d.Endpoints[0].InFlightCap));
        Assert.Equal((EndpointExclusion.None, EndpointExclusion.NoWeight), (d.Endpoints[0].Exclusion, d.Endpoints[1].Exclusion));
    }

    [Fact]
    public void A_payout_past_the_net_debit_cap_is_captured_with_position_reservations_and_fee()
    {
        var h = new LogicHarness();
        var probe = new Watching("CAP");
        h.Logic.DecisionProbe = probe;
        h.Payout("CAP", 1_200_000); // ALIPAY's cap is 1,000,000; fee 5 bps + 1
        DecisionRecord d = Assert.Single(probe.Records);
        Assert.Equal(RejectCode.NetDebitCapExceeded, d.Reject);
        Assert.Equal((0L, 0L, 601L, 1_000_000L, 103), (d.PositionFen, d.ReservedDebitFen, d.FeeFen, d.NetDebitCapFen, d.BankCode));
    }

    [Fact]
    public void Watching_every_decision_changes_nothing_the_logic_decides()
    {
        var plain = new LogicHarness();
        var watched = new LogicHarness();
        var probe = new Watching(null);
        watched.Logic.DecisionProbe = probe;
        foreach (LogicHarness h in new[] { plain, watched })
        {
            h.SetWeights(102, 5_000, 5_000);
            for (int i = 0; i < 200; i++)
            {
                List<OutputEvent> outputs = h.Pay($"S{i}", 200_000 + i, account: $"S{i % 7}");
                foreach (OutputEvent o in outputs.FindAll(o => o.Kind == OutputKind.BankRequest && o.EndpointIndex == 1))
                    h.BankAnswer(o.TransactionId, BankOperation.Debit, BankReply.Failed, "SYSTEM_ERROR"); // endpoint B's breaker trips
            }
            h.Tick(1_000);
        }
        Assert.Equal(200, probe.Records.Count);
        Assert.Equal(plain.Logic.StateHash(), watched.Logic.StateHash());
        Assert.Contains(probe.Records, d => d.Reject == RejectCode.DailyLimitExceeded);
        Assert.Contains(probe.Records, d => d.Endpoints[1].Exclusion == EndpointExclusion.BreakerOpen);
    }

    private sealed class Watching(string? orderNo) : IDecisionProbe
    {
        public List<DecisionRecord> Records { get; } = new();
        public bool Watches(ref InputEvent e) => orderNo is null || e.OrderNo.ToString() == orderNo;
        public void Decided(DecisionRecord record) => Records.Add(record);
    }
}
