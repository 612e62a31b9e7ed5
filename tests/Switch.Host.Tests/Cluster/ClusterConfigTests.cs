using Switch.Engine.Business;
using Switch.Host.Cluster;
using Switch.Host.Configuration;

namespace Switch.Host.Tests.Cluster;

/// <summary>A node's cluster block: every wrong key is refused at load, naming it, before anything starts.</summary>
public sealed class ClusterConfigTests
{
    private static HostConfig Node(Func<ClusterConfig, ClusterConfig>? change = null, int institutionPort = 7101)
    {
        HostConfig demo = HostConfig.EmbeddedDefault();
        var addresses = demo.Switch.Banks.SelectMany(b => b.Endpoints).Select((_, i) => new Uri($"http://127.0.0.1:{7200 + i}")).ToList();
        IReadOnlyList<BankConfig> banks = ClusterLayout.WithAddresses(demo.Switch.Banks, addresses);
        return ClusterLayout.Node(demo, banks, "a", institutionPort, "./unused", ["http://127.0.0.1:2379"], "test", change);
    }

    [Fact]
    public void A_node_of_the_demo_layout_is_valid_and_advertises_its_fixed_ports()
    {
        HostConfig config = Node();
        config.Validate();
        var leadership = ClusterNode.LeadershipOptionsOf(config);
        Assert.Equal("127.0.0.1:7101", leadership.AdvertisedAddress);
        Assert.Equal("127.0.0.1:7103", leadership.AdvertisedAdminAddress);
        Assert.Equal("127.0.0.1:7104", leadership.ReplicationAddress);
        Assert.Null(leadership.Problem());
    }

    [Theory]
    [InlineData("node", "cluster.node")]
    [InlineData("etcd", "cluster.etcd[0]")]
    [InlineData("ttl", "cluster.leaseTtlMs")]
    [InlineData("durability", "cluster.durability")]
    [InlineData("lost", "cluster.onStandbyLost")]
    [InlineData("timeout", "cluster.standbyAckTimeoutMs")]
    [InlineData("port", "cluster.replicationPort")]
    [InlineData("etcdTimeoutLow", "cluster.etcdTimeoutMs")]
    [InlineData("etcdTimeoutHigh", "cluster.etcdTimeoutMs")]
    // Judged as leadership options (an etcd URL needs a real port, an advertised host no space): named by the key that sets them.
    [InlineData("etcdPort", "cluster.etcd")]
    [InlineData("host", "cluster.advertisedHost")]
    public void Each_wrong_key_is_refused_by_name(string wrong, string field)
    {
        HostConfig config = Node(c => wrong switch
        {
            "etcdTimeoutLow" => c with { EtcdTimeoutMs = 9 },
            "etcdTimeoutHigh" => c with { EtcdTimeoutMs = 60_001 },
            "etcdPort" => c with { Etcd = ["http://127.0.0.1:0"] },
            "host" => c with { AdvertisedHost = "node a" },
            "node" => c with { Node = "a b" },
            "etcd" => c with { Etcd = ["etcd:2379"] },
            "ttl" => c with { LeaseTtlMs = 1_500 },
            "durability" => c with { Durability = "eventually" },
            "lost" => c with { OnStandbyLost = "panic" },
            "timeout" => c with { StandbyAckTimeoutMs = 0 },
            _ => c with { ReplicationPort = 7101 },
        });
        var e = Assert.Throws<ConfigException>(config.Validate);
        Assert.StartsWith($"configuration: {field}: ", e.Message);
    }

    [Fact]
    public void The_etcd_timeout_is_read_from_the_file_and_reaches_every_etcd_call()
    {
        HostConfig node = Node();
        Assert.Equal(1_000, node.Cluster!.EtcdTimeoutMs); // the default, as the leadership's
        Assert.Equal(new Switch.Cluster.LeadershipOptions().EtcdTimeoutMs, node.Cluster.EtcdTimeoutMs);
        string json = ClusterLayout.ToJson(node);
        Assert.Contains("\"etcdTimeoutMs\": 1000", json);
        HostConfig read = HostConfig.Parse(json.Replace("\"etcdTimeoutMs\": 1000", "\"etcdTimeoutMs\": 2500"), "node-a.json");
        Assert.Equal(2_500, read.Cluster!.EtcdTimeoutMs);
        Assert.Equal(2_500, ClusterNode.LeadershipOptionsOf(read).EtcdTimeoutMs);
        // Refused at load, naming the key, before anything starts.
        var e = Assert.Throws<ConfigException>(() => HostConfig.Parse(json.Replace("\"etcdTimeoutMs\": 1000", "\"etcdTimeoutMs\": 5"), "node-a.json"));
        Assert.Equal("node-a.json: configuration: cluster.etcdTimeoutMs: 10 to 60000, got 5", e.Message);
    }

    [Fact]
    public void A_cluster_refuses_simulated_banks_and_ports_chosen_at_random()
    {
        HostConfig simulated = HostConfig.EmbeddedDefault() with { Cluster = Node().Cluster };
        Assert.Contains("every bank endpoint needs a real address", Assert.Throws<ConfigException>(simulated.Validate).Message);
        HostConfig anyPort = Node(institutionPort: 0) with { };
        Assert.Contains("must be fixed", Assert.Throws<ConfigException>(anyPort.Validate).Message);
    }

    [Fact]
    public void A_one_second_lease_gets_a_margin_and_renewal_that_fit_it()
    {
        var leadership = ClusterNode.LeadershipOptionsOf(Node(c => c with { LeaseTtlMs = 1_000 }));
        Assert.Null(leadership.Problem());
        Assert.Equal(500, leadership.FenceMarginMs);
        Assert.Equal(250, leadership.RenewIntervalMs);
    }
}
