using Switch.Engine.Snapshots;
using Switch.Engine.Events;

namespace Switch.Engine.Business;

/// <summary>
/// How much traffic each endpoint takes: operator weights and ramps, admin states, reachability and the breakers,
/// with an audit entry for every change; and the timed part (ramp steps, breakers half-opening), run on ticks only
/// when something is due. Owned by <see cref="SwitchLogic"/>, on its thread.
/// </summary>
public sealed class EndpointControl(Bank[] banks, RulesConfig rules, OutputWriter output)
{
    /// <summary>The earliest ramp step or breaker half-open due (µs); ticks before it skip the scan of the banks.</summary>
    private long _nextTimedUs = long.MaxValue;

    /// <summary>When the next ramp step or breaker half-open is due (µs; <see cref="long.MaxValue"/>: none).</summary>
    public long NextTimedUs => _nextTimedUs;

    public void Save(StateWriter w) => w.Long(_nextTimedUs);

    public void Restore(ref StateReader r) => _nextTimedUs = r.Long();

    /// <summary>Applies accepted weights: a running ramp stops where it is, then they apply at once or start a ramp.
    /// Returns the change's audit number.</summary>
    public long SetWeights(ref InputEvent e, Bank bank, long nowUs)
    {
        if (bank.Ramp.Active)
        {
            bank.Ramp.Cancel();
            output.Audit(AuditKind.RampCancelled, bank, -1, in e.Operator, in e.Note);
        }
        if (e.RampSteps == 0)
        {
            for (int i = 0; i < e.EndpointCount; i++)
            {
                bank.Endpoints[i].WeightBps = e.WeightsBps[i];
            }
            return output.Audit(AuditKind.Weights, bank, -1, in e.Operator, in e.Note);
        }
        EndpointWeights fromBps = CurrentWeights(bank);
        bank.Ramp.Start(in fromBps, in e.WeightsBps, e.RampSteps, e.RampDurationMs, nowUs, in e.Operator, in e.Note);
        _nextTimedUs = Math.Min(_nextTimedUs, bank.Ramp.NextStepUs);
        return output.Audit(AuditKind.RampStarted, bank, -1, in e.Operator, in e.Note);
    }

    /// <summary>An accepted admin state; returns its audit number.</summary>
    public long SetState(ref InputEvent e, Bank bank)
    {
        bank.Endpoints[e.EndpointIndex].State = e.EndpointState;
        return output.Audit(AuditKind.State, bank, e.EndpointIndex, in e.Operator, in e.Note);
    }

    /// <summary>The connector's view, kept apart from the operator's state. Only changes make an audit entry.</summary>
    public void SetReachable(ref InputEvent e, Bank bank)
    {
        Endpoint endpoint = bank.Endpoints[e.EndpointIndex];
        if (endpoint.Reachable == e.Reachable)
        {
            return;
        }
        endpoint.Reachable = e.Reachable;
        output.Audit(AuditKind.Reachability, bank, e.EndpointIndex, in e.Operator, in e.Note);
    }

    /// <summary>A call's outcome for the endpoint's breaker; a transition makes an audit entry.</summary>
    public void RecordCall(Bank bank, int endpointIndex, bool failed, long nowUs)
    {
        if (bank.Endpoints[endpointIndex].Breaker.Record(nowUs, failed))
        {
            BreakerChanged(bank, endpointIndex);
        }
    }

    private void BreakerChanged(Bank bank, int endpointIndex)
    {
        EndpointBreaker breaker = bank.Endpoints[endpointIndex].Breaker;
        if (breaker.State == BreakerState.Open)
        {
            _nextTimedUs = Math.Min(_nextTimedUs, breaker.OpenUntilUs);
        }
        output.BreakerAudit(bank, endpointIndex, rules.BreakerProbeSuccesses);
    }

    /// <summary>Applies ramp steps and half-opens breakers that are due, then finds the next time anything is due.
    /// Does nothing before <see cref="_nextTimedUs"/>; else O(endpoints), once per step or opening.</summary>
    public void RunDue(long nowUs)
    {
        if (nowUs < _nextTimedUs)
        {
            return;
        }
        long nextUs = long.MaxValue;
        Span<int> weightsBps = stackalloc int[InputEvent.MaxEndpointsPerBank];
        foreach (Bank bank in banks)
        {
            WeightRamp ramp = bank.Ramp;
            // Every step due is applied and audited in order (at most MaxSteps), even after a long gap.
            while (ramp.Active && nowUs >= ramp.NextStepUs)
            {
                bool done = ramp.Step(bank.Endpoints.Length, weightsBps);
                for (int i = 0; i < bank.Endpoints.Length; i++)
                {
                    bank.Endpoints[i].WeightBps = weightsBps[i];
                }
                output.Audit(done ? AuditKind.RampDone : AuditKind.RampStep, bank, -1, in ramp.Operator, in ramp.Note);
            }
            if (ramp.Active)
            {
                nextUs = Math.Min(nextUs, ramp.NextStepUs);
            }
            for (int i = 0; i < bank.Endpoints.Length; i++)
            {
                EndpointBreaker breaker = bank.Endpoints[i].Breaker;
                if (breaker.Advance(nowUs))
                {
                    BreakerChanged(bank, i);
                }
                if (breaker.State == BreakerState.Open)
                {
                    nextUs = Math.Min(nextUs, breaker.OpenUntilUs);
                }
            }
        }
        _nextTimedUs = nextUs;
    }

    private static EndpointWeights CurrentWeights(Bank bank)
    {
        var weights = new EndpointWeights();
        for (int i = 0; i < bank.Endpoints.Length; i++)
        {
            weights[i] = bank.Endpoints[i].WeightBps;
        }
        return weights;
    }
}
