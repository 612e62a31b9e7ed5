namespace Switch.Host.Configuration;

/// <summary>How the in-process simulated banks behave (the default configuration runs on them).</summary>
public sealed record SimulatedBanksConfig
{
    /// <summary>fixed:MS, uniform:MIN-MAX or lognormal:MEDIAN,SIGMA (milliseconds), or 0 for at once.</summary>
    public string Latency { get; init; } = "lognormal:2,0.5";
    public double FailureRate { get; init; } = 0.02;
    public double NoAnswerRate { get; init; }
    public int CapacityTps { get; init; }
    public int Seed { get; init; } = 1;
}
