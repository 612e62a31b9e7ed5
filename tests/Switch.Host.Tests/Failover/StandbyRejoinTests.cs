using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Configuration;
using Switch.Host.Tests.Admin;
using Switch.Host.Tests.Crash;
using Switch.Host.Tests.Reliability;
using Xunit.Abstractions;

namespace Switch.Host.Tests.Failover;

/// <summary>
/// Issue 14's "kill the standby under load; it rejoins and catches up (from a snapshot when it is far behind)", over
/// real processes and a real etcd: the standby takes scheduled snapshots, is SIGKILLed, stays down while the primary
/// journals many thousands of records, and is restarted. Its log must say it started from its newest snapshot (not a
/// whole replay), how much of its own journal it replayed and how many records it then streamed; the primary names it
/// in sync (synchronous) or it acknowledges the whole journal (asynchronous); at rest both nodes show the same state
/// hash at the same record (GetNodeStatus, as `switchctl cluster --state-hash` asks); then every RecordedClient check.
/// </summary>
public sealed class StandbyRejoinTests(ITestOutputHelper output)
{
    private const string Area = "failover";
    /// <summary>The standby snapshots every this many events: several before the kill, none covering the gap.</summary>
    private const long SnapshotEveryEvents = 2_000;
    /// <summary>Records the primary journals while the standby is down: "far behind".</summary>
    private const long RecordsWhileDown = 10_000;
    private const int AcknowledgedAfterRejoin = 40;
    private const int StatusTimeoutMs = 10_000;

