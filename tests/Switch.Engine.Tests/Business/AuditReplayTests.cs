using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Business;

/// <summary>Operator control is state rebuilt by replay: the same events (through the journal codec) give the same
/// state hash and the same audit log, entry for entry.</summary>
public sealed class AuditReplayTests
{
    [Fact]
    public void Replaying_the_same_events_into_a_fresh_logic_gives_the_same_state_and_audit_log()
    {
        SwitchConfig config = TestConfigs.Small(transactionCapacity: 4096);
        config = config with { Rules = config.Rules with { BreakerMinCalls = 8, BreakerOpenMs = 2_000, BreakerProbeEvery = 3, BreakerProbeSuccesses = 2 } };
        var live = new RecordingHarness(config);
        var random = new Random(4);
        var pending = new List<OutputEvent>();
        for (int step = 0; step < 3_000; step++)
        {
            int roll = random.Next(100);
            if (roll < 45)
            {
                OutputEvent? request = live.Outputs(live.H.Pay($"P{step}", 100 + step, bank: random.Next(2) == 0 ? "102" : "103", account: $"A{step}"))
                    .Cast<OutputEvent?>().FirstOrDefault(o => o!.Value.Kind == OutputKind.BankRequest);
                if (request is not null) pending.Add(request.Value);
            }
            else if (roll < 80 && pending.Count > 0)
            {
                OutputEvent p = pending[random.Next(pending.Count)];
                pending.RemoveAll(o => o.TransactionId == p.TransactionId);
                // Endpoint 0 of bank 103 is sick: it mostly times out or is busy, so its breaker trips and recovers.
                bool sick = p.BankCode == 103 && p.EndpointIndex == 0 && random.Next(10) < 8;
                if (!sick || random.Next(2) == 0)
                {
                    live.Outputs(live.H.BankAnswer(p.TransactionId, p.Operation, sick ? BankReply.Failed : BankReply.Succeeded, sick ? "BANK_BUSY" : ""));
                }
            }
            else if (roll < 92)
            {
                live.Outputs(live.H.Tick(random.Next(1, 700)));
            }
            else if (roll < 95)
            {
                int w = random.Next(0, 10_001);
                live.Outputs(random.Next(2) == 0
                    ? live.H.SetWeights(103, w, 10_000 - w)
                    : live.H.Ramp(102, random.Next(1, 6), random.Next(1, 5_000), [w, 10_000 - w]));
            }
            else if (roll < 97)
            {
                live.Outputs(live.H.SetState(random.Next(2) == 0 ? 102 : 103, random.Next(2), (EndpointState)random.Next(3)));
            }
            else if (roll < 99)
            {
                live.Outputs(live.H.Reachability(102, random.Next(2), random.Next(2) == 0));
            }
            else
            {
                live.Outputs(live.H.SetWeights(102, 20_000, -10_000)); // rejected: in the journal, changes nothing
            }
        }
        List<OutputEvent> liveAudit = live.H.Sink.Outputs.FindAll(o => o.Kind == OutputKind.Audit);
        // The scenario exercised every kind of entry the logic makes on its own.
        foreach (AuditKind kind in new[] { AuditKind.Weights, AuditKind.RampStarted, AuditKind.RampStep, AuditKind.RampDone,
                     AuditKind.State, AuditKind.Reachability, AuditKind.BreakerOpen, AuditKind.BreakerHalfOpen, AuditKind.BreakerClosed })
        {
            Assert.Contains(liveAudit, a => a.AuditKind == kind);
        }
        Assert.Equal(Enumerable.Range(1, liveAudit.Count).Select(i => (long)i), liveAudit.Select(a => a.AuditNo));

        // Replay: every input through the journal codec into a fresh logic.
        var replaySink = new CollectingSink();
        var replay = new SwitchLogic(config, replaySink);
        byte[] buffer = new byte[EventCodec.MaxEncodedBytes];
        foreach (InputEvent input in live.Inputs)
        {
            InputEvent e = input;
            int length = EventCodec.Encode(ref e, buffer);
            var decoded = new InputEvent();
            EventCodec.Decode(buffer.AsSpan(0, length), ref decoded);
            replay.Apply(ref decoded);
        }
        Assert.Equal(live.H.Logic.StateHash(), replay.StateHash());
        Assert.Equal(live.H.Logic.LastAuditNo, replay.LastAuditNo);
        Assert.Equal(liveAudit, replaySink.Outputs.FindAll(o => o.Kind == OutputKind.Audit));
        for (int e = 0; e < 2; e++)
        {
            Assert.Equal(live.H.Logic.ViewEndpoint(102, e), replay.ViewEndpoint(102, e));
            Assert.Equal(live.H.Logic.ViewEndpoint(103, e), replay.ViewEndpoint(103, e));
        }
    }

