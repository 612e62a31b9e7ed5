namespace Switch.Cluster;

/// <summary>Every way holding or following leadership can go wrong, as the code a log record or an exception starts
/// with.</summary>
public static class LeadershipCodes
{
    /// <summary>A leadership option is out of range (the message names the key).</summary>
    public const string ConfigInvalid = "CONFIG_INVALID";
    /// <summary>etcd did not answer within its deadline (unreachable, stopped, or too slow): at start, or a leader's
    /// renewals went unanswered until its fence deadline.</summary>
    public const string EtcdUnavailable = "ETCD_UNAVAILABLE";
    /// <summary>etcd refused a call (a status other than unavailable or deadline: permission, a bad request).</summary>
    public const string EtcdRefused = "ETCD_REFUSED";
    /// <summary>etcd answered a renewal saying the lease is gone (TTL 0): leadership is lost at once.</summary>
    public const string LeaseExpired = "LEASE_EXPIRED";
    /// <summary>The leader key was deleted or replaced while this node led (by hand, or its lease revoked elsewhere).</summary>
    public const string LeaderKeyLost = "LEADER_KEY_LOST";
    /// <summary>The leader key holds a value that is not a leader record of this project.</summary>
    public const string LeaderValueMalformed = "LEADER_VALUE_MALFORMED";
    /// <summary>The leader key is held without a lease: it would never expire, so no node could ever take over.</summary>
    public const string LeaderKeyWithoutLease = "LEADER_KEY_WITHOUT_LEASE";
    /// <summary>This node gave its leadership up (<see cref="EtcdLeadership.ResignAsync"/>).</summary>
    public const string Resigned = "RESIGNED";
}

/// <summary>A leadership failure with its code; the message names the key or the figure at fault.</summary>
public sealed class LeadershipException(string code, string detail, Exception? inner = null)
    : Exception($"{code}: {detail}", inner)
{
    public string Code { get; } = code;
    /// <summary>The message without its code.</summary>
    public string Detail { get; } = detail;

    public LeadershipFault ToFault() => new(Code, Detail);
}

/// <summary>What an event reports: a code from <see cref="LeadershipCodes"/> and why.</summary>
public sealed record LeadershipFault(string Code, string Message)
{
    public override string ToString() => $"{Code}: {Message}";
}