    [Theory]
    [InlineData(ClusterConfig.DurabilitySynchronous)]
    [InlineData(ClusterConfig.DurabilityAsynchronous)]
    public async Task A_standby_killed_and_left_far_behind_rejoins_from_its_snapshot_streams_the_gap_and_matches_the_primarys_state(string durability)
    {
        int seed = CrashRun.ChooseSeed();
        output.WriteLine($"standby rejoin test seed {seed} (replay: {CrashRun.SeedVariable}={seed}), durability {durability}");
        var snapshots = new SnapshotsConfig { EveryEvents = SnapshotEveryEvents, EveryMinutes = 0, AtBatchClose = false, AtStop = true, Keep = 2 };
        await using FailoverRun run = await FailoverRun.CreateAsync(seed, output.WriteLine, durability, ClusterConfig.StandbyLostDegrade, snapshots);
        FailoverNode primary = await FailoverTests.StartPairAsync(run);
        FailoverNode standby = run.Other(primary);

        // Load until the standby has published a snapshot (only it takes scheduled ones), then a little more.
        await standby.WaitForLogAsync("snapshot_taken");
        await FailoverTests.WaitForLoadAsync(run, primary);
        Assert.Empty(primary.Logged("snapshot_taken"));
        await standby.KillAsync();
        long newestSnapshot = standby.Logged("snapshot_taken").Max(r => long.Parse(r["position"]!));

        // The primary goes on alone (asynchronous, or degraded after the standby's acknowledgement timeout).
        long journalAtKill = (await StatusAsync(primary)).JournalRecords;
        await AdminClient.WaitUntilAsync(async () =>
        {
            Assert.True(primary.IsRunning, $"the primary died: {primary.LastWords()}");
            return (await StatusAsync(primary)).JournalRecords >= journalAtKill + RecordsWhileDown;
        }, $"the primary journaling {RecordsWhileDown} records with the standby down", FailoverRun.NodeWaitMs);
        long journalAtRestart = (await StatusAsync(primary)).JournalRecords;

        standby.Start();
        await standby.WaitForLogAsync("role_standby");
        await standby.WaitForLogAsync("caught_up");
        await FailoverTests.WaitCaughtUpAsync(run, primary, standby);

        // Started from its own newest snapshot (at or after the last one it said it published), then its journal's tail.
        LogRecord recovered = standby.Logged("recovery_snapshot").Single();
        output.WriteLine($"standby restart: {recovered.Message}");
        Assert.NotEqual("none", recovered["snapshot"]);
        long position = long.Parse(recovered["position"]!);
        long replayed = long.Parse(recovered["records_replayed"]!);
        long ownJournal = long.Parse(recovered["journal_records"]!);
        Assert.InRange(position, newestSnapshot, ownJournal - 1);
        Assert.Equal(ownJournal - 1 - position, replayed);
        Assert.True(long.Parse(recovered["snapshot_age_s"]!) >= 0);
        // Then it streamed the gap from the primary, from where its own journal ended.
        LogRecord caughtUp = standby.Logged("caught_up").First();
        output.WriteLine($"standby caught up: {caughtUp.Message} in {caughtUp["elapsed_ms"]} ms");
        Assert.Equal(ownJournal, long.Parse(caughtUp["from_record"]!));
        long streamed = long.Parse(caughtUp["records_streamed"]!);
        Assert.True(streamed >= journalAtRestart - ownJournal, $"streamed {streamed} records; the primary held {journalAtRestart}, the standby {ownJournal}");
        Assert.True(journalAtRestart - ownJournal >= RecordsWhileDown, $"the standby was only {journalAtRestart - ownJournal} records behind");
        // Not a whole replay: the snapshot saved it replaying the records before it.
        Assert.True(position > 0 && replayed < ownJournal - 1);

        // At rest, both nodes at the same record show the same state hash.
        await run.Client.StopLoadAsync();
        (NodeStatus onPrimary, NodeStatus onStandby) = await SameRecordAsync(primary, standby);
        output.WriteLine($"at rest: primary {onPrimary.StateHash} at {onPrimary.StateHashRecords} records, standby {onStandby.StateHash} at {onStandby.StateHashRecords}");
        Assert.Equal(onPrimary.StateHash, onStandby.StateHash);
        Assert.Equal(onPrimary.Term, onStandby.Term);
        // What an operator sees: switchctl cluster --state-hash, a row per node, each with its hash at its record.
        Operator.CtlRun ctl = await Operator.OperatorTestKit.RawAsync(["--admin", $"{primary.AdminGrpc},{standby.AdminGrpc}",
            "--key", Operator.OperatorTestKit.ViewerKey, "cluster", "--state-hash"]);
        output.WriteLine(ctl.Out);
        Assert.True(ctl.ExitCode == 0, ctl.ToString());
        Assert.Equal(2, System.Text.RegularExpressions.Regex.Matches(ctl.Out, @"\b[0-9a-f]{16} \(\d+\)").Count);

        // The load goes on, then every check.
        run.Client.StartLoad();
        await run.Client.WaitForAcknowledgedAsync(AcknowledgedAfterRejoin, () => !primary.IsRunning);
        await run.Client.StopLoadAsync();
        await run.Client.VerifyAsync();
        Assert.Single(primary.Logged("took_office"));
        Assert.Empty(standby.Logged("took_office"));
        output.WriteLine(CrashSafetyTests.Orders(run.Client));

        // A graceful stop of the primary: the standby's log says precisely why its stream ended (the primary's journal
        // closed under the stream: once an unexplained "exception was thrown by handler").
        await primary.TerminateAsync();
        await standby.WaitForLogAsync("follow_interrupted");
        Assert.All(standby.Logged("follow_interrupted"), r => Assert.DoesNotContain("thrown by handler", r["error"]));
        if (durability == ClusterConfig.DurabilitySynchronous) await standby.WaitForLogAsync("took_office"); // in sync: it may lead
        ReliabilityReport.Record(Area, $"SIGKILL of the standby, left {journalAtRestart - ownJournal} records behind ({durability})",
            $"the standby restarted from its snapshot at record {position} ({replayed} journal records replayed locally), streamed {streamed} records " +
            $"in {caughtUp["elapsed_ms"]} ms, then showed the primary's state hash at record {onPrimary.StateHashRecords}; " + CrashSafetyTests.Orders(run.Client),
            CrashSafetyTests.Held);
    }

    /// <summary>Both nodes' status with their state hash, once they answer at the same record count (the pair at rest:
    /// the primary may still journal a due tick, so look again until they agree on the record).</summary>
    private static async Task<(NodeStatus Primary, NodeStatus Standby)> SameRecordAsync(FailoverNode primary, FailoverNode standby)
    {
        NodeStatus? p = null, s = null;
        await AdminClient.WaitUntilAsync(async () =>
        {
            p = await StatusAsync(primary, stateHash: true);
            s = await StatusAsync(standby, stateHash: true);
            Assert.Equal("", p.StateHashError);
            Assert.Equal("", s.StateHashError);
            return p.StateHashRecords == s.StateHashRecords && p.StateHashRecords == p.JournalRecords;
        }, "the primary and the standby at rest at the same record", FailoverRun.NodeWaitMs);
        return (p!, s!);
    }

    private static async Task<NodeStatus> StatusAsync(FailoverNode node, bool stateHash = false)
    {
        using GrpcChannel admin = GrpcChannel.ForAddress(node.AdminGrpc);
        return await admin.UnaryAsync(AdminMethods.GetNodeStatus, new NodeStatusRequest { StateHash = stateHash }, AdminClient.As(AdminClient.ViewerKey, StatusTimeoutMs));
    }
}
