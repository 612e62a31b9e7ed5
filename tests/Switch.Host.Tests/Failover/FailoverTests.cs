using Switch.Cluster;
using Switch.Host.Configuration;
using Switch.Host.Tests.Crash;
using Switch.Host.Tests.Reliability;
using Xunit.Abstractions;

namespace Switch.Host.Tests.Failover;

/// <summary>
/// The hot standby's failover over real processes and a real etcd (issue 14): the primary killed again and again
/// under load, the standby killed under load in each durability mode, etcd paused under the primary. Each test prints
/// its seed (SWITCH_CRASH_SEED=N replays its choices); the checks are <see cref="RecordedClient.VerifyAsync"/>'s:
/// every acknowledged outcome survives on the new primary, no order executes twice at a bank, every institution's feed
/// is contiguous with nothing repeated, the settlement nets to zero. Timings are printed, never asserted.
/// </summary>
public sealed class FailoverTests(ITestOutputHelper output)
{
    private const string Area = "failover";
    private const int Failovers = 10;
    private const int AcknowledgedBeforeKill = 40;   // real load before every kill
    private const int MaxKillDelayMs = 1_000;        // the kill falls at a seeded instant within this after that load

    [Fact]
    public async Task Sigkill_of_the_primary_under_load_fails_over_ten_times_and_loses_nothing_acknowledged()
    {
        await using FailoverRun run = await CreateAsync(ClusterConfig.DurabilitySynchronous);
        FailoverNode primary = await StartPairAsync(run);
        for (int k = 0; k < Failovers; k++)
        {
            await WaitForLoadAsync(run, primary);
            await Task.Delay(run.Client.Next(0, MaxKillDelayMs));
            FailoverNode killed = await run.KillPrimaryAsync();

            // The other node takes the leader key, finishes applying, serves, and holds every acknowledged outcome
            // (the settling resends a sample of them: each must come back the same).
            FailoverNode next = await run.WaitForPrimaryAsync();
            Assert.Equal(run.Other(killed), next);
            Assert.NotEmpty(next.Logged("took_office"));
            output.WriteLine($"failover {k + 1}: node {killed.Name} killed, node {next.Name} served after {run.RtoMs[^1]} ms");

            // The killed node, restarted under load, rejoins as a standby and catches up before the next kill.
            run.Client.StartLoad();
            killed.Start();
            await killed.WaitForLogAsync("role_standby");
            await run.WaitForInSyncAsync(killed);
            Assert.NotEmpty(killed.Logged("following"));
            Assert.Empty(killed.Logged("took_office"));
            primary = next;
        }
        await FinishAsync(run);

        Assert.Equal(Failovers, run.Kills);
        Assert.Equal(Failovers, run.RtoMs.Count);
        output.WriteLine(run.RtoSummary());
        ReliabilityReport.Record(Area, "SIGKILL of the primary under load, roles alternating",
            $"{run.Kills} SIGKILLs of the primary, each followed by the standby taking over and the killed node rejoining as standby; " +
            CrashSafetyTests.Orders(run.Client) + "; " + run.RtoSummary(),
            CrashSafetyTests.Held);
    }

