using System.Diagnostics;
using System.Net;
using Switch.Cluster;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Cluster;
using Switch.Host.Configuration;
using Switch.Host.Tests.Admin;
using Switch.Host.Tests.Crash;
using Switch.Host.Tests.EndToEnd;

namespace Switch.Host.Tests.Failover;

/// <summary>
/// One failover run: a real etcd (a child process on free loopback ports, its own directory), the banks in the test
/// process (their ledgers outlive both nodes), and two switch nodes of one cluster as real processes (Switch.Host.dll,
/// configured by <see cref="ClusterLayout.Node"/>). The client (<see cref="RecordedClient"/>: the crash tests' record,
/// load and checks) talks to whichever node serves; the primary is the node whose calls are not refused NOT_PRIMARY.
/// Everything random comes from one seed (printed; SWITCH_CRASH_SEED replays its choices, not the machine's timing).
/// </summary>
internal sealed class FailoverRun : IAsyncDisposable
{
    public const int LeaseTtlMs = 2_000;
    private const string ClusterName = "failover";
    public static readonly IReadOnlyList<string> NodeNames = ["a", "b"];
    /// <summary>etcd's ports in its own namespace (nothing else listens there).</summary>
    private const int EtcdClientPort = 2379, EtcdPeerPort = 2380;
    /// <summary>Every wait on a node's start, an election or a catch-up is bounded by this (a loaded 2-core machine).</summary>
    public const int NodeWaitMs = 120_000;
    private const int ProbeTimeoutMs = 5_000;
    private const int ProbePauseMs = 20;
    private const int LastLines = 60;

    private readonly string _root = Path.Combine(Path.GetTempPath(), "switch-failover-" + Guid.NewGuid().ToString("N"));
    private EtcdServer? _etcd;
    private EtcdLeadership? _reader;
    private readonly List<FailoverNode> _nodes = new();
    private readonly List<long> _rtoMs = new();

    private readonly Action<string> _output;

    private FailoverRun(RecordedClient client, Action<string> output)
    {
        Client = client;
        _output = output;
        Directory.CreateDirectory(_root);
    }

    public RecordedClient Client { get; }
    public IReadOnlyList<FailoverNode> Nodes => _nodes;
    public EtcdServer Etcd => _etcd!;
    /// <summary>The node that last served (set by <see cref="WaitForPrimaryAsync"/>).</summary>
    public FailoverNode? Primary { get; private set; }
    /// <summary>Each failover's time from the SIGKILL of the primary to the first order answered final by the other node.</summary>
    public IReadOnlyList<long> RtoMs => _rtoMs;
    public int Kills { get; private set; }

    /// <summary>etcd, the banks, and two nodes' configurations (not started) in <paramref name="durability"/> mode.</summary>
    /// <param name="output">Where each node's last log lines go when the run ends (what a failure needs).</param>
    /// <param name="onStandbyLost">cluster.onStandbyLost: what a synchronous primary does without its standby.</param>
    /// <param name="snapshots">When the nodes take snapshots (default: the configuration's; only a standby takes scheduled ones).</param>
    /// <param name="network">null: everything on loopback. Else etcd and each node run in their namespaces of it (node
    /// names <see cref="NodeNames"/>), the nodes advertising their cluster address; the banks and the client reach them
    /// over its service links.</param>
    public static async Task<FailoverRun> CreateAsync(int seed, Action<string> output, string durability = ClusterConfig.DurabilitySynchronous,
        string onStandbyLost = ClusterConfig.StandbyLostDegrade, SnapshotsConfig? snapshots = null, PartitionNetwork? network = null)
    {
        var run = new FailoverRun(await RecordedClient.CreateAsync(seed, snapshots, bankAddress: network?.ServiceAddress), output);
        try
        {
            string etcdRoot = Path.Combine(run._root, "etcd");
            run._etcd = network is null
                ? await EtcdServer.StartAsync(root: etcdRoot)
                : await EtcdServer.StartAsync(root: etcdRoot, clientPort: EtcdClientPort, peerPort: EtcdPeerPort,
                    host: network.ClusterAddressOf(PartitionNetwork.EtcdMember), launchPrefix: network.Exec(PartitionNetwork.EtcdMember));
            foreach (string name in NodeNames)
            {
                HostConfig config = ClusterLayout.Node(run.Client.Config, run.Client.Config.Switch.Banks, name, EtcdServer.FreePort(),
                    Path.Combine(run._root, "node-" + name), [run._etcd.ClientUrl], ClusterName,
                    c => c with
                    {
                        Durability = durability, OnStandbyLost = onStandbyLost, LeaseTtlMs = LeaseTtlMs, ReplicationPort = EtcdServer.FreePort(),
                        AdvertisedHost = network?.ClusterAddressOf(name),
                    });
                // Cluster nodes advertise fixed ports: each its own free one (ClusterLayout's +1, +2 may be taken).
                config = config with { AdminPort = EtcdServer.FreePort(), AdminGrpcPort = EtcdServer.FreePort() };
                // In its namespace a node listens on both its links: the cluster one (replication) and the service one.
                if (network is not null) config = config with { ListenAddress = IPAddress.Any.ToString() };
                string file = Path.Combine(run._root, $"node-{name}.json");
                await File.WriteAllTextAsync(file, ClusterLayout.ToJson(config));
                run._nodes.Add(new FailoverNode(name, config, file, network?.ServiceAddressOf(name) ?? IPAddress.Loopback.ToString(), network?.Exec(name) ?? []));
            }
            // Reads the in-sync record with a node's view of the cluster; it never campaigns.
            run._reader = new EtcdLeadership(ClusterNode.LeadershipOptionsOf(run._nodes[0].Config) with { NodeName = "failover-test" });
            return run;
        }
        catch
        {
            await run.DisposeAsync();
            throw;
        }
    }

