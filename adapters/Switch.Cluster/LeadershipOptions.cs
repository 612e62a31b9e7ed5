namespace Switch.Cluster;

/// <summary>How a node holds or follows the leadership of its cluster in etcd (README "Leadership (etcd)").
/// Each key has a limit; <see cref="Problem"/> names the first one out of range.</summary>
public sealed record LeadershipOptions
{
    public const int MaxEndpoints = 16;
    public const int MaxNameChars = 64;
    public const int MaxAddressChars = 256;
    public const int MinLeaseTtlMs = 1_000;
    public const int MaxLeaseTtlMs = 60_000;
    public const int MinIntervalMs = 10;

    /// <summary>etcd client URLs (<c>http://host:port</c>); the client balances over them.</summary>
    public IReadOnlyList<string> Endpoints { get; init; } = ["http://127.0.0.1:2379"];
    /// <summary>The pair's name: its keys live under <c>/switch/&lt;ClusterName&gt;/</c>.</summary>
    public string ClusterName { get; init; } = "switch";
    /// <summary>This node's name, unique in the cluster.</summary>
    public string NodeName { get; init; } = "";
    /// <summary>What institutions are told to call when this node leads (the institution port).</summary>
    public string AdvertisedAddress { get; init; } = "";
    /// <summary>What operators are told to call when this node leads (the admin port).</summary>
    public string AdvertisedAdminAddress { get; init; } = "";
    /// <summary>Where a standby reads this node's journal when this node leads.</summary>
    public string ReplicationAddress { get; init; } = "";
    /// <summary>The lease's time to live: a dead leader's key goes this long after its last renewal. etcd counts
    /// leases in whole seconds, so a multiple of 1,000.</summary>
    public int LeaseTtlMs { get; init; } = 2_000;
    /// <summary>A renewal is sent this often. At most half of (TTL − margin), so one lost renewal never fences.</summary>
    public int RenewIntervalMs { get; init; } = 500;
    /// <summary>The leader stops acting this long before its lease can expire at etcd (see <see cref="LeaseFence"/>).</summary>
    public int FenceMarginMs { get; init; } = 500;
    /// <summary>Each etcd call's deadline; a call past it is <c>ETCD_UNAVAILABLE</c>.</summary>
    public int EtcdTimeoutMs { get; init; } = 1_000;

    /// <summary>The key the leader holds with its lease.</summary>
    public string LeaderKey => $"/switch/{ClusterName}/leader";

    /// <summary>The first key out of range and why, or null.</summary>
    public (string Field, string Why)? Problem()
    {
        if (Endpoints is null || Endpoints.Count is 0 or > MaxEndpoints)
            return ("cluster.etcdEndpoints", $"1 to {MaxEndpoints} URLs, got {Endpoints?.Count ?? 0}");
        foreach (var endpoint in Endpoints)
        {
            if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")
                || uri.Port <= 0 || endpoint.Contains(','))
                return ("cluster.etcdEndpoints", $"each an http:// or https:// URL with a port, got '{endpoint}'");
        }
        if (!IsName(ClusterName)) return ("cluster.name", $"1 to {MaxNameChars} letters, digits, '-', '_' or '.', got '{ClusterName}'");
        if (!IsName(NodeName)) return ("cluster.nodeName", $"1 to {MaxNameChars} letters, digits, '-', '_' or '.', got '{NodeName}'");
        if (!IsAddress(AdvertisedAddress)) return ("cluster.advertisedAddress", $"host:port, at most {MaxAddressChars} characters, got '{AdvertisedAddress}'");
        if (!IsAddress(AdvertisedAdminAddress)) return ("cluster.advertisedAdminAddress", $"host:port, at most {MaxAddressChars} characters, got '{AdvertisedAdminAddress}'");
        if (!IsAddress(ReplicationAddress)) return ("cluster.replicationAddress", $"host:port, at most {MaxAddressChars} characters, got '{ReplicationAddress}'");
        if (LeaseTtlMs is < MinLeaseTtlMs or > MaxLeaseTtlMs || LeaseTtlMs % 1_000 != 0)
            return ("cluster.leaseTtlMs", $"whole seconds from {MinLeaseTtlMs} to {MaxLeaseTtlMs} (etcd counts leases in seconds), got {LeaseTtlMs}");
        if (FenceMarginMs < MinIntervalMs || FenceMarginMs > LeaseTtlMs / 2)
            return ("cluster.fenceMarginMs", $"{MinIntervalMs} to half of cluster.leaseTtlMs ({LeaseTtlMs / 2}), got {FenceMarginMs}");
        if (RenewIntervalMs < MinIntervalMs || RenewIntervalMs > (LeaseTtlMs - FenceMarginMs) / 2)
            return ("cluster.renewIntervalMs", $"{MinIntervalMs} to half of (cluster.leaseTtlMs − cluster.fenceMarginMs) = {(LeaseTtlMs - FenceMarginMs) / 2}, got {RenewIntervalMs}");
        if (EtcdTimeoutMs < MinIntervalMs || EtcdTimeoutMs > MaxLeaseTtlMs)
            return ("cluster.etcdTimeoutMs", $"{MinIntervalMs} to {MaxLeaseTtlMs}, got {EtcdTimeoutMs}");
        return null;
    }

    /// <summary>Throws <see cref="LeadershipException"/> (<c>CONFIG_INVALID</c>) naming the first key out of range.</summary>
    public void Validate()
    {
        if (Problem() is { } p) throw new LeadershipException(LeadershipCodes.ConfigInvalid, $"{p.Field}: {p.Why}");
    }

    static bool IsName(string? s) =>
        !string.IsNullOrEmpty(s) && s.Length <= MaxNameChars && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    internal static bool IsAddress(string? s)
    {
        if (string.IsNullOrEmpty(s) || s.Length > MaxAddressChars || s.Any(char.IsWhiteSpace)) return false;
        var colon = s.LastIndexOf(':');
        return colon > 0 && int.TryParse(s.AsSpan(colon + 1), out var port) && port is > 0 and <= 65535;
    }
}
