using Switch.Engine.Events;

namespace Switch.Engine.Business;

/// <summary>One endpoint of a bank (a data centre): its share of traffic, its states and its counters, on the writer thread.</summary>
public sealed class Endpoint
{
    public required string Name { get; init; }
    public required int InFlightCap { get; init; }
    public required EndpointBreaker Breaker { get; init; }
    public int WeightBps;
    /// <summary>The operator's admin state.</summary>
    public EndpointState State;
    /// <summary>What the connector last reported; apart from <see cref="State"/> so an operator's Down survives a reconnect.</summary>
    public bool Reachable = true;
    /// <summary>Operations sent to this endpoint and not yet answered or timed out.</summary>
    public int InFlight;
    public long DispatchedCount;
    public long SucceededCount;
    public long FailedCount;
    public long TimedOutCount;

    /// <summary>Takes new traffic in full: up by the operator, reachable, breaker closed (half-open takes a trickle).</summary>
    public bool TakesTraffic => State == EndpointState.Up && Reachable && Breaker.State == BreakerState.Closed;
    /// <summary>May get a share of new traffic: as <see cref="TakesTraffic"/>, or half-open (then only its probes go).</summary>
    public bool InRotation => State == EndpointState.Up && Reachable && Breaker.State != BreakerState.Open;
    /// <summary>Can answer a query or reversal: reachable and not taken down by an operator (draining and open still answer).</summary>
    public bool AnswersFollowUps => State != EndpointState.Down && Reachable;
}
