using System.Diagnostics;
using System.Net;

namespace Switch.Host.Tests.Failover;

/// <summary>
/// The network of a partition test, made with `ip netns` (root) for one run and deleted after it. Two networks:
/// <list type="bullet">
/// <item>The cluster network: a bridge in a hub namespace joining etcd's namespace, each node's namespace (its link
/// "cl") and the test process (so it can read etcd). etcd listens there, and the nodes advertise their address on it:
/// leadership and replication cross it, nothing else does. Cutting a node's "cl" takes etcd and the other node from it.</item>
/// <item>The service network: one point-to-point link per node from the test process, where the banks and the client
/// are. Every link's test end has the same address (<see cref="ServiceAddress"/>), so one bank serves both nodes, and
/// no node reaches another over it: a cut-off node still has its clients and banks, and nothing else.</item>
/// </list>
/// Namespace names carry the test process's id: those of a run whose process is gone (a crashed run) are swept, their
/// processes killed, before a new network is made. A missing `ip` or a process that is not root fails the test.
/// </summary>
internal sealed class PartitionNetwork : IAsyncDisposable
{
    public const string EtcdMember = "etcd";
    private const string NamespacePrefix = "swpart-";
    private const string HubMember = "hub";
    private const string ClusterLink = "cl";
    private const string ServiceLink = "sv";
    private const string Bridge = "bridge0";
    private const int CommandTimeoutMs = 30_000;
    private const int MaxNodes = 8;
    /// <summary>Second octets tried for the run's 10.x.0.0/16 (any not on a link of this machine).</summary>
    private const int FirstOctet = 200, LastOctet = 250;

    private readonly string _run;
    private readonly int _octet;
    private readonly IReadOnlyList<string> _nodes;
    private readonly List<string> _namespaces = new();
    private readonly List<string> _testLinks = new();
    private readonly Action<string> _output;

    private PartitionNetwork(string run, int octet, IReadOnlyList<string> nodes, Action<string> output)
    {
        _run = run;
        _octet = octet;
        _nodes = nodes;
        _output = output;
    }

    /// <summary>The test process's end of every service link: where the banks listen.</summary>
    public IPAddress ServiceAddress => IPAddress.Parse($"10.{_octet}.1.254");

    /// <summary>The address of etcd or a node on the cluster network.</summary>
    public string ClusterAddressOf(string member) => $"10.{_octet}.0.{(member == EtcdMember ? 1 : 2 + IndexOf(member))}";

    /// <summary>A node's end of its service link: the test process reaches it there.</summary>
    public string ServiceAddressOf(string node) => $"10.{_octet}.1.{1 + IndexOf(node)}";

    /// <summary>The command prefix that runs a program in the member's namespace (ip netns exec execs it: same process).</summary>
    public IReadOnlyList<string> Exec(string member) => ["ip", "netns", "exec", NamespaceOf(member)];

    /// <summary>The partition: the node's cluster link down (it keeps its service link).</summary>
    public Task CutAsync(string node) => IpAsync("-n", NamespaceOf(node), "link", "set", ClusterLink, "down");

    /// <summary>The healing: the node's cluster link up again.</summary>
    public Task HealAsync(string node) => IpAsync("-n", NamespaceOf(node), "link", "set", ClusterLink, "up");

    private string NamespaceOf(string member) => $"{NamespacePrefix}{_run}-{member}";

    private int IndexOf(string node)
    {
        int index = _nodes.ToList().IndexOf(node);
        Assert.True(index >= 0, $"no node {node} in this network");
        return index;
    }

    /// <summary>Sweeps what crashed runs left, then makes the namespaces and links for etcd and <paramref name="nodes"/>.</summary>
    public static async Task<PartitionNetwork> CreateAsync(IReadOnlyList<string> nodes, Action<string> output)
    {
        Assert.True(nodes.Count is > 0 and <= MaxNodes, $"1 to {MaxNodes} nodes");
        Assert.True(Environment.IsPrivilegedProcess,
            "the partition tests make network namespaces (ip netns) and need root: run them as root, as CI does");
        try
        {
            await RunAsync("ip", "-V");
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            Assert.Fail($"the partition tests need `ip` (Debian package iproute2): {e.Message}");
        }
        await SweepAsync(output);

        int octet = await FreeOctetAsync();
        string run = $"{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..4]}";
        var network = new PartitionNetwork(run, octet, nodes, output);
        try
        {
            await network.BuildAsync();
            return network;
        }
        catch
        {
            await network.DisposeAsync();
            throw;
        }
    }

