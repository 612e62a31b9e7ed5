namespace Switch.Cluster.Tests;

public sealed class OptionsTests
{
    static readonly LeadershipOptions Good = Nodes.Options("http://127.0.0.1:2379", "c", "a");

    [Fact]
    public void The_defaults_with_a_node_and_its_addresses_are_valid() => Assert.Null(Good.Problem());

    public static TheoryData<LeadershipOptions, string> Bad() => new()
    {
        { Good with { Endpoints = [] }, "cluster.etcdEndpoints" },
        { Good with { Endpoints = ["127.0.0.1:2379"] }, "cluster.etcdEndpoints" },
        { Good with { ClusterName = "a/b" }, "cluster.name" },
        { Good with { NodeName = "" }, "cluster.nodeName" },
        { Good with { AdvertisedAddress = "host" }, "cluster.advertisedAddress" },
        { Good with { AdvertisedAdminAddress = "host:99999" }, "cluster.advertisedAdminAddress" },
        { Good with { ReplicationAddress = "" }, "cluster.replicationAddress" },
        { Good with { LeaseTtlMs = 1_500 }, "cluster.leaseTtlMs" },
        { Good with { LeaseTtlMs = 120_000 }, "cluster.leaseTtlMs" },
        { Good with { FenceMarginMs = 1_500 }, "cluster.fenceMarginMs" },
        { Good with { FenceMarginMs = 0 }, "cluster.fenceMarginMs" },
        { Good with { RenewIntervalMs = 800 }, "cluster.renewIntervalMs" },
        { Good with { EtcdTimeoutMs = 0 }, "cluster.etcdTimeoutMs" },
    };

    [Theory]
    [MemberData(nameof(Bad))]
    public void Each_key_out_of_range_is_named(LeadershipOptions options, string key)
    {
        Assert.Equal(key, options.Problem()?.Field);
        var e = Assert.Throws<LeadershipException>(() => new EtcdLeadership(options));
        Assert.StartsWith($"CONFIG_INVALID: {key}: ", e.Message);
    }

    [Fact]
    public void A_record_survives_its_json()
    {
        var record = LeaderRecord.Of(Good);
        Assert.Equal(record, LeaderRecord.Parse(record.ToUtf8Json(), Good.LeaderKey));
    }
}
