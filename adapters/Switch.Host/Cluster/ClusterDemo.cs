using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Switch.BankSim;
using Switch.Cluster;
using Switch.Engine.Business;
using Switch.Host.Configuration;

namespace Switch.Host.Cluster;

/// <summary>
/// <c>switch cluster-demo [--dir DIR] [--lease-ttl-ms MS] [--durability synchronous|asynchronous]</c>: etcd, the demo configuration's banks (simulated, in this process, so their
/// books outlive either node), and two switch nodes as child processes of this one (a primary and a hot standby,
/// whichever wins etcd first), all on loopback. Ctrl-C stops them. For trying failover by hand: kill the primary's
/// process and watch the standby take over (README "Hot standby").
/// </summary>
internal static class ClusterDemo
{
    public const string Command = "cluster-demo";
    private const int EtcdClientPort = 2379;
    private const int EtcdPeerPort = 2380;
    private static readonly (string Node, int BasePort)[] Nodes = [("a", 7001), ("b", 7011)];

    public static async Task<int> RunAsync(string[] args, Log log)
    {
        string directory = "./cluster-demo";
        int leaseTtlMs = new ClusterConfig().LeaseTtlMs;
        string durability = ClusterConfig.DurabilitySynchronous;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--dir" && i + 1 < args.Length) directory = args[++i];
            else if (args[i] == "--lease-ttl-ms" && i + 1 < args.Length && int.TryParse(args[i + 1], out leaseTtlMs)) i++;
            else if (args[i] == "--durability" && i + 1 < args.Length) durability = args[++i];
            else
            {
                log.Error("usage", $"usage: switch {Command} [--dir DIR] [--lease-ttl-ms MS] [--durability synchronous|asynchronous]; unknown or incomplete '{args[i]}'");
                return 2;
            }
        }
        directory = Path.GetFullPath(directory);
        Directory.CreateDirectory(directory);
        using var stop = new CancellationTokenSource();
        using PosixSignalRegistration term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        using PosixSignalRegistration interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });

        await using EtcdServer etcd = await EtcdServer.StartAsync(root: Path.Combine(directory, "etcd"), clientPort: EtcdClientPort, peerPort: EtcdPeerPort);
        log.Info("etcd_started", "etcd for the demo cluster", ("address", etcd.ClientUrl), ("data", Path.Combine(directory, "etcd")));
        HostConfig demo = HostConfig.EmbeddedDefault();
        List<BankSimulatorServer> banks = await StartBanksAsync(demo);
        var children = new List<Process>();
        var supervision = new List<Task>();
        try
        {
            IReadOnlyList<BankConfig> bankConfigs = ClusterLayout.WithAddresses(demo.Switch.Banks, banks.Select(b => b.Address).ToList());
            foreach ((string node, int basePort) in Nodes)
            {
                HostConfig config = ClusterLayout.Node(demo, bankConfigs, node, basePort, Path.Combine(directory, "node-" + node), [etcd.ClientUrl], "demo",
                    c => c with { LeaseTtlMs = leaseTtlMs, Durability = durability });
                try
                {
                    config.Validate(); // a bad --lease-ttl-ms or --durability is said here, before a node starts
                }
                catch (ConfigException e)
                {
                    log.Error("config_refused", e.Message);
                    return 2;
                }
                string file = Path.Combine(directory, $"node-{node}.json");
                await File.WriteAllTextAsync(file, ClusterLayout.ToJson(config), stop.Token);
                supervision.Add(SuperviseAsync(node, file, children, log, stop.Token));
                log.Info("node_started", $"node {node}", ("institution", $"http://127.0.0.1:{basePort}"),
                    ("admin_http", $"http://127.0.0.1:{basePort + 1}"), ("admin_grpc", $"http://127.0.0.1:{basePort + 2}"),
                    ("replication", $"http://127.0.0.1:{basePort + 3}"), ("config", file));
            }
            foreach (var (code, key) in demo.DemoApiKeys)
                log.Info("demo_credentials", "demo configuration: a published test key", ("institution", code), ("header", "x-api-key"), ("key", key));
            foreach (var (id, key) in demo.DemoOperatorKeys)
                log.Info("demo_credentials", "demo configuration: a published test key", ("operator", id), ("header", "x-operator-key"), ("key", key));
            log.Info("running", "Ctrl-C stops the nodes, the banks and etcd; `switchctl cluster --admin http://127.0.0.1:7003,http://127.0.0.1:7013` shows the roles");
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException)
            {
            }
        }
        finally
        {
            Process[] running;
            lock (children) running = children.ToArray();
            foreach (Process child in running) ClusterLayout.Terminate(child);
            foreach (Process child in running)
            {
                if (!child.WaitForExit(30_000)) child.Kill();
            }
            await Task.WhenAll(supervision);
            foreach (BankSimulatorServer bank in banks) await bank.DisposeAsync();
        }
        return 0;
    }

    /// <summary>Each bank's endpoints share one set of books, as in the single switch's simulated banks.</summary>
    private static async Task<List<BankSimulatorServer>> StartBanksAsync(HostConfig demo)
    {
        SimulatedBanksConfig sim = demo.SimulatedBanks!;
        var servers = new List<BankSimulatorServer>();
        for (int b = 0; b < demo.Switch.Banks.Count; b++)
        {
            BankConfig bank = demo.Switch.Banks[b];
            var books = new BankLedger(new BankSimulatorOptions().MaxLedgerEntries);
            for (int e = 0; e < bank.Endpoints.Count; e++)
            {
                servers.Add(await BankSimulatorServer.StartAsync(sim.EndpointOptions(b, e, bank.Code), ledger: books));
            }
        }
        return servers;
    }

    /// <summary>Runs a node and starts it again a second after it dies (as a service manager would), so a node killed by
    /// hand comes back as the standby; until <paramref name="stop"/>.</summary>
    private static async Task SuperviseAsync(string node, string configFile, List<Process> children, Log log, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            Process process = StartNode(node, configFile);
            lock (children) children.Add(process);
            await process.WaitForExitAsync(CancellationToken.None);
            lock (children) children.Remove(process);
            int exit = process.ExitCode;
            process.Dispose();
            if (stop.IsCancellationRequested) return;
            log.Warn("node_exited", $"node {node} exited; starting it again in 1 s", ("node", node), ("exit_code", exit));
            try { await Task.Delay(1_000, stop); } catch (OperationCanceledException) { return; }
        }
    }

    /// <summary>This same program, as a child, on the node's configuration; its lines come out prefixed with its name.</summary>
    private static Process StartNode(string node, string configFile)
    {
        ProcessStartInfo start = ClusterLayout.SelfStart();
        start.ArgumentList.Add("--config");
        start.ArgumentList.Add(configFile);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        var process = Process.Start(start) ?? throw new InvalidOperationException($"node {node} did not start");
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) Console.Out.WriteLine($"[{node}] {e.Data}"); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine($"[{node}] {e.Data}"); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }
}