    [Fact]
    public void Operator_and_connector_events_round_trip_through_the_codec()
    {
        var weights = new InputEvent
        {
            Kind = EventKind.SetEndpointWeights, TimestampUs = 5, CorrelationId = 9, EndpointCount = 3, RampSteps = 17, RampDurationMs = 86_400_000,
        };
        weights.BankRef.Set("308");
        weights.Operator.Set("op-dan");
        weights.Note.Set("切换到新前置 drill 3");
        (weights.WeightsBps[0], weights.WeightsBps[1], weights.WeightsBps[2]) = (1, 2, 9_997);
        var reach = new InputEvent { Kind = EventKind.EndpointReachability, TimestampUs = 6, EndpointIndex = 7, Reachable = true };
        reach.BankRef.Set("102");
        reach.Operator.Set("connector");
        reach.Note.SetOverlong(); // an overlong text stays overlong: the logic rejects it precisely
        var state = new InputEvent { Kind = EventKind.SetEndpointState, TimestampUs = 7, CorrelationId = 3, EndpointIndex = 1, EndpointState = EndpointState.Draining };
        state.BankRef.Set("103");
        state.Operator.Set("op-eve");
        state.Note.Set("patching");
        byte[] buffer = new byte[EventCodec.MaxEncodedBytes];
        foreach (InputEvent original in new[] { weights, reach, state })
        {
            InputEvent e = original;
            int length = EventCodec.Encode(ref e, buffer);
            var decoded = new InputEvent();
            EventCodec.Decode(buffer.AsSpan(0, length), ref decoded);
            Assert.Equal(original.Kind, decoded.Kind);
            Assert.Equal((original.TimestampUs, original.CorrelationId, original.EndpointIndex, original.EndpointState, original.Reachable),
                (decoded.TimestampUs, decoded.CorrelationId, decoded.EndpointIndex, decoded.EndpointState, decoded.Reachable));
            Assert.Equal((original.RampSteps, original.RampDurationMs, original.EndpointCount), (decoded.RampSteps, decoded.RampDurationMs, decoded.EndpointCount));
            Assert.True(original.WeightsBps.Equals(decoded.WeightsBps));
            Assert.True(original.BankRef.Equals(decoded.BankRef) && original.Operator.Equals(decoded.Operator) && original.Note.Equals(decoded.Note));
            Assert.Throws<FormatException>(() => EventCodec.Decode(buffer.AsSpan(0, length - 1), ref decoded));
        }
        int reachLength = EventCodec.Encode(ref reach, buffer);
        buffer[reachLength - 1] = 2; // neither reachable nor unreachable
        var bad = new InputEvent();
        Assert.Throws<FormatException>(() => EventCodec.Decode(buffer.AsSpan(0, reachLength), ref bad));
    }

    /// <summary>A harness that also keeps the inputs it applied, stamped, in order.</summary>
    private sealed class RecordingHarness(SwitchConfig config)
    {
        public readonly LogicHarness H = new(config);
        public readonly List<InputEvent> Inputs = new();
        private long _appliedBefore;

        /// <summary>Called after each harness call: picks up the inputs it applied (one per call) from the logic.</summary>
        public List<OutputEvent> Outputs(List<OutputEvent> outputs)
        {
            if (H.Logic.EventsApplied != _appliedBefore + 1) throw new InvalidOperationException("one event per harness call");
            _appliedBefore = H.Logic.EventsApplied;
            Inputs.Add(H.LastApplied);
            return outputs;
        }
    }
}
