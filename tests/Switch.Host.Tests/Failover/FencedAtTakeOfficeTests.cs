using System.Diagnostics;
using Switch.Cluster;
using Switch.Host.Cluster;
using Switch.Host.Tests.Admin;
using Switch.Host.Tests.Crash;
using Xunit.Abstractions;

namespace Switch.Host.Tests.Failover;

/// <summary>
/// A node that wins the leader key but loses etcd before it has written its term's in-sync record (etcd SIGSTOPped the
/// moment the key appears, while the node's engine still starts): that life must end like any fenced one, its engine
/// closed, so that once etcd is back the next life opens the journal and serves. (It used to return with the engine
/// still open: every later life failed on the journal's lock.)
/// </summary>
public sealed class FencedAtTakeOfficeTests(ITestOutputHelper output)
{
    private const int MaxAttempts = 5;

    [Fact]
    public async Task A_node_that_loses_etcd_between_winning_the_key_and_taking_office_starts_again_and_serves()
    {
        await using Watched watched = await RunAndWatcherAsync("fenced-at-take-office");
        (FailoverRun run, EtcdLeadership watcher) = watched;
        FailoverNode node = run.Nodes[0];
        // The engine starts after the win: a pause that falls before the term's in-sync record hits the window. A quick
        // start may beat the pause: then the node is stopped gracefully (it resigns) and started again, a few times.
        bool hit = false;
        for (int attempt = 1; attempt <= MaxAttempts && !hit; attempt++)
        {
            await StartUntilItWinsAsync(node, watcher);
            run.Etcd.Pause();
            hit = node.Logged("in_sync_published").Count == 0;
            output.WriteLine($"attempt {attempt}: etcd paused {(hit ? "before" : "after")} the term's in-sync record");
            if (hit) break;
            run.Etcd.Resume();
            await StopUntilTheKeyIsFreeAsync(node, watcher);
        }
        Assert.True(hit, $"in {MaxAttempts} starts the pause never fell between the win and the in-sync record");
        await Task.Delay(FailoverRun.LeaseTtlMs + 2_000); // the lease lapses, the fence falls
        run.Etcd.Resume();

        await node.WaitForLogAsync("fenced");
        FailoverNode primary = await run.WaitForPrimaryAsync();
        Assert.Same(node, primary);
        Assert.NotEmpty(node.Logged("took_office"));
        output.WriteLine(string.Join("\n", node.Logged("fenced").Select(r => r.Message)));
    }

