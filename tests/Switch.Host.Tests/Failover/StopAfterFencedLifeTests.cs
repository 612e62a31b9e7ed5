using System.Diagnostics;
using Switch.Cluster;
using Switch.Host.Cluster;
using Switch.Host.Tests.Admin;
using Switch.Host.Tests.Crash;
using Xunit.Abstractions;

namespace Switch.Host.Tests.Failover;

/// <summary>
/// A graceful stop (SIGTERM) that falls shortly after a node takes office, in the life after a fenced one (etcd paused
/// past the lease, then back): the process must exit, within its stop's own bounds, not hang. It used to hang a minute
/// or more now and then, with no stop snapshot, until the test killed it.
/// </summary>
public sealed class StopAfterFencedLifeTests(ITestOutputHelper output)
{
    private const int Rounds = 6;
    /// <summary>The stop falls at a seeded instant within this after took_office.</summary>
    private const int MaxStopDelayMs = 600;
    /// <summary>A stop that takes longer hangs: the host's own stop bounds (its grace, the engine's drain, the stop
    /// snapshot's and the cluster stop's limits) are all well inside it on a loaded machine.</summary>
    private const int StopBoundMs = 45_000;

    [Fact]
    public async Task A_sigterm_soon_after_taking_office_after_a_fenced_life_stops_the_node()
    {
        int seed = CrashRun.ChooseSeed();
        output.WriteLine($"stop-after-fenced-life test seed {seed} (replay: {CrashRun.SeedVariable}={seed})");
        await using FailoverRun run = await FailoverRun.CreateAsync(seed, output.WriteLine);
        await using var watcher = new EtcdLeadership(ClusterNode.LeadershipOptionsOf(run.Nodes[0].Config) with { NodeName = "stop-test" });
        FailoverNode node = run.Nodes[0];
        long wonTerm = 0;
        for (int round = 1; round <= Rounds; round++)
        {
            // Odd rounds: fenced in office. Even rounds: fenced as it takes office (etcd paused the moment it wins, as the
            // hang was seen: its next life took office with a batch already waiting in the gate for a standby).
            bool atTheWin = round % 2 == 0;
            using (var timeout = new CancellationTokenSource(FailoverRun.NodeWaitMs))
            {
                // The key given up by the last round's stop, as the watch sees it: a view still showing that key would
                // pass for this round's win, and etcd would be paused before this node even campaigned.
                await watcher.WaitForViewAsync(v => v.Fault is null && v.Leader is null, timeout.Token);
                node.Start();
                wonTerm = (await watcher.WaitForViewAsync(v => v.Leader?.Record.NodeName == node.Name && v.Leader.Term > wonTerm, timeout.Token)).Leader!.Term;
            }
            if (!atTheWin) await node.WaitForLogAsync("took_office");
            run.Etcd.Pause();
            try
            {
                await Task.Delay(FailoverRun.LeaseTtlMs + 1_000); // the lease lapses: the term's fence falls
                // Fenced; or, at the win, its campaign's answer came after its timeout (it never held that term).
                await AdminClient.WaitUntilAsync(() => Task.FromResult(node.Logged("fenced").Count > 0 || node.Logged("campaign_failed").Count > 0),
                    $"node {node.Name} fenced, etcd away", FailoverRun.NodeWaitMs);
            }
            finally
            {
                run.Etcd.Resume();
            }
            // The next life wins a new term once the old lease is gone, and takes office.
            await node.WaitForLogAsync("took_office", r => long.Parse(r["term"]!) > wonTerm);
            int delayMs = run.Client.Next(0, MaxStopDelayMs);
            await Task.Delay(delayMs);

            var stopping = Stopwatch.StartNew();
            Assert.True(await node.Process!.SignalAsync("TERM"), $"node {node.Name} could not be sent SIGTERM");
            int exit = -1;
            try
            {
                exit = await node.Process.WaitForExitAsync(StopBoundMs);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"round {round}: node {node.Name} did not stop within {StopBoundMs} ms of SIGTERM ({delayMs} ms after took_office): {node.LastWords(80)}");
            }
            output.WriteLine($"round {round} (fenced {(atTheWin ? "as it took office" : "in office")}): SIGTERM {delayMs} ms after took_office, exited {exit} after {stopping.ElapsedMilliseconds} ms; " +
                $"stop snapshot {(node.Logged("snapshot_taken").Any(r => r.Message.Contains("(stop)")) ? "taken" : "not taken")}; " +
                string.Join("; ", node.Logged("stop_part_abandoned").Select(r => r.Message)));
            Assert.Equal(0, exit);
        }
    }
}
