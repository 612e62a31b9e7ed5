using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Tests.Support;
using static Switch.Engine.Tests.Support.LogicHarness;

namespace Switch.Engine.Tests.Business;

/// <summary>The per-endpoint circuit breaker, driven through the logic with event time only.</summary>
public sealed class BreakerTests
{
    private const int MinCalls = 10;
    private const int OpenMs = 5_000;
    private const int ProbeEvery = 4;
    private const int ProbeSuccesses = 3;

    private readonly LogicHarness _h;
    private int _order;

    public BreakerTests()
    {
        SwitchConfig config = TestConfigs.Small(transactionCapacity: 4096);
        config = config with
        {
            Rules = config.Rules with
            {
                BreakerWindowMs = 10_000, BreakerMinCalls = MinCalls, BreakerErrorRatePct = 50, BreakerOpenMs = OpenMs,
                BreakerProbeEvery = ProbeEvery, BreakerProbeSuccesses = ProbeSuccesses,
            },
        };
        _h = new LogicHarness(config);
        _h.SetWeights(102, 5_000, 5_000);
    }

    private static List<OutputEvent> Audits(List<OutputEvent> outputs) => outputs.FindAll(o => o.Kind == OutputKind.Audit);

    /// <summary>One payment to bank 102; endpoint 0's are left unanswered (they time out), endpoint 1's succeed.
    /// Returns the endpoint it went to and every output it caused.</summary>
    private (int Endpoint, List<OutputEvent> Outputs) PayWithSickEndpointZero()
    {
        _order++;
        List<OutputEvent> outputs = _h.Pay($"P{_order}", 100, account: $"A{_order}");
        OutputEvent request = Single(outputs, OutputKind.BankRequest);
        if (request.EndpointIndex == 1)
        {
            outputs.AddRange(_h.BankAnswer(request.TransactionId, BankOperation.Debit, BankReply.Succeeded));
        }
        return (request.EndpointIndex, outputs);
    }

    /// <summary>Sends payments until endpoint 0 has had <paramref name="calls"/>, then lets their deadlines pass.</summary>
    private List<OutputEvent> TimeOutCallsOnEndpointZero(int calls)
    {
        var outputs = new List<OutputEvent>();
        for (int sent = 0; sent < calls;)
        {
            (int endpoint, List<OutputEvent> o) = PayWithSickEndpointZero();
            outputs.AddRange(o);
            if (endpoint == 0) sent++;
        }
        outputs.AddRange(_h.Tick(1_000)); // the bank timeout: every one of them is now unknown
        return outputs;
    }

    private OutputEvent TripEndpointZero()
    {
        List<OutputEvent> audits = Audits(TimeOutCallsOnEndpointZero(MinCalls));
        OutputEvent open = Assert.Single(audits);
        Assert.Equal((AuditKind.BreakerOpen, 0, BreakerState.Open, "breaker"), (open.AuditKind, open.EndpointIndex, open.Breaker, open.Operator.ToString()));
        Assert.Contains("failed or timed out", open.Note.ToString());
        return open;
    }

    [Fact]
    public void Timeouts_trip_the_breaker_its_share_moves_to_the_other_endpoint_then_probes_close_it()
    {
        TripEndpointZero();
        Assert.Equal(BreakerState.Open, _h.Logic.ViewEndpoint(102, 0).Breaker);
        for (int i = 0; i < 200; i++)
        {
            Assert.Equal(1, PayWithSickEndpointZero().Endpoint);
        }

        // Before the open time nothing changes; at it, the next tick half-opens.
        Assert.Empty(Audits(_h.Tick(OpenMs - 1)));
        OutputEvent halfOpen = Assert.Single(Audits(_h.Tick(1)));
        Assert.Equal((AuditKind.BreakerHalfOpen, BreakerState.HalfOpen), (halfOpen.AuditKind, halfOpen.Breaker));

        // Half-open: of the transactions that would go to endpoint 0, the first and then one in ProbeEvery go; the
        // rest go to endpoint 1. Probes answered well close it.
        int wouldHaveGone = 0, probes = 0;
        OutputEvent? closed = null;
        for (int i = 0; closed is null; i++)
        {
            Assert.True(i < 2_000, "the breaker never closed");
            _order++;
            long nextId = _h.Logic.Transactions.LastId + 1;
            OutputEvent request = Single(_h.Pay($"H{_order}", 100, account: $"H{_order}"), OutputKind.BankRequest);
            if (WouldRouteToZeroAtFiftyFifty(nextId))
            {
                bool probeTurn = wouldHaveGone++ % ProbeEvery == 0; // the 1st, then every ProbeEvery-th
                Assert.Equal(probeTurn ? 0 : 1, request.EndpointIndex);
                if (probeTurn) probes++;
            }
            else
            {
                Assert.Equal(1, request.EndpointIndex);
            }
            List<OutputEvent> audits = Audits(_h.BankAnswer(request.TransactionId, BankOperation.Debit, BankReply.Succeeded));
            closed = audits.Count == 0 ? null : Assert.Single(audits);
        }
        Assert.Equal((AuditKind.BreakerClosed, BreakerState.Closed), (closed.Value.AuditKind, closed.Value.Breaker));
        Assert.Equal(ProbeSuccesses, probes);

        var counts = new int[2];
        for (int i = 0; i < 400; i++)
        {
            _order++;
            counts[_h.PayRouted($"C{_order}")]++;
        }
        Assert.InRange(counts[0], 120, 280); // back to its 50% share (binomial sd 10)
    }