    [Theory]
    [InlineData(ClusterConfig.DurabilitySynchronous, ClusterConfig.StandbyLostDegrade)]
    [InlineData(ClusterConfig.DurabilitySynchronous, ClusterConfig.StandbyLostWait)]
    [InlineData(ClusterConfig.DurabilityAsynchronous, ClusterConfig.StandbyLostDegrade)]
    public async Task Sigkill_of_the_standby_under_load_it_rejoins_and_catches_up_and_the_load_goes_on(string durability, string onStandbyLost)
    {
        await using FailoverRun run = await CreateAsync(durability, onStandbyLost);
        FailoverNode primary = await StartPairAsync(run);
        FailoverNode standby = run.Other(primary);
        const int kills = 2;
        for (int k = 0; k < kills; k++)
        {
            await WaitForLoadAsync(run, primary);
            await Task.Delay(run.Client.Next(0, MaxKillDelayMs));
            await standby.KillAsync();
            if (onStandbyLost == ClusterConfig.StandbyLostDegrade)
            {
                // Asynchronous, or degraded after the standby's acknowledgement timeout: the primary acknowledges alone.
                await run.Client.WaitForAcknowledgedAsync(run.Client.AcknowledgedThisEra + AcknowledgedBeforeKill, () => !primary.IsRunning);
            }
            else
            {
                // Synchronous, waiting: once the answers already on the wire are in, nothing is acknowledged alone.
                await Task.Delay(primary.Config.Cluster!.StandbyAckTimeoutMs + 1_000);
                int answered = run.Client.Acknowledged;
                await Task.Delay(2_000);
                Assert.Equal(answered, run.Client.Acknowledged);
            }
            standby.Start();
            await standby.WaitForLogAsync("role_standby");
            await standby.WaitForLogAsync("following");
            await WaitCaughtUpAsync(run, primary, standby);
            // The load goes on (in synchronous mode it waited for the standby, acknowledging nothing alone).
            await run.Client.WaitForAcknowledgedAsync(run.Client.AcknowledgedThisEra + AcknowledgedBeforeKill, () => !primary.IsRunning);
            Assert.True(primary.IsRunning, $"the primary died: {primary.LastWords()}");
            await run.Client.StopLoadAsync();
            run.Client.StartLoad();
        }
        await FinishAsync(run);

        // The primary never changed: one node took office, once.
        Assert.Single(primary.Logged("took_office"));
        Assert.Empty(standby.Logged("took_office"));
        ReliabilityReport.Record(Area, $"SIGKILL of the standby under load ({durability}, {onStandbyLost} without it)",
            $"{kills} SIGKILLs of the standby, each restarted to rejoin and catch up; " + CrashSafetyTests.Orders(run.Client),
            CrashSafetyTests.Held);
    }

    [Fact]
    public async Task Etcd_paused_the_primary_fences_itself_within_the_lease_and_service_returns_with_etcd()
    {
        await using FailoverRun run = await CreateAsync(ClusterConfig.DurabilitySynchronous);
        FailoverNode primary = await StartPairAsync(run);
        await WaitForLoadAsync(run, primary);

        DateTime pausedAt = DateTime.UtcNow;
        run.Etcd.Pause();
        await primary.WaitForLogAsync("fenced");
        LogRecord fenced = primary.Logged("fenced")[0];
        output.WriteLine($"etcd paused at {pausedAt:HH:mm:ss.fff}; the primary, node {primary.Name}, fenced at {fenced.Time:HH:mm:ss.fff} ({fenced["code"]})");
        // The lease was last renewed before the pause: the fence must fall before it could expire at etcd.
        Assert.True(fenced.Time <= pausedAt.AddMilliseconds(FailoverRun.LeaseTtlMs),
            $"fenced at {fenced.Time:HH:mm:ss.fff}, after the lease ({FailoverRun.LeaseTtlMs} ms) renewed before {pausedAt:HH:mm:ss.fff} could expire");
        Assert.Equal(LeadershipCodes.EtcdUnavailable, fenced["code"]);

        // While etcd stays away nothing is acknowledged by either node (answers already on the wire arrive first).
        await Task.Delay(1_000);
        int answered = run.Client.Acknowledged;
        await Task.Delay(3_000);
        Assert.Equal(answered, run.Client.Acknowledged);
        Assert.All(run.Nodes, n => Assert.False(n.Logged("took_office").Count > (n == primary ? 1 : 0), $"node {n.Name} took office while etcd was paused"));
        await run.Client.AbandonAsync();

        run.Etcd.Resume();
        FailoverNode next = await run.WaitForPrimaryAsync();
        output.WriteLine($"etcd resumed: node {next.Name} serves");
        run.Client.StartLoad();
        await run.WaitForInSyncAsync(run.Other(next));
        await FinishAsync(run);
        ReliabilityReport.Record(Area, "etcd paused under the primary",
            $"etcd SIGSTOPped under load for over 4 s, then resumed; the primary fenced itself ({fenced["code"]}) " +
            $"{(fenced.Time - pausedAt).TotalMilliseconds:F0} ms after the pause; node {next.Name} served after; " + CrashSafetyTests.Orders(run.Client),
            CrashSafetyTests.Held + "; nothing was acknowledged while etcd was away");
    }

