using System.Diagnostics;
using Xunit.Abstractions;

namespace Switch.Cluster.Tests;

/// <summary>etcd going away under a leader: each test its own etcd, paused (SIGSTOP) or killed.</summary>
public sealed class EtcdOutageTests(ITestOutputHelper output) : IAsyncLifetime
{
    EtcdServer _etcd = null!;

    public async Task InitializeAsync() => _etcd = await EtcdServer.StartAsync();
    public async Task DisposeAsync() => await _etcd.DisposeAsync();

    sealed record FenceSeen(LeadershipFault Fault, long AtTicks, long LastRenewalSentTicks, bool MayActInside);

    static TaskCompletionSource<FenceSeen> WatchFence(EtcdLeadership node)
    {
        var seen = new TaskCompletionSource<FenceSeen>(TaskCreationOptions.RunContinuationsAsynchronously);
        node.Fenced += f => seen.TrySetResult(new FenceSeen(f, Stopwatch.GetTimestamp(), node.LastRenewalSentTicks, node.MayAct));
        return seen;
    }

    /// <summary>Node a leads, node b has seen it.</summary>
    async Task<(EtcdLeadership A, EtcdLeadership B, TaskCompletionSource<FenceSeen> Fenced, long Term)> LeaderAndObserverAsync(string test)
    {
        var cluster = Nodes.UniqueCluster(test);
        var a = new EtcdLeadership(Nodes.Options(_etcd.ClientUrl, cluster, "a"));
        var b = new EtcdLeadership(Nodes.Options(_etcd.ClientUrl, cluster, "b"));
        var fenced = WatchFence(a);
        var term = await a.CampaignAsync(CancellationToken.None).WaitAsync(Nodes.Patience);
        await b.WaitForViewAsync(v => v.Leader?.Term == term, CancellationToken.None).WaitAsync(Nodes.Patience);
        return (a, b, fenced, term);
    }

    [Fact]
    public async Task A_paused_etcd_fences_the_leader_before_its_lease_can_expire_and_a_campaign_works_once_it_is_back()
    {
        var (a, b, fenced, term) = await LeaderAndObserverAsync("paused");
        await using var _ = a;
        await using var __ = b;
        await Task.Delay(1_000);
        Assert.True(a.MayAct);

        _etcd.Pause();
        FenceSeen seen;
        try
        {
            seen = await fenced.Task.WaitAsync(Nodes.Patience);
            // The observer's watch stays open to a silent etcd: its progress probes go unanswered.
            var silent = await b.WaitForViewAsync(v => v.Fault is not null, CancellationToken.None).WaitAsync(Nodes.Patience);
            Assert.Equal(LeadershipCodes.EtcdUnavailable, silent.Fault!.Code);
            await Task.Delay(a.Options.LeaseTtlMs);
            // Still paused, a whole TTL later: the fence holds.
            Assert.False(a.MayAct);
        }
        finally
        {
            _etcd.Resume();
        }

        var sinceRenewalMs = LeaseFence.TicksToMs(seen.AtTicks - seen.LastRenewalSentTicks);
        output.WriteLine($"{seen.Fault} — fenced {sinceRenewalMs:F0} ms after the last answered renewal was sent (TTL {a.Options.LeaseTtlMs} ms)");
        Assert.Equal(LeadershipCodes.EtcdUnavailable, seen.Fault.Code);
        Assert.False(seen.MayActInside);
        // The fencing guarantee: before etcd could have let the lease go (it handled that renewal after it was sent).
        Assert.True(sinceRenewalMs < a.Options.LeaseTtlMs, $"fenced {sinceRenewalMs:F0} ms after the last renewal, not within the TTL");
        Assert.True(sinceRenewalMs >= a.Options.LeaseTtlMs - a.Options.FenceMarginMs - 5, $"fenced {sinceRenewalMs:F0} ms after the last renewal, before its deadline");
        Assert.False(a.MayAct);
        Assert.Equal(term, a.Term);

        var next = await Nodes.CampaignUntilEtcdAnswersAsync(a);
        Assert.True(next > term, $"term {next} after {term}");
        Assert.True(a.MayAct);
    }