    public FailoverNode Other(FailoverNode node) => _nodes.Single(n => n != node);

    /// <summary>
    /// Waits until one running node serves: its operator calls are not refused NOT_PRIMARY and it reaches every bank.
    /// Then the client sends to it and settles what the last failover left open (acknowledged orders resent: each must
    /// come back as the same outcome; unanswered ones resolved).
    /// </summary>
    public async Task<FailoverNode> WaitForPrimaryAsync()
    {
        FailoverNode? serving = null;
        await AdminClient.WaitUntilAsync(async () =>
        {
            foreach (FailoverNode node in _nodes.Where(n => n.IsRunning))
            {
                if (await node.ServesAsync()) { serving = node; return true; }
            }
            Assert.True(_nodes.Any(n => n.IsRunning), "no node is running");
            return false;
        }, "a node serving as the primary", NodeWaitMs);
        Primary = serving!;
        Client.Connect(serving!.Institution, serving.AdminGrpc);
        await Client.WaitForBanksAsync($"the primary, node {serving.Name}, reaching every bank");
        await Client.SettleAsync();
        return serving;
    }

    /// <summary>Waits until the primary names <paramref name="standby"/> in sync in etcd: it holds every acknowledged
    /// payment (the primary publishes that once it is attached, synchronous, and owes nothing).</summary>
    public Task WaitForInSyncAsync(FailoverNode standby) => AdminClient.WaitUntilAsync(async () =>
    {
        Assert.True(standby.IsRunning, $"node {standby.Name} died: {standby.LastWords()}");
        InSyncRecord? record;
        try
        {
            record = await _reader!.ReadInSyncAsync(CancellationToken.None);
        }
        catch (LeadershipException)
        {
            return false; // etcd busy: look again
        }
        return record is { } r && r.Primary == Primary!.Name && r.Standby == standby.Name;
    }, $"node {standby.Name} in sync with the primary, node {Primary!.Name} (the in-sync record in etcd)", NodeWaitMs);

    /// <summary>
    /// SIGKILL of the primary (the load running); the client abandons the load; then a new order is offered to the
    /// other node again and again until one is answered final: the failover's RTO, recorded. Returns the killed node.
    /// </summary>
    public async Task<FailoverNode> KillPrimaryAsync()
    {
        FailoverNode killed = Primary!;
        var sinceKill = Stopwatch.StartNew();
        await killed.KillAsync();
        Kills++;
        Primary = null;
        await Client.AbandonAsync();
        await ProbeUntilServedAsync(Other(killed), sinceKill, "the kill");
        _rtoMs.Add(sinceKill.ElapsedMilliseconds);
        return killed;
    }

    /// <summary>A new order offered to <paramref name="node"/> again and again until one is answered final (bounded
    /// from <paramref name="since"/>, the moment of <paramref name="what"/>).</summary>
    public async Task ProbeUntilServedAsync(FailoverNode node, Stopwatch since, string what)
    {
        using GrpcChannel channel = GrpcChannel.ForAddress(node.Institution);
        while (!await Client.TryOrderAsync(channel, ProbeTimeoutMs))
        {
            Assert.True(since.ElapsedMilliseconds < NodeWaitMs, $"node {node.Name} did not serve within {NodeWaitMs} ms of {what}: {node.LastWords()}");
            Assert.True(node.IsRunning, $"node {node.Name} died: {node.LastWords()}");
            await Task.Delay(ProbePauseMs);
        }
    }

    /// <summary>The RTOs in ms: count, min, median, max.</summary>
    public string RtoSummary()
    {
        if (_rtoMs.Count == 0) return "no failovers";
        long[] sorted = [.. _rtoMs.Order()];
        return $"{sorted.Length} failovers, RTO (SIGKILL of the primary to the first order answered final by the new one): " +
            $"min {sorted[0]} ms, median {sorted[sorted.Length / 2]} ms, max {sorted[^1]} ms; each: {string.Join(", ", _rtoMs)}";
    }

    /// <summary>Both nodes stopped (SIGTERM; their last lines to the output), etcd stopped, the banks stopped, the
    /// directory removed.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (FailoverNode node in _nodes)
        {
            await node.DisposeAsync();
            _output($"node {node.Name}, start {node.Starts}, last lines:\n{node.LastWords(LastLines)}");
        }
        await Client.DisposeAsync();
        if (_reader is not null) await _reader.DisposeAsync();
        if (_etcd is not null) await _etcd.DisposeAsync();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }
}

