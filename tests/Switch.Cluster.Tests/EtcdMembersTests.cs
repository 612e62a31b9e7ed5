using Xunit.Abstractions;

namespace Switch.Cluster.Tests;

/// <summary>An etcd of three members, as production runs it: one member hung costs the leader nothing.</summary>
public sealed class EtcdMembersTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_hung_etcd_member_of_three_costs_the_leader_nothing_its_renewals_move_to_another_member()
    {
        await using var etcd = await EtcdServer.StartAsync(members: 3);
        var raftLeader = await etcd.RaftLeaderAsync();
        // The node knows only the two followers: its keepalive stream is on one of them, and each is hung in turn.
        var followers = Enumerable.Range(0, 3).Where(i => i != raftLeader).ToArray();
        var cluster = Nodes.UniqueCluster("members");
        // A 4 s lease: a renewal unanswered for 500 ms moves to another member, which then has 3 s to answer before the
        // fence; on a loaded machine (the whole suite at once) a 2 s lease left too little of that to the other member.
        var options = Nodes.Options(etcd.ClientUrl, cluster, "a", leaseTtlMs: 4_000) with { Endpoints = followers.Select(i => etcd.ClientUrls[i]).ToArray() };
        await using var a = new EtcdLeadership(options);
        var fenced = Nodes.FirstFence(a);
        var term = await a.CampaignAsync(CancellationToken.None).WaitAsync(Nodes.Patience);

        foreach (var hung in followers)
        {
            etcd.Pause(hung);
            try
            {
                await Task.Delay(2 * options.LeaseTtlMs);
            }
            finally
            {
                etcd.Resume(hung);
            }
            output.WriteLine($"member {hung} hung for {2 * options.LeaseTtlMs} ms: a may act {a.MayAct}");
            if (fenced.Task.IsCompleted) Assert.Fail($"fenced while member {hung} of 3 was hung: {await fenced.Task}");
            Assert.True(a.MayAct);
            await Task.Delay(500);
        }
        Assert.Equal(term, a.Term);
    }
}