    /// <summary>A host that looks at the term's end only after the fence fell (its engine was starting) sees it as surely
    /// as one that listened, and the fenced term writes no in-sync record, with etcd away or back (back, etcd may still
    /// hold the key a moment; the fence, not etcd, says whether this node may act).</summary>
    [Fact]
    public async Task A_term_fenced_before_anyone_looked_still_reports_its_end_and_publishes_no_in_sync_record()
    {
        var (a, b, fenced, term) = await LeaderAndObserverAsync("unseen");
        await using var _ = a;
        await using var __ = b;
        Assert.False(a.TermEnded(term).IsCompleted);

        _etcd.Pause();
        try
        {
            await fenced.Task.WaitAsync(Nodes.Patience);
            var ended = a.TermEnded(term);
            Assert.True(ended.IsCompletedSuccessfully, "the term's end, asked after the fence, is not completed");
            Assert.Equal(LeadershipCodes.EtcdUnavailable, ended.Result.Code);
            // Without asking etcd: a fenced node never waits on it to learn that it may not act.
            Assert.False(await a.PublishInSyncAsync("", CancellationToken.None).WaitAsync(TimeSpan.FromMilliseconds(a.Options.EtcdTimeoutMs / 2)));
        }
        finally
        {
            _etcd.Resume();
        }

        Assert.False(await a.PublishInSyncAsync("", CancellationToken.None));
        Assert.Null(await b.ReadInSyncAsync(CancellationToken.None).WaitAsync(Nodes.Patience));
    }

    [Fact]
    public async Task A_killed_etcd_fences_the_leader_and_after_its_restart_the_other_node_takes_over()
    {
        var (a, b, fenced, term) = await LeaderAndObserverAsync("killed");
        await using var _ = a;
        await using var __ = b;

        await _etcd.StopAsync();
        var seen = await fenced.Task.WaitAsync(Nodes.Patience);
        output.WriteLine(seen.Fault.ToString());
        Assert.Equal(LeadershipCodes.EtcdUnavailable, seen.Fault.Code);
        Assert.Contains("last error", seen.Fault.Message);
        Assert.True(LeaseFence.TicksToMs(seen.AtTicks - seen.LastRenewalSentTicks) < a.Options.LeaseTtlMs);
        Assert.False(a.MayAct);
        var unreachable = await b.WaitForViewAsync(v => v.Fault is not null, CancellationToken.None).WaitAsync(Nodes.Patience);
        Assert.Equal(LeadershipCodes.EtcdUnavailable, unreachable.Fault!.Code);

        await _etcd.RestartAsync();
        // a's lease outlives etcd's restart until its TTL runs out (or a's fence revokes it); then b wins.
        var termB = await Nodes.CampaignUntilEtcdAnswersAsync(b);
        Assert.True(termB > term);
        Assert.True(b.MayAct);
        Assert.False(a.MayAct);
        var view = await a.WaitForViewAsync(v => v.Leader?.Term == termB, CancellationToken.None).WaitAsync(Nodes.Patience);
        Assert.Equal("b", view.Leader!.Record.NodeName);
    }

    [Fact]
    public async Task A_fenced_leader_campaigning_once_etcd_is_back_ends_its_old_lease_rather_than_wait_out_its_ttl()
    {
        // A long TTL, so that waiting it out and ending the lease at once are far apart on a loaded machine.
        var options = Nodes.Options(_etcd.ClientUrl, Nodes.UniqueCluster("comeback"), "a", leaseTtlMs: 8_000) with
        {
            FenceMarginMs = 4_000,
            RenewIntervalMs = 1_000,
        };
        await using var a = new EtcdLeadership(options);
        var fenced = WatchFence(a);
        var term = await a.CampaignAsync(CancellationToken.None).WaitAsync(Nodes.Patience);

        await _etcd.StopAsync();
        Assert.Equal(LeadershipCodes.EtcdUnavailable, (await fenced.Task.WaitAsync(Nodes.Patience)).Fault.Code);
        // etcd restarted gives every lease a whole TTL again: the old key would stand for 8 s more.
        await _etcd.RestartAsync();
        var restartedTicks = Stopwatch.GetTimestamp();
        var next = await Nodes.CampaignUntilEtcdAnswersAsync(a);
        var afterRestartMs = Nodes.MsSince(restartedTicks);

        output.WriteLine($"a won term {next} again {afterRestartMs:F0} ms after etcd's restart (TTL {options.LeaseTtlMs} ms)");
        Assert.True(next > term);
        Assert.True(afterRestartMs < options.LeaseTtlMs, $"won {afterRestartMs:F0} ms after the restart: the old lease ran out, it was not ended");
    }
}
