using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Pipeline;

/// <summary>Operator changes are journaled events: weights, states, a half-done ramp and the audit numbering survive
/// a restart of the real engine on the same directory, and the ramp goes on from where it was.</summary>
public sealed class OperatorRestartTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly ManualClock _clock = new(LogicHarness.StartUs);

    public void Dispose() => _dir.Dispose();

    private static InputEvent Weights(int bankCode, int steps, long durationMs, params int[] weightsBps)
    {
        var e = new InputEvent { Kind = EventKind.SetEndpointWeights, CorrelationId = 1, EndpointCount = weightsBps.Length, RampSteps = steps, RampDurationMs = durationMs };
        e.BankRef.Set(bankCode.ToString("D3"));
        e.Operator.Set("op-frank");
        e.Note.Set("new front-end");
        for (int i = 0; i < weightsBps.Length; i++) e.WeightsBps[i] = weightsBps[i];
        return e;
    }

    private static InputEvent State(int bankCode, int endpointIndex, EndpointState state)
    {
        var e = new InputEvent { Kind = EventKind.SetEndpointState, CorrelationId = 2, EndpointIndex = endpointIndex, EndpointState = state };
        e.BankRef.Set(bankCode.ToString("D3"));
        e.Operator.Set("op-grace");
        e.Note.Set("maintenance window");
        return e;
    }

    private static InputEvent Reachability(int bankCode, int endpointIndex, bool reachable)
    {
        var e = new InputEvent { Kind = EventKind.EndpointReachability, EndpointIndex = endpointIndex, Reachable = reachable };
        e.BankRef.Set(bankCode.ToString("D3"));
        e.Operator.Set("connector");
        e.Note.Set("stream ended");
        return e;
    }

    private void Tick(SwitchEngine engine, long advanceMs)
    {
        _clock.Advance(advanceMs * 1_000);
        engine.PublishTick();
        Assert.True(engine.WaitUntilIdle(20_000), $"engine not idle: {engine.Fault}");
    }

    private static void Send(SwitchEngine engine, InputEvent e)
    {
        engine.Client().PublishCopy(e);
        Assert.True(engine.WaitUntilIdle(20_000), $"engine not idle: {engine.Fault}");
    }

    private static List<OutputEvent> Audits(IEnumerable<OutputEvent> outputs) => outputs.Where(o => o.Kind == OutputKind.Audit).ToList();

    [Fact]
    public void Weights_states_a_half_done_ramp_and_the_audit_numbering_survive_a_restart()
    {
        var liveAudit = new List<OutputEvent>();
        EndpointView[] before;
        ulong hash;
        var recorder = new OutputRecorder();
        using (SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(_dir.Path, _clock), TestConfigs.Small(), recorder))
        {
            Tick(engine, 1);
            Send(engine, Weights(103, 0, 0, 2_000, 8_000));
            Send(engine, State(308, 1, EndpointState.Down));
            Send(engine, Reachability(308, 1, reachable: false));
            Send(engine, Weights(102, 4, 4_000, 1_000, 9_000));
            Tick(engine, 1_000);
            Tick(engine, 1_000); // two of the four steps applied
            liveAudit.AddRange(Audits(recorder.Drain()));
            Assert.Equal(
                [AuditKind.Weights, AuditKind.State, AuditKind.Reachability, AuditKind.RampStarted, AuditKind.RampStep, AuditKind.RampStep],
                liveAudit.Select(a => a.AuditKind));
            Assert.Equal(6, engine.Logic.LastAuditNo);
            before = [.. Views(engine.Logic)];
            hash = engine.Logic.StateHash();
        }

        var replayed = new CollectingSink();
        recorder = new OutputRecorder();
        EngineOptions options = EngineTestOptions.For(_dir.Path, _clock) with { ReplaySink = replayed };
        using (SwitchEngine engine = SwitchEngine.Start(options, TestConfigs.Small(), recorder))
        {
            Assert.True(engine.Recovery.ConfigFromJournal);
            Assert.Equal(hash, engine.Logic.StateHash());
            Assert.Equal(before, Views(engine.Logic));
            EndpointView ramping = engine.Logic.ViewEndpoint(102, 1);
            Assert.Equal((true, 2, 4, 9_000, "op-frank"), (ramping.Ramping, ramping.RampStepsDone, ramping.RampSteps, ramping.RampTargetBps, ramping.RampOperator));
            Assert.Equal((2_000, 8_000), (engine.Logic.ViewEndpoint(103, 0).WeightBps, engine.Logic.ViewEndpoint(103, 1).WeightBps));
            Assert.Equal((EndpointState.Down, false), (engine.Logic.ViewEndpoint(308, 1).State, engine.Logic.ViewEndpoint(308, 1).Reachable));
            // The replay handed the same audit entries to whoever rebuilds a view from them.
            Assert.Equal(liveAudit, Audits(replayed.Outputs));
            Assert.Empty(recorder.Outputs);

            // The ramp goes on, numbered after the recovered entries.
            Tick(engine, 1_000);
            Tick(engine, 1_000);
            List<OutputEvent> after = Audits(recorder.Drain());
            Assert.Equal([AuditKind.RampStep, AuditKind.RampDone], after.Select(a => a.AuditKind));
            Assert.Equal([7L, 8L], after.Select(a => a.AuditNo));
            Assert.Equal((1_000, 9_000), (engine.Logic.ViewEndpoint(102, 0).WeightBps, engine.Logic.ViewEndpoint(102, 1).WeightBps));
            Assert.False(engine.Logic.ViewEndpoint(102, 0).Ramping);
        }
    }

    private static EndpointView[] Views(SwitchLogic logic) =>
        logic.Banks.SelectMany(b => Enumerable.Range(0, b.Endpoints.Length).Select(e => logic.ViewEndpoint(b.Code, e))).ToArray();
}
