namespace Switch.Cluster.Tests;

/// <summary>The in-sync record (who holds every acknowledged payment) against a real etcd: only the leader of the term
/// writes it, a deposed one cannot, and only a node it names may campaign.</summary>
public sealed class InSyncRecordTests(SharedEtcd shared) : IClassFixture<SharedEtcd>
{
    EtcdServer Etcd => shared.Server;

    [Fact]
    public void Only_the_nodes_the_record_names_may_campaign_and_anyone_in_a_new_cluster()
    {
        Assert.True(InSyncRecord.MayCampaign(null, "c"));
        var alone = new InSyncRecord("a", "", 7);
        Assert.True(InSyncRecord.MayCampaign(alone, "a"));
        Assert.False(InSyncRecord.MayCampaign(alone, "b"));
        Assert.False(InSyncRecord.MayCampaign(alone, ""));
        var pair = new InSyncRecord("a", "b", 7);
        Assert.True(InSyncRecord.MayCampaign(pair, "b"));
        Assert.False(InSyncRecord.MayCampaign(pair, "c"));
    }

    [Fact]
    public async Task The_leader_writes_it_and_a_deposed_leader_cannot()
    {
        var cluster = Nodes.UniqueCluster("insync");
        await using var a = new EtcdLeadership(Nodes.Options(Etcd.ClientUrl, cluster, "a"));
        await using var b = new EtcdLeadership(Nodes.Options(Etcd.ClientUrl, cluster, "b"));
        Assert.Null(await a.ReadInSyncAsync(CancellationToken.None));
        Assert.False(await a.PublishInSyncAsync("b", CancellationToken.None)); // not leading: nothing written

        long termA = await a.CampaignAsync(CancellationToken.None).WaitAsync(Nodes.Patience);
        Assert.True(await a.PublishInSyncAsync("b", CancellationToken.None));
        Assert.Equal(new InSyncRecord("a", "b", termA), await b.ReadInSyncAsync(CancellationToken.None));

        // a resigns; b takes the key: a's term is over, and its write must not land.
        await a.ResignAsync(CancellationToken.None);
        long termB = await b.CampaignAsync(CancellationToken.None).WaitAsync(Nodes.Patience);
        Assert.True(termB > termA);
        Assert.True(await b.PublishInSyncAsync("", CancellationToken.None));
        Assert.False(await a.PublishInSyncAsync("a", CancellationToken.None));
        Assert.Equal(new InSyncRecord("b", "", termB), await a.ReadInSyncAsync(CancellationToken.None));
    }

    [Fact]
    public async Task A_value_that_is_not_an_in_sync_record_is_refused_with_its_reason()
    {
        var cluster = Nodes.UniqueCluster("insync-bad");
        var options = Nodes.Options(Etcd.ClientUrl, cluster, "a");
        await Nodes.PutAsync(Etcd, InSyncRecord.KeyOf(options), "{\"kind\":\"something.else\"}");
        await using var a = new EtcdLeadership(options);
        var e = await Assert.ThrowsAsync<LeadershipException>(() => a.ReadInSyncAsync(CancellationToken.None));
        Assert.Equal(LeadershipCodes.LeaderValueMalformed, e.Code);
        Assert.Contains("in-sync", e.Message);
    }
}
