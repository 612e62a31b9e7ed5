using Switch.Engine.Events;
using EngineBreaker = Switch.Engine.Events.BreakerState;

namespace Switch.Host.Admin;

/// <summary>A running ramp, as its audit entries describe it.</summary>
public sealed record RampInfo(int[] FromWeightsBps, int[] TargetWeightsBps, int StepsTotal, int StepsDone, long NextStepUs, string OperatorId);

/// <summary>One endpoint's routing, as the audit entries say it is.</summary>
public sealed record EndpointRouting(string Name, int WeightBps, EndpointState State, bool Reachable, EngineBreaker Breaker)
{
    /// <summary>Takes new transactions now: up, reachable, breaker not open, and a share of the weights.</summary>
    public bool TakesTraffic => State == EndpointState.Up && Reachable && Breaker != EngineBreaker.Open && WeightBps > 0;
}

/// <summary>One bank's routing view.</summary>
public sealed record BankRouting(int Index, int Code, string Name, EndpointRouting[] Endpoints, RampInfo? Ramp)
{
    public string CodeText => Code.ToString("D3");
}
