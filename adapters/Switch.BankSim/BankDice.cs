namespace Switch.BankSim;

/// <summary>The bank's seeded random source, shared by its calls and streams (hence the lock).</summary>
internal sealed class BankDice
{
    private readonly Random _random;
    private readonly Lock _gate = new();

    public BankDice(int seed) => _random = new Random(seed);

    public double LatencyMs(LatencyModel model)
    {
        if (model is LatencyModel.Fixed fixedLatency) return fixedLatency.LatencyMs; // No draw needed.
        lock (_gate) return model.SampleMs(_random);
    }

    /// <summary>True with probability <paramref name="rate"/>; no draw at 0 or 1.</summary>
    public bool Chance(double rate)
    {
        if (rate <= 0) return false;
        if (rate >= 1) return true;
        lock (_gate) return _random.NextDouble() < rate;
    }

    /// <summary>A decline reason with probability <paramref name="rate"/>, else null.</summary>
    public string? Decline(double rate)
    {
        if (!Chance(rate)) return null;
        int pick;
        lock (_gate) pick = _random.Next(100);
        foreach (var (reason, weight) in BankReasons.Declines)
        {
            if (pick < weight) return reason;
            pick -= weight;
        }
        throw new InvalidOperationException("Decline weights must sum to 100.");
    }
}