    /// <summary>The first draw of the routing rule at 50/50 over two endpoints (as <see cref="Routing"/> picks).</summary>
    private static bool WouldRouteToZeroAtFiftyFifty(long transactionId) =>
        Hashing.StableHash.Mix((ulong)transactionId) % 10_000 < 5_000;

    [Fact]
    public void A_failing_probe_opens_the_breaker_again()
    {
        TripEndpointZero();
        _h.Tick(OpenMs);
        Assert.Equal(BreakerState.HalfOpen, _h.Logic.ViewEndpoint(102, 0).Breaker);
        OutputEvent probe;
        do
        {
            _order++;
            probe = Single(_h.Pay($"F{_order}", 100, account: $"F{_order}"), OutputKind.BankRequest);
        }
        while (probe.EndpointIndex != 0);
        OutputEvent reopened = Assert.Single(Audits(_h.BankAnswer(probe.TransactionId, BankOperation.Debit, BankReply.Failed, "BANK_BUSY")));
        Assert.Equal((AuditKind.BreakerOpen, BreakerState.Open), (reopened.AuditKind, reopened.Breaker));
        for (int i = 0; i < 100; i++)
        {
            Assert.Equal(1, PayWithSickEndpointZero().Endpoint);
        }
        Assert.Equal(AuditKind.BreakerHalfOpen, Assert.Single(Audits(_h.Tick(OpenMs))).AuditKind);
    }

    [Fact]
    public void Business_declines_are_not_endpoint_failures()
    {
        for (int i = 0; i < 100; i++)
        {
            OutputEvent request = Single(_h.Pay($"D{i}", 100, account: $"D{i}"), OutputKind.BankRequest);
            Assert.Empty(Audits(_h.BankAnswer(request.TransactionId, BankOperation.Debit, BankReply.Failed, "INSUFFICIENT_FUNDS")));
        }
        Assert.Equal(BreakerState.Closed, _h.Logic.ViewEndpoint(102, 0).Breaker);
        Assert.Equal(BreakerState.Closed, _h.Logic.ViewEndpoint(102, 1).Breaker);
    }

    [Fact]
    public void System_failures_count_like_timeouts()
    {
        var outputs = new List<OutputEvent>();
        for (int sent = 0; sent < MinCalls; _order++)
        {
            OutputEvent request = Single(_h.Pay($"S{_order}", 100, account: $"S{_order}"), OutputKind.BankRequest);
            bool zero = request.EndpointIndex == 0;
            outputs.AddRange(_h.BankAnswer(request.TransactionId, BankOperation.Debit, zero ? BankReply.Failed : BankReply.Succeeded, zero ? "BANK_BUSY" : ""));
            if (zero) sent++;
        }
        Assert.Equal(AuditKind.BreakerOpen, Assert.Single(Audits(outputs)).AuditKind);
    }

    [Fact]
    public void Failures_older_than_the_window_no_longer_count()
    {
        Assert.Empty(Audits(TimeOutCallsOnEndpointZero(MinCalls - 1)));
        _h.Tick(11_000); // the whole window has passed
        // Now 9 good calls and 1 timeout: 10 calls, 10% failed.
        var outputs = new List<OutputEvent>();
        for (int good = 0; good < MinCalls - 1; _order++)
        {
            OutputEvent request = Single(_h.Pay($"W{_order}", 100, account: $"W{_order}"), OutputKind.BankRequest);
            outputs.AddRange(_h.BankAnswer(request.TransactionId, BankOperation.Debit, BankReply.Succeeded));
            if (request.EndpointIndex == 0) good++;
        }
        outputs.AddRange(TimeOutCallsOnEndpointZero(1));
        Assert.Empty(Audits(outputs));
        Assert.Equal(BreakerState.Closed, _h.Logic.ViewEndpoint(102, 0).Breaker);
    }

