using Switch.Engine.Replication;

namespace Switch.Host.Configuration;

/// <summary>
/// A node of a primary/standby pair (README "Hot standby"): its name, etcd (who holds leadership), the replication
/// port the standby follows the primary's journal on, and the durability mode. Absent: a single switch, as always.
/// </summary>
public sealed record ClusterConfig
{
    public const int MaxEtcdEndpoints = 9;
    public const int MaxNodeNameBytes = 64;

    /// <summary>This node's name, unique in the cluster (it appears in etcd, logs and `switchctl cluster`).</summary>
    public string Node { get; init; } = "";
    /// <summary>The cluster's name: the etcd keys live under /switch/&lt;name&gt;/.</summary>
    public string Name { get; init; } = "switch";
    /// <summary>etcd's client URLs (http://host:2379).</summary>
    public IReadOnlyList<string> Etcd { get; init; } = [];
    /// <summary>The leadership lease: a dead primary's key expires this long after its last renewal; the RTO's floor.</summary>
    public int LeaseTtlMs { get; init; } = 2_000;
    /// <summary>Where the primary serves its journal to the standby (0: any free port).</summary>
    public int ReplicationPort { get; init; } = 7004;
    /// <summary>The host name or address other nodes and clients reach this one by (default: listenAddress).</summary>
    public string? AdvertisedHost { get; init; }
    /// <summary>"synchronous" (default: an event counts as durable only once the standby has it on disk too: RPO 0) or
    /// "asynchronous" (local commit only; the standby's lag is measured and exported).</summary>
    public string Durability { get; init; } = DurabilitySynchronous;
    /// <summary>Synchronous mode with no standby acknowledging: "degrade" (default: after standbyAckTimeoutMs it runs
    /// asynchronous, with an alert, having first said in etcd that it alone holds what it acknowledges, so no standby
    /// lacking those payments takes office) or "wait" (the switch acknowledges nothing until a standby catches up).</summary>
    public string OnStandbyLost { get; init; } = StandbyLostDegrade;
    public int StandbyAckTimeoutMs { get; init; } = 1_000;
    /// <summary>Each etcd call's deadline (a campaign, a renewal's stream, the in-sync record): past it the call is
    /// ETCD_UNAVAILABLE and retried. Judged with the lease's keys (<c>LeadershipOptions.Problem</c>).</summary>
    public int EtcdTimeoutMs { get; init; } = 1_000;

    public const string DurabilitySynchronous = "synchronous";
    public const string DurabilityAsynchronous = "asynchronous";
    public const string StandbyLostWait = "wait";
    public const string StandbyLostDegrade = "degrade";

    /// <summary>The first key out of range and why, or null. The lease's keys are the leadership's to judge
    /// (<c>LeadershipOptions.Problem</c>, asked by <see cref="HostConfig.Validate"/> with the ports it advertises).</summary>
    public (string Field, string Why)? Problem()
    {
        if (string.IsNullOrWhiteSpace(Node) || Node.Length > MaxNodeNameBytes || !Node.All(IsNameChar))
            return ("cluster.node", $"1 to {MaxNodeNameBytes} letters, digits, '-', '_' or '.', got '{Node}'");
        if (string.IsNullOrWhiteSpace(Name) || Name.Length > MaxNodeNameBytes || !Name.All(IsNameChar))
            return ("cluster.name", $"1 to {MaxNodeNameBytes} letters, digits, '-', '_' or '.', got '{Name}'");
        if (Etcd is null || Etcd.Count is 0 or > MaxEtcdEndpoints) return ("cluster.etcd", $"1 to {MaxEtcdEndpoints} etcd client URLs");
        for (int i = 0; i < Etcd.Count; i++)
        {
            if (!Uri.TryCreate(Etcd[i], UriKind.Absolute, out Uri? uri) || uri.Scheme is not ("http" or "https"))
                return ($"cluster.etcd[{i}]", $"an http(s) URL such as http://127.0.0.1:2379, got '{Etcd[i]}'");
        }
        if (ReplicationPort is < 0 or > 65535) return ("cluster.replicationPort", $"0 to 65535, got {ReplicationPort}");
        if (Durability is not (DurabilitySynchronous or DurabilityAsynchronous))
            return ("cluster.durability", $"\"{DurabilitySynchronous}\" or \"{DurabilityAsynchronous}\", got '{Durability}'");
        if (OnStandbyLost is not (StandbyLostWait or StandbyLostDegrade))
            return ("cluster.onStandbyLost", $"\"{StandbyLostWait}\" or \"{StandbyLostDegrade}\", got '{OnStandbyLost}'");
        if (StandbyAckTimeoutMs is < 10 or > 600_000) return ("cluster.standbyAckTimeoutMs", $"10 to 600000, got {StandbyAckTimeoutMs}");
        return null;
    }

    /// <summary>The engine's replication options: the durability mode and what it does without a standby.</summary>
    public ReplicationOptions ToReplicationOptions(Action<ReplicationAlert> onAlert, Func<bool>? mayDegrade, Func<bool>? mayAct) => new()
    {
        MayDegrade = mayDegrade,
        MayAct = mayAct,
        Mode = Durability == DurabilityAsynchronous ? ReplicationMode.Asynchronous : ReplicationMode.Synchronous,
        OnStandbyLost = OnStandbyLost == StandbyLostDegrade ? StandbyLossPolicy.Degrade : StandbyLossPolicy.Wait,
        StandbyAckTimeoutMs = StandbyAckTimeoutMs,
        OnAlert = onAlert,
    };

    /// <summary>The key of this block that sets the leadership option a <c>LeadershipOptions.Problem</c> names: those
    /// options are built from these keys (<c>ClusterNode.LeadershipOptionsOf</c>), and an operator must be told the key
    /// to change, not an option no configuration file has.</summary>
    public static string KeyOfLeadership(string field) => field switch
    {
        "cluster.etcdEndpoints" => "cluster.etcd",
        "cluster.nodeName" => "cluster.node",
        "cluster.advertisedAddress" or "cluster.advertisedAdminAddress" or "cluster.replicationAddress" => "cluster.advertisedHost",
        "cluster.fenceMarginMs" or "cluster.renewIntervalMs" => "cluster.leaseTtlMs", // both derived from the lease
        _ => field, // cluster.name, cluster.leaseTtlMs, cluster.etcdTimeoutMs: keys of this block by the same name
    };

    private static bool IsNameChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.';
}
