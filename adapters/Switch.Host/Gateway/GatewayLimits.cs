namespace Switch.Host.Gateway;

/// <summary>
/// Fair-use limits of the institution port. Defaults keep an institution from starving the others without biting
/// normal traffic: the switch's design peak is 180,000 requests/s in all, so one institution may take 100,000/s
/// with a burst of one second's worth, and have 65,536 requests unanswered (eight full Transact streams).
/// </summary>
public sealed record GatewayLimits
{
    /// <summary>Sustained requests per second per institution (unary calls, Transact messages, Outcomes opens).</summary>
    public int RequestsPerSecond { get; init; } = 100_000;

    /// <summary>Requests an institution may send at once above its sustained rate.</summary>
    public int BurstRequests { get; init; } = 100_000;

    /// <summary>Requests per institution accepted and not yet answered, unary and streamed together.</summary>
    public int MaxInFlight { get; init; } = 65_536;

    /// <summary>
    /// Transact and Outcomes streams one institution may have open at once. Each holds at most
    /// maxInFlightPerStream answers its client has not read, so this bounds an institution's unread answers.
    /// </summary>
    public int MaxStreamsPerInstitution { get; init; } = 32;

    /// <summary>Connections one institution may have open at once (a connection is its first authenticated call's).</summary>
    public int MaxConnectionsPerInstitution { get; init; } = 8;

    /// <summary>Connections to the institution port at once, authenticated or not (Kestrel closes the ones past it).</summary>
    public int MaxConnections { get; init; } = 1_024;

    /// <summary>Failed authentications a source address may make at once before it is refused.</summary>
    public int AuthFailureBurst { get; init; } = 20;

    /// <summary>Failed authentications per minute a source address earns back once it has used its burst.</summary>
    public int AuthFailuresPerMinute { get; init; } = 30;

    /// <summary>How long a wrong key from an address past its failure budget waits for its answer (a tarpit).</summary>
    public int AuthFailureDelayMs { get; init; } = 1_000;

    /// <summary>Wrong-key answers that may wait at once per address; a call past them is refused unread (AUTH_THROTTLED).</summary>
    public int AuthDelayedPerAddress { get; init; } = 32;

    /// <summary>Source addresses tracked at once; the least recently failing is forgotten first.</summary>
    public int AuthTrackedAddresses { get; init; } = 4_096;

    public static GatewayLimits Default { get; } = new();

    /// <summary>Throws with the field's name when a limit is out of range.</summary>
    public GatewayLimits Validated()
    {
        Require(RequestsPerSecond is >= 1 and <= TokenBucket.MaxTokensPerSecond, nameof(RequestsPerSecond), $"1 to {TokenBucket.MaxTokensPerSecond}");
        Require(BurstRequests is >= 1 and <= TokenBucket.MaxBurstTokens, nameof(BurstRequests), $"1 to {TokenBucket.MaxBurstTokens}");
        Require(MaxInFlight is >= 1 and <= 1 << 24, nameof(MaxInFlight), "1 to 16777216");
        Require(MaxStreamsPerInstitution is >= 1 and <= 1 << 16, nameof(MaxStreamsPerInstitution), "1 to 65536");
        Require(MaxConnectionsPerInstitution is >= 1 and <= 1 << 16, nameof(MaxConnectionsPerInstitution), "1 to 65536");
        Require(MaxConnections is >= 1 and <= 1 << 20, nameof(MaxConnections), "1 to 1048576");
        Require(AuthFailureBurst is >= 1 and <= TokenBucket.MaxBurstTokens, nameof(AuthFailureBurst), $"1 to {TokenBucket.MaxBurstTokens}");
        Require(AuthFailuresPerMinute is >= 1 and <= TokenBucket.MaxTokensPerSecond, nameof(AuthFailuresPerMinute), $"1 to {TokenBucket.MaxTokensPerSecond}");
        Require(AuthFailureDelayMs is >= 1 and <= 60_000, nameof(AuthFailureDelayMs), "1 to 60000");
        Require(AuthDelayedPerAddress is >= 1 and <= 1_024, nameof(AuthDelayedPerAddress), "1 to 1024");
        Require(AuthTrackedAddresses is >= 1 and <= 1 << 20, nameof(AuthTrackedAddresses), "1 to 1048576");
        return this;
    }

    private static void Require(bool ok, string field, string range)
    {
        if (!ok) throw new ArgumentOutOfRangeException(field, $"gateway limits: {field} must be {range}");
    }
}