/// <summary>One node of the run: its configuration (fixed ports, its data directory) and its current process, reached
/// at <paramref name="host"/> and started through <paramref name="launchPrefix"/> (its network namespace, if any).</summary>
internal sealed class FailoverNode(string name, HostConfig config, string configFile, string host, IReadOnlyList<string> launchPrefix) : IAsyncDisposable
{
    public string Name { get; } = name;
    public HostConfig Config { get; } = config;
    public SwitchProcess? Process { get; private set; }
    public int Starts { get; private set; }
    public Uri Institution { get; } = new($"http://{host}:{config.InstitutionPort}");
    public Uri AdminGrpc { get; } = new($"http://{host}:{config.AdminGrpcPort}");
    public bool IsRunning => Process is { HasExited: false };

    public void Start()
    {
        Assert.False(IsRunning, $"node {Name} is running");
        Process?.Dispose();
        // SwitchProcess asks for ports 0 (any); a cluster node advertises its own in etcd, so the last word sets them.
        Process = SwitchProcess.Start(launchPrefix, Config.DataDirectory, new Dictionary<string, string>(), "--config", configFile, "--port", Config.InstitutionPort.ToString(),
            "--admin-port", Config.AdminPort.ToString(), "--admin-grpc-port", Config.AdminGrpcPort.ToString());
        Starts++;
    }

    /// <summary>SIGTERM, then waits for the exit: a graceful stop (a primary resigns its key).</summary>
    public async Task TerminateAsync()
    {
        int exit = await Process!.TerminateAsync();
        Assert.True(exit == 0, $"node {Name} exited {exit} after SIGTERM: {LastWords()}");
    }

    /// <summary>SIGSTOP: the process stands still, its timers too, until <see cref="Thaw"/>.</summary>
    public void Freeze() => Assert.True(Process!.Stop(true), $"node {Name} could not be stopped (SIGSTOP)");

    /// <summary>SIGCONT: timers that fell due meanwhile fire at once.</summary>
    public void Thaw() => Assert.True(Process!.Stop(false), $"node {Name} could not be continued (SIGCONT)");

    /// <summary>SIGKILL: no handler runs, nothing is flushed.</summary>
    public async Task KillAsync()
    {
        int exit = await Process!.KillAsync();
        Assert.Equal(137, exit); // 128 + SIGKILL
    }

    /// <summary>True when this node answers an operator call (it is the primary) and reaches every bank; false when it
    /// refuses NOT_PRIMARY or is not listening.</summary>
    public async Task<bool> ServesAsync()
    {
        using GrpcChannel admin = GrpcChannel.ForAddress(AdminGrpc);
        try
        {
            ListBanksReply banks = await admin.UnaryAsync(AdminMethods.ListBanks, new ListBanksRequest(), AdminClient.As(AdminClient.ViewerKey, 5_000));
            return banks.Banks.All(b => b.Endpoints.All(e => e.TakesTraffic));
        }
        catch (Exception e) when (e is RpcException or IOException or HttpRequestException)
        {
            return false;
        }
    }

    /// <summary>A gauge from this node's /metrics (Prometheus text, admin HTTP port), read now.</summary>
    public async Task<long> MetricAsync(string name)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        string text = await http.GetStringAsync($"http://{host}:{Config.AdminPort}/metrics");
        string line = text.Split('\n').SingleOrDefault(l => l.StartsWith(name + " ", StringComparison.Ordinal))
            ?? throw new Xunit.Sdk.XunitException($"node {Name}'s /metrics has no {name}");
        return (long)double.Parse(line[(name.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>This process's log records of one event, standard output and error (alerts and errors go there) in
    /// that order; lines that are not records are skipped.</summary>
    public List<LogRecord> Logged(string eventName)
    {
        if (Process is null) return [];
        string[] errors;
        lock (Process.Errors) errors = [.. Process.Errors];
        return Process.OutputSnapshot().Concat(errors).Select(LogRecord.TryParse).Where(r => r?.Event == eventName).Select(r => r!).ToList();
    }

    public async Task WaitForLogAsync(string eventName, Func<LogRecord, bool>? match = null)
    {
        try
        {
            await AdminClient.WaitUntilAsync(() =>
            {
                Assert.True(IsRunning, $"node {Name} died: {LastWords()}");
                return Task.FromResult(Logged(eventName).Any(r => match?.Invoke(r) ?? true));
            }, $"node {Name} logging {eventName}", FailoverRun.NodeWaitMs);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}; its last words:\n{LastWords()}", e);
        }
    }

    public string LastWords(int lines = 30)
    {
        if (Process is null) return "(never started)";
        lock (Process.Errors) return string.Join("\n", Process.OutputSnapshot().TakeLast(lines).Concat(Process.Errors.TakeLast(lines)));
    }

    /// <summary>SIGTERM (a node stops gracefully), then the process is gone.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Process is null) return;
        if (!Process.HasExited)
        {
            try { await Process.TerminateAsync(); } catch (OperationCanceledException) { }
        }
        Process.Dispose();
    }
}
