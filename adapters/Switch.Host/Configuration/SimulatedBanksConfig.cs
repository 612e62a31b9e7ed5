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

    /// <summary>The simulator of endpoint <paramref name="endpointIndex"/> of the configuration's bank
    /// <paramref name="bankIndex"/> (its own seed, on any free port): the switch's in-process banks and the demo pair's.</summary>
    public BankSim.BankSimulatorOptions EndpointOptions(int bankIndex, int endpointIndex, int bankCode) => new()
    {
        Port = 0,
        Latency = BankSim.LatencyModel.Parse(Latency),
        FailureRate = FailureRate,
        NoAnswerRate = NoAnswerRate,
        CapacityTps = CapacityTps,
        Seed = Seed + bankIndex * 16 + endpointIndex,
        BankCodes = [bankCode],
    };
}
