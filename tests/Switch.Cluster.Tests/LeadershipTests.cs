using System.Diagnostics;
using Etcdserverpb;
using Google.Protobuf;
using Xunit.Abstractions;

namespace Switch.Cluster.Tests;

public sealed class SharedEtcd : IAsyncLifetime
{
    public EtcdServer Server { get; private set; } = null!;
    public async Task InitializeAsync() => Server = await EtcdServer.StartAsync();
    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>Campaign, keepalive, death, resignation and bad keys against one real etcd (each test its own cluster
/// name, so its own leader key).</summary>
public sealed class LeadershipTests(SharedEtcd shared, ITestOutputHelper output) : IClassFixture<SharedEtcd>
{
    EtcdServer Etcd => shared.Server;

    [Fact]
    public async Task One_of_two_candidates_wins_and_keeps_leading_past_the_ttl_while_the_other_observes_it()
    {
        var cluster = Nodes.UniqueCluster("two");
        await using var a = new EtcdLeadership(Nodes.Options(Etcd.ClientUrl, cluster, "a"));
        await using var b = new EtcdLeadership(Nodes.Options(Etcd.ClientUrl, cluster, "b"));
        using var stopLoser = new CancellationTokenSource();
        var faults = new System.Collections.Concurrent.ConcurrentQueue<LeadershipFault>();
        a.LeaderChanged += v => { if (v.Fault is { } f) faults.Enqueue(f); };
        b.LeaderChanged += v => { if (v.Fault is { } f) faults.Enqueue(f); };
        var campaignA = a.CampaignAsync(stopLoser.Token);
        var campaignB = b.CampaignAsync(stopLoser.Token);

        var first = await Task.WhenAny(campaignA, campaignB).WaitAsync(Nodes.Patience);
        var (winner, loser, losing) = first == campaignA ? (a, b, campaignB) : (b, a, campaignA);
        var term = await first;
        Assert.True(term > 0);
        Assert.Equal(term, winner.Term);
        Assert.True(winner.MayAct);
        Assert.False(loser.MayAct);

        var seen = await loser.WaitForViewAsync(v => v.Leader is not null, CancellationToken.None).WaitAsync(Nodes.Patience);
        Assert.Equal(winner.Options.NodeName, seen.Leader!.Record.NodeName);
        Assert.Equal(winner.Options.AdvertisedAddress, seen.Leader.Record.Address);
        Assert.Equal(winner.Options.AdvertisedAdminAddress, seen.Leader.Record.AdminAddress);
        Assert.Equal(winner.Options.ReplicationAddress, seen.Leader.Record.ReplicationAddress);
        Assert.Equal(term, seen.Leader.Term);

        // Twice the TTL later the winner still leads (its renewals work) and the loser still waits.
        await Task.Delay(2 * winner.Options.LeaseTtlMs);
        Assert.True(winner.MayAct);
        Assert.False(losing.IsCompleted);
        Assert.Equal(term, loser.Observed!.Leader!.Term);
        // A healthy etcd answers the watches' progress probes: no node ever saw it as unavailable.
        Assert.Empty(faults);

        await using var late = new EtcdLeadership(Nodes.Options(Etcd.ClientUrl, cluster, "late"));
        var stopped = late.CampaignAsync(CancellationToken.None);
        await late.WaitForViewAsync(v => v.Leader is not null, CancellationToken.None).WaitAsync(Nodes.Patience);
        await late.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => stopped.WaitAsync(Nodes.Patience));

        await stopLoser.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => losing);
    }

