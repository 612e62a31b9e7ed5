namespace Switch.Host.Gateway;

/// <summary>
/// A token bucket on integer units, no floating point: a token is <see cref="UnitsPerToken"/> units, so whole
/// tokens per second and per minute both refill by an exact whole number of units per millisecond. Not
/// thread-safe: its owner holds a lock around it. No allocation.
/// </summary>
public struct TokenBucket
{
    /// <summary>60,000 ms × 1,000: one token per minute is exactly 1,000 units per ms.</summary>
    public const long UnitsPerToken = 60_000_000;
    /// <summary>Largest burst: keeps capacity in units far from overflow.</summary>
    public const int MaxBurstTokens = 1 << 24;
    /// <summary>Largest rate: 1,000,000 tokens/s.</summary>
    public const int MaxTokensPerSecond = 1_000_000;

    private readonly long _capacityUnits;
    private readonly long _unitsPerMs;
    private long _units;
    private long _lastMs;

    private TokenBucket(int burstTokens, long unitsPerMs, long nowMs)
    {
        if (burstTokens is < 1 or > MaxBurstTokens) throw new ArgumentOutOfRangeException(nameof(burstTokens), $"1 to {MaxBurstTokens}");
        if (unitsPerMs < 1) throw new ArgumentOutOfRangeException(nameof(unitsPerMs), "a refill rate above zero");
        _capacityUnits = burstTokens * UnitsPerToken;
        _unitsPerMs = unitsPerMs;
        _units = _capacityUnits; // starts full: a new client gets its burst
        _lastMs = nowMs;
    }

    public static TokenBucket PerSecond(int tokensPerSecond, int burstTokens, long nowMs)
    {
        if (tokensPerSecond is < 1 or > MaxTokensPerSecond) throw new ArgumentOutOfRangeException(nameof(tokensPerSecond), $"1 to {MaxTokensPerSecond}");
        return new TokenBucket(burstTokens, tokensPerSecond * (UnitsPerToken / 1_000), nowMs);
    }

    public static TokenBucket PerMinute(int tokensPerMinute, int burstTokens, long nowMs)
    {
        if (tokensPerMinute is < 1 or > MaxTokensPerSecond) throw new ArgumentOutOfRangeException(nameof(tokensPerMinute), $"1 to {MaxTokensPerSecond}");
        return new TokenBucket(burstTokens, tokensPerMinute * (UnitsPerToken / 60_000), nowMs);
    }

    /// <summary>Takes one token if there is one.</summary>
    public bool TryTake(long nowMs) => TryTake(nowMs, 1) == 1;

    /// <summary>Takes as many tokens as there are, up to <paramref name="maxTokens"/>; returns how many (0 if none).</summary>
    public int TryTake(long nowMs, int maxTokens)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTokens, 1);
        Refill(nowMs);
        int taken = (int)Math.Min(maxTokens, _units / UnitsPerToken);
        _units -= taken * UnitsPerToken;
        return taken;
    }

    /// <summary>Milliseconds until a token is available (0 if one is now).</summary>
    public long MsUntilToken(long nowMs)
    {
        Refill(nowMs);
        long missing = UnitsPerToken - _units;
        return missing <= 0 ? 0 : (missing + _unitsPerMs - 1) / _unitsPerMs;
    }

    /// <summary>Full again at <paramref name="nowMs"/>: its state says nothing a fresh bucket would not.</summary>
    public bool IsFull(long nowMs)
    {
        Refill(nowMs);
        return _units == _capacityUnits;
    }

    private void Refill(long nowMs)
    {
        long elapsedMs = nowMs - _lastMs;
        if (elapsedMs <= 0) return; // a clock that does not move (or a caller's stale reading) adds nothing
        _lastMs = nowMs;
        // Bounded elapsed time so the product cannot overflow: beyond the time to fill, the bucket is full anyway.
        long fillMs = _capacityUnits / _unitsPerMs + 1;
        _units = Math.Min(_capacityUnits, _units + Math.Min(elapsedMs, fillMs) * _unitsPerMs);
    }
}
