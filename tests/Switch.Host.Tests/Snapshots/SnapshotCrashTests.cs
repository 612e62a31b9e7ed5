using Switch.Contracts.V1;
using Switch.Host.Configuration;
using Switch.Host.Tests.Crash;
using Switch.Host.Tests.EndToEnd;
using Xunit.Abstractions;

namespace Switch.Host.Tests.Snapshots;

/// <summary>
/// SIGKILL of the real switch process under load right after a snapshot and right before one (snapshots every few
/// hundred events, so a kill at a random instant lands just before the next one, or while it is written): every
/// acknowledged outcome survives, the feeds run 1..n with nothing repeated, the settlement nets (the crash tests' checks).
/// </summary>
public sealed class SnapshotCrashTests(ITestOutputHelper output)
{
    private const int AcknowledgedBeforeKill = 40;

    [Fact]
    public async Task Sigkill_under_load_right_after_and_right_before_a_snapshot_loses_nothing_acknowledged()
    {
        int seed = CrashRun.ChooseSeed();
        output.WriteLine($"crash test seed {seed} (replay: {CrashRun.SeedVariable}={seed})");
        await using CrashRun run = await CrashRun.CreateAsync(seed, snapshots: new SnapshotsConfig { EveryEvents = 300, Keep = 2 });
        await run.StartAsync();

        // Right after: the operator's snapshot is published, and the process dies at once, load still running.
        run.StartLoad();
        await run.WaitForAcknowledgedAsync(AcknowledgedBeforeKill);
        TakeSnapshotReply taken = await run.TakeSnapshotAsync();
        await run.KillAtRandomAsync(minDelayMs: 0, maxDelayMs: 20);
        await run.StartAsync();
        LogRecord recovered = run.Process!.Records().Single(r => r.Event == "recovery_snapshot");
        Assert.NotEqual("none", recovered["snapshot"]);
        Assert.True(long.Parse(recovered["position"]!) >= taken.Position, $"{recovered} after the operator's snapshot at {taken.Position}");

        // Right after one taken by count (every 300 events) under load.
        run.StartLoad();
        await run.WaitForAcknowledgedAsync(AcknowledgedBeforeKill);
        long byCount = 0;
        await Admin.AdminClient.WaitUntilAsync(() =>
        {
            byCount = run.Process!.Records().Where(r => r.Event == "snapshot_taken" && r["trigger"] == "events").Select(r => long.Parse(r["position"]!)).DefaultIfEmpty(0).Max();
            return Task.FromResult(byCount > 0);
        }, "a snapshot taken by count under load", timeoutMs: 120_000);
        await run.KillAtRandomAsync(minDelayMs: 0, maxDelayMs: 20);
        await run.StartAsync();
        recovered = run.Process!.Records().Single(r => r.Event == "recovery_snapshot");
        Assert.True(long.Parse(recovered["position"]!) >= byCount, $"{recovered} after the snapshot by count at {byCount}");

        // Right before (and while one is written: a large one takes a second or more): kills at random instants.
        int kills = run.Next(2, 4);
        for (int k = 0; k < kills; k++)
        {
            await CrashSafetyTests.LoadThenKillAsync(run, maxDelayMs: 1_500);
            await run.StartAsync();
            LogRecord from = run.Process!.Records().Single(r => r.Event == "recovery_snapshot");
            output.WriteLine($"start {k + 3}: from {from["snapshot"]}, {from["events_replayed"]} events replayed after it");
        }
        await CrashSafetyTests.FinishAsync(run, output);
        Assert.Equal(kills + 2, run.Kills);
    }
}