    private Task<FailoverRun> CreateAsync(string durability, string onStandbyLost = ClusterConfig.StandbyLostDegrade) =>
        CreateAsync(output.WriteLine, durability, onStandbyLost, network: null);

    /// <summary>A run with a seed of its own (printed), on <paramref name="network"/> or loopback.</summary>
    internal static async Task<FailoverRun> CreateAsync(Action<string> output, string durability, string onStandbyLost, PartitionNetwork? network)
    {
        int seed = CrashRun.ChooseSeed();
        output($"failover test seed {seed} (replay: {CrashRun.SeedVariable}={seed}), durability {durability}, {onStandbyLost} without a standby");
        return await FailoverRun.CreateAsync(seed, output, durability, onStandbyLost, network: network);
    }

    /// <summary>Both nodes started; waits for the primary, starts the load, then waits for the standby to be in sync
    /// (or caught up, asynchronous). A primary names its standby in sync as it acknowledges: under load.</summary>
    internal static async Task<FailoverNode> StartPairAsync(FailoverRun run)
    {
        foreach (FailoverNode node in run.Nodes) node.Start();
        FailoverNode primary = await run.WaitForPrimaryAsync();
        run.Client.StartLoad();
        FailoverNode standby = run.Other(primary);
        await standby.WaitForLogAsync("following");
        await WaitCaughtUpAsync(run, primary, standby);
        return primary;
    }

    /// <summary>Synchronous: the in-sync record names the standby. Asynchronous (never named in sync): the standby has
    /// acknowledged every record the primary's journal held when this began (its metrics: acknowledged + lag).</summary>
    internal static async Task WaitCaughtUpAsync(FailoverRun run, FailoverNode primary, FailoverNode standby)
    {
        if (primary.Config.Cluster!.Durability == ClusterConfig.DurabilitySynchronous)
        {
            await run.WaitForInSyncAsync(standby);
            return;
        }
        long journalRecords = await primary.MetricAsync("switch_replication_acknowledged_records") + await primary.MetricAsync("switch_replication_lag_records");
        Assert.True(journalRecords > 0, "the primary's journal is empty");
        await Admin.AdminClient.WaitUntilAsync(async () => await primary.MetricAsync("switch_replication_acknowledged_records") >= journalRecords,
            $"node {standby.Name} acknowledging the primary's first {journalRecords} journal records", FailoverRun.NodeWaitMs);
    }

    /// <summary>The load (running) until real work is done on the primary.</summary>
    internal static async Task WaitForLoadAsync(FailoverRun run, FailoverNode primary)
    {
        await run.Client.WaitForAcknowledgedAsync(run.Client.AcknowledgedThisEra + AcknowledgedBeforeKill, () => !primary.IsRunning);
        Assert.True(primary.IsRunning, $"the primary died under load: {primary.LastWords()}");
    }

    /// <summary>The last stretch: real load (running), a graceful end of it, then every check on the primary.</summary>
    private Task FinishAsync(FailoverRun run) => FinishAsync(run, output.WriteLine);

    internal static async Task FinishAsync(FailoverRun run, Action<string> output)
    {
        await WaitForLoadAsync(run, run.Primary!);
        await run.Client.StopLoadAsync();
        await run.Client.VerifyAsync();
        output(CrashSafetyTests.Orders(run.Client));
    }
}
