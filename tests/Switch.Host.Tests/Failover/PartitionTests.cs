using System.Diagnostics;
using Switch.Cluster;
using Switch.Host.Configuration;
using Switch.Host.Tests.Crash;
using Switch.Host.Tests.Reliability;
using Xunit.Abstractions;

namespace Switch.Host.Tests.Failover;

/// <summary>
/// The hot standby under a network partition (issue 14), as root with network namespaces the test makes
/// (<see cref="PartitionNetwork"/>): etcd and each node in their own, joined by a cluster network; the banks and the
/// client in the test process, reaching each node over its own service link, so the test still watches a node cut off
/// from the cluster. Each acknowledged answer is recorded with its receipt time and the node that gave it: at no moment
/// do two nodes acknowledge. The end checks are <see cref="RecordedClient.VerifyAsync"/>'s. Timings are printed, never
/// asserted.
/// </summary>
public sealed class PartitionTests(ITestOutputHelper output)
{
    private const string Area = "failover";
    private const int AcknowledgedAfterCut = 40; // real load served by the node left in office

    [Fact]
    public async Task Partition_of_the_primary_it_fences_before_the_standby_takes_office_and_rejoins_as_standby_when_healed()
    {
        await using PartitionNetwork network = await PartitionNetwork.CreateAsync(FailoverRun.NodeNames, output.WriteLine);
        await using FailoverRun run = await FailoverTests.CreateAsync(output.WriteLine, ClusterConfig.DurabilitySynchronous, ClusterConfig.StandbyLostDegrade, network);
        FailoverNode primary = await StartUnderLoadAsync(run);
        FailoverNode standby = run.Other(primary);

        // Cut under load; the load goes on against the old primary while the standby is offered new orders, so an
        // acknowledgement from either, at any moment, is in the record.
        // The cut is down by the time `ip` returns (which may take a while on a loaded machine): the timings count from
        // then, so an acknowledgement of the old primary received after it was surely sent after the cut.
        var cutBegun = Moment.Now();
        await network.CutAsync(primary.Name);
        var cut = Moment.Now();
        await run.ProbeUntilServedAsync(standby, cutBegun.Since, "the cut");
        await primary.WaitForLogAsync("fenced");
        await run.Client.AbandonAsync();
        LogRecord fenced = primary.Logged("fenced")[0];
        Assert.Contains(fenced["code"], new[] { LeadershipCodes.EtcdUnavailable, LeadershipCodes.LeaseExpired });
        Assert.False(string.IsNullOrEmpty(fenced["reason"]), $"the fence says no reason: {fenced.Message}");
        // The lease was last renewed before the cut: the fence must fall (and be logged) before it could expire at etcd.
        Assert.True(fenced.Time <= cut.Utc.AddMilliseconds(FailoverRun.LeaseTtlMs),
            $"fenced at {fenced.Time:HH:mm:ss.ffffff}, after the lease ({FailoverRun.LeaseTtlMs} ms) renewed before the cut at {cut.Utc:HH:mm:ss.ffffff} could expire");

        (Acknowledgement oldLast, Acknowledgement newFirst) = AssertOneAcknowledgerAtATime(run, [primary, standby]);
        FailoverNode next = await run.WaitForPrimaryAsync();
        Assert.Equal(standby, next);
        Assert.Single(standby.Logged("took_office"));
        DateTime newFirstAt = cut.At(newFirst.ReceivedTimestamp);
        Assert.True(fenced.Time < newFirstAt, $"node {primary.Name} fenced at {fenced.Time:HH:mm:ss.ffffff}, after node {standby.Name}'s first acknowledgement at {newFirstAt:HH:mm:ss.ffffff}");
        string timings = $"cut at {cut.Utc:HH:mm:ss.fff} (`ip` took {(cut.Utc - cutBegun.Utc).TotalMilliseconds:F0} ms); the old primary's last acknowledgement received at {cut.MsTo(oldLast.ReceivedTimestamp):+0;-0} ms from the cut, " +
            $"its fence ({fenced["code"]}) at {(fenced.Time - cut.Utc).TotalMilliseconds:+0;-0} ms, the new primary's first acknowledgement at {cut.MsTo(newFirst.ReceivedTimestamp):+0;-0} ms";
        output.WriteLine(timings);

        // Healed under load: the old primary finds the new one in etcd, cuts the tail it journaled alone, follows and
        // catches up until the new primary names it in sync.
        run.Client.StartLoad();
        var healed = Moment.Now();
        await network.HealAsync(primary.Name);
        await primary.WaitForLogAsync("following", r => r.Time >= healed.Utc);
        await run.WaitForInSyncAsync(primary);
        // The new primary's verdict: TRUNCATE when the old one journaled records after the last it sent (the tail is cut
        // and logged), RESUME when it had sent everything; never a rebuild.
        LogRecord handshake = next.Logged("standby_handshake").Last(r => r["node"] == primary.Name && r.Time >= healed.Utc);
        Assert.Empty(primary.Logged("standby_rebuilt"));
        string rejoined;
        if (handshake["verdict"] == "Truncate")
        {
            LogRecord tailCut = primary.Logged("journal_tail_cut").Single();
            Assert.True(long.Parse(tailCut["cut_records"]!) > 0, $"a tail cut of no records: {tailCut.Message}");
            rejoined = $"cut {tailCut["cut_records"]} journal records it alone held (kept {tailCut["kept_records"]})";
        }
        else
        {
            Assert.True(handshake["verdict"] == "Resume", $"node {next.Name} answered node {primary.Name}'s handshake {handshake["verdict"]}: {handshake.Message}");
            Assert.Empty(primary.Logged("journal_tail_cut"));
            rejoined = "had no tail to cut (it sent everything it journaled)";
        }
        output.WriteLine($"healed: node {primary.Name} {rejoined}, follows and is in sync with node {next.Name}");
        Assert.Single(primary.Logged("took_office")); // its first term only

        await FailoverTests.FinishAsync(run, output.WriteLine);
        AssertOneAcknowledgerAtATime(run, [primary, standby]);
        ReliabilityReport.Record(Area, "partition of the primary under load (network namespaces: its cluster link down, its clients kept)",
            $"{timings}; healed, the old primary {rejoined}, rejoined as standby and was named in sync; " +
            CrashSafetyTests.Orders(run.Client),
            CrashSafetyTests.Held + "; no acknowledgement of the old primary was received after the new primary's first");
    }