    [Fact]
    public void With_every_endpoint_open_the_bank_is_unavailable()
    {
        _h.SetWeights(102, 10_000, 0);
        TripEndpointZero();
        Assert.Equal(RejectCode.BankUnavailable, Single(_h.Pay("U1", 100, account: "U1"), OutputKind.Answer).Reject);
    }

    [Theory]
    [InlineData("breakerWindowMs", 1_500)]
    [InlineData("breakerWindowMs", 0)]
    [InlineData("breakerMinCalls", 0)]
    [InlineData("breakerErrorRatePct", 101)]
    [InlineData("breakerOpenMs", 0)]
    [InlineData("breakerProbeEvery", 0)]
    [InlineData("breakerProbeSuccesses", -1)]
    public void A_bad_breaker_setting_is_refused_naming_the_field(string field, int value)
    {
        SwitchConfig config = TestConfigs.Small();
        RulesConfig rules = field switch
        {
            "breakerWindowMs" => config.Rules with { BreakerWindowMs = value },
            "breakerMinCalls" => config.Rules with { BreakerMinCalls = value },
            "breakerErrorRatePct" => config.Rules with { BreakerErrorRatePct = value },
            "breakerOpenMs" => config.Rules with { BreakerOpenMs = value },
            "breakerProbeEvery" => config.Rules with { BreakerProbeEvery = value },
            _ => config.Rules with { BreakerProbeSuccesses = value },
        };
        var e = Assert.Throws<ConfigException>(() => ConfigValidator.Validate(config with { Rules = rules }));
        Assert.Contains("rules." + field, e.Message);
    }

    [Fact]
    public void The_breaker_settings_travel_in_the_genesis_configuration()
    {
        SwitchConfig config = TestConfigs.Small();
        config = config with { Rules = config.Rules with { BreakerMinCalls = 77, BreakerOpenMs = 1_234 } };
        SwitchConfig back = SwitchConfig.FromJsonUtf8(config.ToJsonUtf8());
        Assert.Equal((77, 1_234, 10_000), (back.Rules.BreakerMinCalls, back.Rules.BreakerOpenMs, back.Rules.BreakerWindowMs));
    }

    [Fact]
    public void A_decision_probe_sees_the_half_open_draw_the_logic_made_probe_turn_or_not()
    {
        TripEndpointZero();
        _h.Tick(OpenMs);
        Assert.Equal(BreakerState.HalfOpen, _h.Logic.ViewEndpoint(102, 0).Breaker);
        var probe = new EveryDecision();
        _h.Logic.DecisionProbe = probe;
        for (int i = 0; i < 60; i++)
        {
            _order++;
            _h.Pay($"X{_order}", 100, account: $"X{_order}"); // endpoint 0's stay unanswered: the breaker stays half-open
        }
        Assert.Equal(60, probe.Records.Count);
        foreach (DecisionRecord d in probe.Records)
        {
            // The explanation's draw, computed before the decision without taking the probe turn, is what the logic did.
            Assert.True(d.Admitted);
            Assert.Equal(d.Draw.Chosen, d.SentToEndpoint);
            Assert.Equal(d.NextTransactionId, d.TransactionId);
            if (d.Draw.LandedOnHalfOpen && !d.Draw.ProbeTurn)
            {
                Assert.Equal((EndpointExclusion.HalfOpenNotProbeTurn, 1), (d.Endpoints[0].Exclusion, d.SentToEndpoint));
            }
            else
            {
                Assert.Equal(EndpointExclusion.None, d.Endpoints[0].Exclusion);
            }
        }
        Assert.Contains(probe.Records, d => d.Draw.LandedOnHalfOpen && d.Draw.ProbeTurn && d.SentToEndpoint == 0);
        Assert.Contains(probe.Records, d => d.Draw.LandedOnHalfOpen && !d.Draw.ProbeTurn);
    }

    private sealed class EveryDecision : IDecisionProbe
    {
        public List<DecisionRecord> Records { get; } = new();
        public bool Watches(ref InputEvent e) => true;
        public void Decided(DecisionRecord record) => Records.Add(record);
    }
}