    /// <summary>
    /// The window pinned: the node frozen (SIGSTOP) the moment it wins the key, and etcd paused, until past its fence
    /// deadline; thawed, its overdue fence falls at once, while it still starts its engine, before its take-office looks.
    /// That life must end at once, logged fenced, without etcd: the fence is the node's own. (It used to miss a fence that
    /// fell before its take-office looked: it published its in-sync record once etcd was back, which still held the key,
    /// and took office with its gate fenced, its logic frozen, for minutes.) Then, etcd back, it wins a new term and serves.
    /// A freeze that falls before the node read etcd's answer to its campaign makes that call time out (it never held the
    /// term), and one after it took office misses the window: it starts again. The last start freezes it only once its
    /// engine starts (its win in hand), which may fall as it writes its in-sync record: the same end is required then.
    /// </summary>
    [Fact]
    public async Task A_node_fenced_while_it_starts_its_engine_ends_that_life_and_never_takes_office_in_that_term()
    {
        await using Watched watched = await RunAndWatcherAsync("fenced-while-starting");
        (FailoverRun run, EtcdLeadership watcher) = watched;
        FailoverNode node = run.Nodes[0];
        long fencedTerm = 0;
        for (int attempt = 1; attempt <= MaxAttempts && fencedTerm == 0; attempt++)
        {
            long term = (await StartUntilItWinsAsync(node, watcher)).Leader!.Term;
            bool atTheWin = attempt < MaxAttempts;
            if (atTheWin) node.Freeze();
            run.Etcd.Pause();
            try
            {
                bool Lost() => node.Logged("campaign_failed").Count > 0;
                var waited = Stopwatch.StartNew();
                while (!atTheWin && node.Logged("role_standby").Count == 0 && !Lost())
                {
                    if (!node.IsRunning || waited.ElapsedMilliseconds > FailoverRun.NodeWaitMs) Assert.Fail($"node {node.Name} never started its engine: {node.LastWords()}");
                    await Task.Delay(1);
                }
                if (!atTheWin) node.Freeze();
                await Task.Delay(FailoverRun.LeaseTtlMs + 1_000); // its deadline passes while it stands still
                // A quick start may have taken office before the watch showed the win (etcd was there): no window then.
                bool quick = node.Logged("in_sync_published").Count > 0;
                node.Thaw();
                if (!quick)
                {
                    await AdminClient.WaitUntilAsync(() => Task.FromResult(Lost() || node.Logged("fenced").Any(r => r["term"] == term.ToString())),
                        $"node {node.Name} logging fenced for term {term}, etcd still away", FailoverRun.NodeWaitMs);
                }
                if (!quick && !Lost())
                {
                    Assert.Empty(node.Logged("in_sync_published"));
                    Assert.Empty(node.Logged("took_office"));
                    fencedTerm = term;
                }
                output.WriteLine($"attempt {attempt}: " + (quick ? "it had taken office before it was frozen: again"
                    : Lost() ? "its campaign's answer came after its timeout: again"
                    : node.Logged("in_sync_not_published").Count == 0 ? $"fenced in term {term} while its engine started" : $"fenced in term {term} as it wrote its in-sync record"));
            }
            finally
            {
                node.Process!.Stop(false); // a failed wait must not leave it stopped
                run.Etcd.Resume();
            }
            if (fencedTerm != 0) break;
            await StopUntilTheKeyIsFreeAsync(node, watcher);
        }
        Assert.True(fencedTerm != 0, $"in {MaxAttempts} starts the node was never frozen between its win and its in-sync record");

        FailoverNode primary = await run.WaitForPrimaryAsync();
        Assert.Same(node, primary);
        List<LogRecord> tookOffice = node.Logged("took_office");
        Assert.NotEmpty(tookOffice);
        Assert.All(tookOffice, r => Assert.True(long.Parse(r["term"]!) > fencedTerm, $"took office in term {r["term"]}, the fenced term is {fencedTerm}"));
        Assert.All(node.Logged("in_sync_published"), r => Assert.NotEqual(fencedTerm.ToString(), r["term"]));
        output.WriteLine(string.Join("\n", node.Logged("fenced").Select(r => $"term {r["term"]} {r["code"]}: {r.Message}")));
    }

    /// <summary>A run and a watcher of its leader key that never campaigns; disposed together.</summary>
    private sealed record Watched(FailoverRun Run, EtcdLeadership Watcher) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Watcher.DisposeAsync();
            await Run.DisposeAsync();
        }
    }

    private async Task<Watched> RunAndWatcherAsync(string test)
    {
        int seed = CrashRun.ChooseSeed();
        output.WriteLine($"{test} test seed {seed}");
        FailoverRun run = await FailoverRun.CreateAsync(seed, output.WriteLine);
        return new Watched(run, new EtcdLeadership(ClusterNode.LeadershipOptionsOf(run.Nodes[0].Config) with { NodeName = "fence-test" }));
    }

    /// <summary>Starts <paramref name="node"/>; the view in which it holds the leader key.</summary>
    private static async Task<LeaderView> StartUntilItWinsAsync(FailoverNode node, EtcdLeadership watcher)
    {
        using var timeout = new CancellationTokenSource(FailoverRun.NodeWaitMs);
        node.Start();
        return await watcher.WaitForViewAsync(v => v.Leader?.Record.NodeName == node.Name, timeout.Token);
    }

    /// <summary>A graceful stop (a primary resigns), then the key is free for the next start.</summary>
    private static async Task StopUntilTheKeyIsFreeAsync(FailoverNode node, EtcdLeadership watcher)
    {
        using var timeout = new CancellationTokenSource(FailoverRun.NodeWaitMs);
        await node.TerminateAsync();
        await watcher.WaitForViewAsync(v => v.Leader is null, timeout.Token);
    }
}