    [Fact]
    public async Task Partition_of_the_standby_the_synchronous_primary_degrades_and_serves_and_the_standby_resyncs_when_healed()
    {
        await using PartitionNetwork network = await PartitionNetwork.CreateAsync(FailoverRun.NodeNames, output.WriteLine);
        await using FailoverRun run = await FailoverTests.CreateAsync(output.WriteLine, ClusterConfig.DurabilitySynchronous, ClusterConfig.StandbyLostDegrade, network);
        FailoverNode primary = await StartUnderLoadAsync(run);
        FailoverNode standby = run.Other(primary);

        var cut = Moment.Now();
        await network.CutAsync(standby.Name);
        await primary.WaitForLogAsync("replication_degraded", r => r.Time >= cut.Utc);
        LogRecord degraded = primary.Logged("replication_degraded").Last();
        Assert.Equal("alert", degraded.Level);
        // It serves alone: real load acknowledged after the alert.
        await run.Client.WaitForAcknowledgedAsync(run.Client.AcknowledgedThisEra + AcknowledgedAfterCut, () => !primary.IsRunning);
        Assert.True(primary.IsRunning, $"the primary died: {primary.LastWords()}");
        // In etcd the primary said it acknowledges alone before it did: no standby lacking those payments may lead.
        Assert.Contains(primary.Logged("in_sync_published"), r => r.Time >= cut.Utc && r.Time <= degraded.Time && r["standby"] == "");
        // The cut lasts past two leases, so the standby's view of etcd lapses too: it must not campaign.
        await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(0, 2 * FailoverRun.LeaseTtlMs - cut.Since.ElapsedMilliseconds)));
        Assert.Empty(standby.Logged("took_office"));
        string timings = $"cut at {cut.Utc:HH:mm:ss.fff}; the primary degraded {(degraded.Time - cut.Utc).TotalMilliseconds:F0} ms after; healed after {cut.Since.ElapsedMilliseconds} ms";
        output.WriteLine(timings);

        // Healed under load: the standby's stream resumes (or it follows again), it catches up, the primary is
        // synchronous again and names it in sync.
        var healed = Moment.Now();
        await network.HealAsync(standby.Name);
        await primary.WaitForLogAsync("replication_resynchronised", r => r.Time >= healed.Utc);
        await primary.WaitForLogAsync("in_sync_published", r => r.Time >= healed.Utc && r["standby"] == standby.Name);
        await run.WaitForInSyncAsync(standby);
        output.WriteLine($"healed: node {standby.Name} is in sync again, {healed.Since.ElapsedMilliseconds} ms after the link came up");

        await FailoverTests.FinishAsync(run, output.WriteLine);
        Assert.Single(primary.Logged("took_office"));
        Assert.Empty(standby.Logged("took_office"));
        AssertOneAcknowledgerAtATime(run, [primary]);
        ReliabilityReport.Record(Area, "partition of the standby under load (synchronous, degrade without it)",
            $"{timings}; it served alone, and healed, the standby followed again and was named in sync; " + CrashSafetyTests.Orders(run.Client),
            CrashSafetyTests.Held + "; one node acknowledged throughout");
    }

    /// <summary>The pair started, the standby in sync, real load acknowledged: the primary.</summary>
    private static async Task<FailoverNode> StartUnderLoadAsync(FailoverRun run)
    {
        FailoverNode primary = await FailoverTests.StartPairAsync(run);
        await FailoverTests.WaitForLoadAsync(run, primary);
        return primary;
    }

    /// <summary>
    /// The acknowledgements by receipt time: each of <paramref name="inTurn"/> gave one unbroken stretch of them, in that
    /// order, and nobody else any (two nodes acknowledging at once would interleave). Returns the last of the first
    /// node and the first of the second (default when only one node acknowledged).
    /// </summary>
    private static (Acknowledgement Last, Acknowledgement First) AssertOneAcknowledgerAtATime(FailoverRun run, IReadOnlyList<FailoverNode> inTurn)
    {
        List<Acknowledgement> acks = run.Client.Acknowledgements().OrderBy(a => a.ReceivedTimestamp).ToList();
        var stretches = new List<(Uri Node, int Count, Acknowledgement First, Acknowledgement Last)>();
        foreach (Acknowledgement ack in acks)
        {
            if (stretches.Count > 0 && stretches[^1].Node == ack.Node) stretches[^1] = stretches[^1] with { Count = stretches[^1].Count + 1, Last = ack };
            else stretches.Add((ack.Node, 1, ack, ack));
        }
        string said = string.Join("; ", stretches.Select(s => $"{s.Count} from {s.Node} ({s.First.OrderNo} .. {s.Last.OrderNo})"));
        Assert.True(stretches.Select(s => s.Node).SequenceEqual(inTurn.Select(n => n.Institution)),
            $"acknowledgements by receipt time, expected one stretch from each of {string.Join(", ", inTurn.Select(n => n.Institution))} in turn: {said}");
        return stretches.Count > 1 ? (stretches[0].Last, stretches[1].First) : default;
    }

    /// <summary>A moment of the test on both clocks of this machine: the wall clock (the nodes' logs) and the
    /// stopwatch (the client's receipt times).</summary>
    private readonly record struct Moment(DateTime Utc, long Timestamp, Stopwatch Since)
    {
        public static Moment Now() => new(DateTime.UtcNow, Stopwatch.GetTimestamp(), Stopwatch.StartNew());
        public DateTime At(long timestamp) => Utc + Stopwatch.GetElapsedTime(Timestamp, timestamp);
        public double MsTo(long timestamp) => Stopwatch.GetElapsedTime(Timestamp, timestamp).TotalMilliseconds;
    }
}