/// <summary>How a node of a loopback cluster is configured from the demo configuration: the demo command and the
/// cluster tests build their nodes the same way.</summary>
public static class ClusterLayout
{
    /// <summary>The banks with their endpoints' addresses, in the configuration's order of banks then endpoints.</summary>
    public static IReadOnlyList<BankConfig> WithAddresses(IReadOnlyList<BankConfig> banks, IReadOnlyList<Uri> addresses)
    {
        int next = 0;
        var result = new List<BankConfig>(banks.Count);
        foreach (BankConfig bank in banks)
        {
            result.Add(bank with { Endpoints = bank.Endpoints.Select(e => e with { Address = addresses[next++].ToString().TrimEnd('/') }).ToList() });
        }
        if (next != addresses.Count) throw new ArgumentException($"{addresses.Count} addresses for {next} endpoints", nameof(addresses));
        return result;
    }

    /// <summary>Node <paramref name="node"/>: institution port <paramref name="basePort"/>, admin HTTP +1, admin gRPC +2,
    /// replication +3 (0: all four on any free port).</summary>
    public static HostConfig Node(HostConfig baseConfig, IReadOnlyList<BankConfig> banks, string node, int basePort, string dataDirectory,
        IReadOnlyList<string> etcd, string clusterName, Func<ClusterConfig, ClusterConfig>? cluster = null)
    {
        var clusterConfig = new ClusterConfig
        {
            Node = node,
            Name = clusterName,
            Etcd = etcd,
            ReplicationPort = basePort == 0 ? 0 : basePort + 3,
        };
        return baseConfig with
        {
            InstitutionPort = basePort,
            AdminPort = basePort == 0 ? 0 : basePort + 1,
            AdminGrpcPort = basePort == 0 ? 0 : basePort + 2,
            DataDirectory = dataDirectory,
            SimulatedBanks = null,
            Switch = baseConfig.Switch with { Banks = banks.ToList() },
            Cluster = cluster is null ? clusterConfig : cluster(clusterConfig),
        };
    }

    public static string ToJson(HostConfig config) =>
        JsonSerializer.Serialize(config, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, WriteIndented = true });

    /// <summary>A start of this program (the apphost, or `dotnet Switch.Host.dll`).</summary>
    public static ProcessStartInfo SelfStart()
    {
        string path = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell this program's path");
        var start = new ProcessStartInfo(path) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(path) == "dotnet") start.ArgumentList.Add(typeof(ClusterLayout).Assembly.Location);
        return start;
    }

    /// <summary>SIGTERM: the node stops gracefully (resigns its leadership, so the other takes over at once).</summary>
    public static void Terminate(Process process)
    {
        if (!process.HasExited) _ = Kill(process.Id, 15);
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