    [Fact]
    public async Task A_leader_that_dies_is_replaced_no_sooner_than_its_ttl_after_its_last_renewal_with_a_larger_term()
    {
        var cluster = Nodes.UniqueCluster("dies");
        var a = new EtcdLeadership(Nodes.Options(Etcd.ClientUrl, cluster, "a"));
        await using var b = new EtcdLeadership(Nodes.Options(Etcd.ClientUrl, cluster, "b"));
        var termA = await a.CampaignAsync(CancellationToken.None).WaitAsync(Nodes.Patience);
        var campaignB = b.CampaignAsync(CancellationToken.None);
        await b.WaitForViewAsync(v => v.Leader?.Term == termA, CancellationToken.None).WaitAsync(Nodes.Patience);
        await Task.Delay(1_000);

        // "Dies": renewals stop, nothing is revoked.
        await a.DisposeAsync();
        var lastRenewalSentTicks = a.LastRenewalSentTicks;
        var termB = await campaignB.WaitAsync(Nodes.Patience);
        var sinceRenewalMs = Nodes.MsSince(lastRenewalSentTicks);

        output.WriteLine($"a's last answered renewal → b's win: {sinceRenewalMs:F0} ms (TTL {a.Options.LeaseTtlMs} ms)");
        Assert.True(termB > termA, $"term {termB} after {termA}");
        // etcd handles a renewal after it is sent, so the lease cannot have expired sooner than this.
        Assert.True(sinceRenewalMs >= a.Options.LeaseTtlMs - 5, $"b won {sinceRenewalMs:F0} ms after a's last renewal, within its TTL");
        Assert.True(b.MayAct);
    }

    [Fact]
    public async Task A_leader_that_resigns_is_replaced_at_once_not_after_its_ttl()
    {
        var cluster = Nodes.UniqueCluster("resign");
        const int ttlMs = 10_000;
        await using var a = new EtcdLeadership(Nodes.Options(Etcd.ClientUrl, cluster, "a", ttlMs));
        await using var b = new EtcdLeadership(Nodes.Options(Etcd.ClientUrl, cluster, "b", ttlMs));
        var fenced = Nodes.FirstFence(a);
        var termA = await a.CampaignAsync(CancellationToken.None).WaitAsync(Nodes.Patience);
        var campaignB = b.CampaignAsync(CancellationToken.None);
        await b.WaitForViewAsync(v => v.Leader?.Term == termA, CancellationToken.None).WaitAsync(Nodes.Patience);

        await a.ResignAsync(CancellationToken.None);
        Assert.False(a.MayAct);
        Assert.Equal(LeadershipCodes.Resigned, (await fenced.Task.WaitAsync(Nodes.Patience)).Code);
        var lastRenewalSentTicks = a.LastRenewalSentTicks;
        var termB = await campaignB.WaitAsync(Nodes.Patience);
        var sinceRenewalMs = Nodes.MsSince(lastRenewalSentTicks);

        output.WriteLine($"a's last renewal → b's win after a resigned: {sinceRenewalMs:F0} ms (TTL {ttlMs} ms)");
        Assert.True(termB > termA);
        Assert.True(sinceRenewalMs < ttlMs, $"b won {sinceRenewalMs:F0} ms after a's last renewal: by the TTL, not the resignation");
        Assert.False(a.MayAct);
    }

    [Theory]
    [InlineData("delete the key", new[] { LeadershipCodes.LeaderKeyLost })]
    // Whichever etcd tells first: the renewal answered TTL 0, or the watch saw the key go with the lease.
    [InlineData("revoke the lease", new[] { LeadershipCodes.LeaseExpired, LeadershipCodes.LeaderKeyLost })]
    public async Task A_key_or_lease_taken_away_behind_the_leaders_back_fences_it_at_once(string how, string[] codes)
    {
        var cluster = Nodes.UniqueCluster("behind");
        await using var a = new EtcdLeadership(Nodes.Options(Etcd.ClientUrl, cluster, "a"));
        var fenced = Nodes.FirstFence(a);
        var term = await a.CampaignAsync(CancellationToken.None).WaitAsync(Nodes.Patience);
        var held = await a.WaitForViewAsync(v => v.Leader?.Term == term, CancellationToken.None).WaitAsync(Nodes.Patience);
        Assert.True(a.MayAct);

        using (var client = Nodes.Client(Etcd))
        {
            if (how == "delete the key") await client.DeleteAsync(new DeleteRangeRequest { Key = ByteString.CopyFromUtf8(a.Options.LeaderKey) });
            else await client.LeaseRevokeAsync(new LeaseRevokeRequest { ID = held.Leader!.LeaseId });
        }

        var fault = await fenced.Task.WaitAsync(Nodes.Patience);
        Assert.Contains(fault.Code, codes);
        if (fault.Code == LeadershipCodes.LeaderKeyLost) Assert.Contains(a.Options.LeaderKey, fault.Message);
        Assert.False(a.MayAct);
    }