    private async Task BuildAsync()
    {
        string hub = NamespaceOf(HubMember);
        await AddNamespaceAsync(hub);
        await IpAsync("-n", hub, "link", "add", "name", Bridge, "type", "bridge");
        await IpAsync("-n", hub, "link", "set", Bridge, "up");

        // The test process on the cluster network: it reads etcd there.
        string testCluster = TestLinkName("c");
        await IpAsync("link", "add", "name", testCluster, "type", "veth", "peer", "name", "p-test", "netns", hub);
        _testLinks.Add(testCluster);
        await PortAsync("p-test");
        await IpAsync("addr", "add", $"10.{_octet}.0.254/24", "dev", testCluster);
        await IpAsync("link", "set", testCluster, "up");

        foreach (string member in _nodes.Prepend(EtcdMember))
        {
            string ns = NamespaceOf(member);
            await AddNamespaceAsync(ns);
            string port = "p-" + member;
            await IpAsync("-n", ns, "link", "add", "name", ClusterLink, "type", "veth", "peer", "name", port, "netns", hub);
            await PortAsync(port);
            await IpAsync("-n", ns, "addr", "add", ClusterAddressOf(member) + "/24", "dev", ClusterLink);
            await IpAsync("-n", ns, "link", "set", ClusterLink, "up");
            if (member == EtcdMember) continue;

            string testService = TestLinkName("s" + IndexOf(member));
            await IpAsync("link", "add", "name", testService, "type", "veth", "peer", "name", ServiceLink, "netns", ns);
            _testLinks.Add(testService);
            await IpAsync("addr", "add", ServiceAddress.ToString(), "peer", ServiceAddressOf(member), "dev", testService);
            await IpAsync("link", "set", testService, "up");
            await IpAsync("-n", ns, "addr", "add", ServiceAddressOf(member), "peer", ServiceAddress.ToString(), "dev", ServiceLink);
            await IpAsync("-n", ns, "link", "set", ServiceLink, "up");
        }
        _output($"partition network {_run}: cluster 10.{_octet}.0.0/24 (etcd {ClusterAddressOf(EtcdMember)}, " +
            string.Join(", ", _nodes.Select(n => $"node {n} {ClusterAddressOf(n)}")) + $"), service links from {ServiceAddress} to " +
            string.Join(", ", _nodes.Select(ServiceAddressOf)));
    }

    /// <summary>A link of the test process's namespace, named for this run (interface names are at most 15 bytes).</summary>
    private string TestLinkName(string role) => $"swp{_run[^4..]}{_octet}{role}";

    private async Task AddNamespaceAsync(string ns)
    {
        await IpAsync("netns", "add", ns);
        _namespaces.Add(ns);
        await IpAsync("-n", ns, "link", "set", "lo", "up");
    }

    private async Task PortAsync(string port)
    {
        string hub = NamespaceOf(HubMember);
        await IpAsync("-n", hub, "link", "set", port, "master", Bridge);
        await IpAsync("-n", hub, "link", "set", port, "up");
    }

    /// <summary>A 10.x.0.0/16 no address of this machine's namespace is in (a crashed run's links may linger a moment).</summary>
    private static async Task<int> FreeOctetAsync()
    {
        string addresses = await RunAsync("ip", "-4", "-o", "addr", "show");
        var taken = addresses.Split('\n').Select(l => System.Text.RegularExpressions.Regex.Match(l, @"inet 10\.(\d+)\."))
            .Where(m => m.Success).Select(m => int.Parse(m.Groups[1].Value)).ToHashSet();
        var free = Enumerable.Range(FirstOctet, LastOctet - FirstOctet + 1).Where(o => !taken.Contains(o)).ToList();
        Assert.True(free.Count > 0, $"every 10.x.0.0/16 from x = {FirstOctet} to {LastOctet} is on a link of this machine");
        return free[Random.Shared.Next(free.Count)];
    }

    /// <summary>Namespaces of runs whose test process is gone: their processes killed, the namespaces deleted (their
    /// links with them).</summary>
    private static async Task SweepAsync(Action<string> output)
    {
        string list = await RunAsync("ip", "netns", "list");
        foreach (string ns in list.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')[0]))
        {
            if (!ns.StartsWith(NamespacePrefix, StringComparison.Ordinal)) continue;
            string owner = ns[NamespacePrefix.Length..].Split('-')[0];
            if (int.TryParse(owner, out int pid) && Directory.Exists($"/proc/{pid}")) continue; // a run still going
            await DeleteNamespaceAsync(ns);
            output($"swept network namespace {ns}, left by a run that is gone");
        }
    }

    /// <summary>Kills what still runs in the namespace (a crashed run's switch or etcd), then deletes it.</summary>
    private static async Task DeleteNamespaceAsync(string ns)
    {
        string pids = await RunAsync("ip", "netns", "pids", ns);
        foreach (string pid in pids.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            try
            {
                using Process process = Process.GetProcessById(int.Parse(pid));
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMilliseconds(CommandTimeoutMs));
            }
            catch (ArgumentException)
            {
                // Gone already.
            }
        }
        await RunAsync("ip", "netns", "delete", ns);
    }

    private static Task<string> IpAsync(params string[] args) => RunAsync("ip", args);

    /// <summary>Runs a command to its end; its standard output, or an exception with its error output.</summary>
    private static async Task<string> RunAsync(string program, params string[] args)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in args) info.ArgumentList.Add(arg);
        using Process process = Process.Start(info) ?? throw new InvalidOperationException($"{program} did not start");
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMilliseconds(CommandTimeoutMs));
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"`{program} {string.Join(' ', args)}` failed ({process.ExitCode}): {(await error).Trim()}");
        return await output;
    }

    /// <summary>The test process's links deleted (their peers go with them), then every namespace, with anything still
    /// running in it. Errors are reported, not thrown: the test's own outcome matters more.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (string link in _testLinks)
        {
            try { await IpAsync("link", "delete", link); }
            catch (InvalidOperationException e) { _output($"partition network: {e.Message}"); }
        }
        foreach (string ns in Enumerable.Reverse(_namespaces))
        {
            try { await DeleteNamespaceAsync(ns); }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException) { _output($"partition network: {e.Message}"); }
        }
    }
}