    [Theory]
    [InlineData("hello", "not JSON")]
    [InlineData("{\"kind\":\"other.v1\",\"node\":\"x\"}", "kind 'other.v1'")]
    [InlineData("{\"kind\":\"switch.leader.v1\",\"node\":\"x\",\"address\":\"x:1\",\"adminAddress\":\"x:2\"}", "no field 'replicationAddress'")]
    [InlineData("{\"kind\":\"switch.leader.v1\",\"node\":\"x\",\"address\":\"nowhere\",\"adminAddress\":\"x:2\",\"replicationAddress\":\"x:3\"}", "address 'nowhere' is not host:port")]
    public async Task A_value_in_the_key_that_is_not_ours_is_refused_with_leader_value_malformed(string value, string why)
    {
        var cluster = Nodes.UniqueCluster("foreign");
        var options = Nodes.Options(Etcd.ClientUrl, cluster, "a");
        await Nodes.PutAsync(Etcd, options.LeaderKey, value);
        await using var a = new EtcdLeadership(options);

        var e = await Assert.ThrowsAsync<LeadershipException>(() => a.CampaignAsync(CancellationToken.None).WaitAsync(Nodes.Patience));
        Assert.Equal(LeadershipCodes.LeaderValueMalformed, e.Code);
        Assert.StartsWith("LEADER_VALUE_MALFORMED: ", e.Message);
        Assert.Contains(options.LeaderKey, e.Message);
        Assert.Contains(why, e.Message);
        Assert.False(a.MayAct);
        var view = await a.WaitForViewAsync(v => v.Fault is not null, CancellationToken.None).WaitAsync(Nodes.Patience);
        Assert.Equal(LeadershipCodes.LeaderValueMalformed, view.Fault!.Code);
        Assert.Null(view.Leader);
    }

    [Fact]
    public async Task Our_record_held_without_a_lease_is_refused_with_leader_key_without_lease()
    {
        var cluster = Nodes.UniqueCluster("nolease");
        var options = Nodes.Options(Etcd.ClientUrl, cluster, "a");
        var other = Nodes.Options(Etcd.ClientUrl, cluster, "b");
        await Nodes.PutAsync(Etcd, options.LeaderKey, System.Text.Encoding.UTF8.GetString(LeaderRecord.Of(other).ToUtf8Json()));
        await using var a = new EtcdLeadership(options);

        var e = await Assert.ThrowsAsync<LeadershipException>(() => a.CampaignAsync(CancellationToken.None).WaitAsync(Nodes.Patience));
        Assert.Equal(LeadershipCodes.LeaderKeyWithoutLease, e.Code);
        Assert.Contains("node 'b'", e.Message);
        Assert.Contains(options.LeaderKey, e.Message);
    }

    [Fact]
    public async Task A_campaign_with_etcd_unreachable_fails_with_etcd_unavailable()
    {
        using var closed = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        closed.Start();
        var url = $"http://127.0.0.1:{((System.Net.IPEndPoint)closed.LocalEndpoint).Port}";
        closed.Stop();
        await using var a = new EtcdLeadership(Nodes.Options(url, Nodes.UniqueCluster("down"), "a"));

        var started = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<LeadershipException>(() => a.CampaignAsync(CancellationToken.None).WaitAsync(Nodes.Patience));
        output.WriteLine($"{e.Message} (after {started.ElapsedMilliseconds} ms)");
        Assert.Equal(LeadershipCodes.EtcdUnavailable, e.Code);
        Assert.Contains(url, e.Message);
        Assert.False(a.MayAct);
    }
}
