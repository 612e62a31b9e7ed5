using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Etcdserverpb;

namespace Switch.Cluster;

/// <summary>A real etcd (the Debian package etcd-server's `etcd`) of one or more members on loopback ports (or one given
/// address, started through a prefix such as `ip netns exec NS`), for the demo pair and the tests, never for production
/// (run etcd as its operators do). A member can be paused (SIGSTOP: its
/// sockets stay open and nothing answers, as a hung or cut-off etcd), resumed, stopped, and the whole of it started
/// again on the same ports and data. A missing binary is an error that names the package, never a silent skip.</summary>
public sealed class EtcdServer : IAsyncDisposable
{
    const int SigStop = 19;
    const int SigCont = 18;
    const int StartTimeoutMs = 30_000;

    sealed class Member(string name, string dataDir, string host, int clientPort, int peerPort)
    {
        public string Name => name;
        public string DataDir => dataDir;
        public string ClientUrl => $"http://{host}:{clientPort}";
        public string PeerUrl => $"http://{host}:{peerPort}";
        public Process? Process;
        public bool Paused;
    }

    readonly string _binary;
    readonly string _root;
    readonly Member[] _members;
    readonly IReadOnlyList<string> _launchPrefix;

    readonly bool _temporary;

    EtcdServer(string binary, string root, Member[] members, bool temporary, IReadOnlyList<string> launchPrefix)
    {
        _binary = binary;
        _root = root;
        _members = members;
        _temporary = temporary;
        _launchPrefix = launchPrefix;
    }

    /// <summary>The first member's URL (the only one of a single-member etcd).</summary>
    public string ClientUrl => _members[0].ClientUrl;

    public IReadOnlyList<string> ClientUrls => _members.Select(m => m.ClientUrl).ToArray();

    /// <summary>Starts <paramref name="members"/> members and waits until each is healthy. <paramref name="root"/>: where
    /// their data lives (kept at dispose); null: a temporary directory (deleted at dispose). Ports: free ones, or for a
    /// single member the given client and peer ports. <paramref name="host"/>: the address every member listens on and
    /// advertises (loopback by default). <paramref name="launchPrefix"/>: a command each member runs under, e.g.
    /// `ip netns exec NS` (it must exec etcd, so that the process started is etcd: pause and stop signal it).</summary>
    public static async Task<EtcdServer> StartAsync(int members = 1, string? root = null, int clientPort = 0, int peerPort = 0,
        string host = "127.0.0.1", IReadOnlyList<string>? launchPrefix = null)
    {
        if (members < 1 || members > MaxMembers) throw new ArgumentOutOfRangeException(nameof(members), $"1 to {MaxMembers} members");
        if (members > 1 && (clientPort != 0 || peerPort != 0)) throw new ArgumentException("fixed ports only for a single member");
        if (!IPAddress.TryParse(host, out _)) throw new ArgumentException($"an IP address, got '{host}'", nameof(host));
        var binary = FindBinary() ?? throw new InvalidOperationException(
            "ETCD_NOT_INSTALLED: no `etcd` on the PATH; install the Debian package etcd-server (apt-get install etcd-server; .ci/run does it)");
        bool temporary = root is null;
        root ??= Path.Combine(Path.GetTempPath(), "switch-etcd-" + Guid.NewGuid().ToString("N"));
        var all = Enumerable.Range(0, members).Select(i => new Member($"m{i}", Path.Combine(root, $"m{i}"), host,
            clientPort != 0 ? clientPort : FreePort(), peerPort != 0 ? peerPort : FreePort())).ToArray();
        var server = new EtcdServer(binary, root, all, temporary, launchPrefix ?? []);
        await server.StartAllAsync();
        return server;
    }

    const int MaxMembers = 5;

    static string? FindBinary()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, "etcd");
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>A loopback port free now that the caller binds soon after and binds again after a restart. It lies
    /// outside the kernel's ephemeral range: a port the kernel hands out (port 0) can be taken as the local port of any
    /// outgoing connection while its process is down, and a node restarted on it then fails "address already in use".
    /// A port is never handed out twice in one process.</summary>
    public static int FreePort()
    {
        (int lowPort, int highPort) = StablePortRange();
        lock (HandedOut)
        {
            for (int attempt = 0; attempt < MaxPortAttempts; attempt++)
            {
                int port = Random.Shared.Next(lowPort, highPort + 1);
                if (HandedOut.Contains(port) || !Bindable(port)) continue;
                HandedOut.Add(port);
                return port;
            }
        }
        throw new InvalidOperationException(
            $"no free loopback port in {lowPort}-{highPort} (outside the ephemeral range) after {MaxPortAttempts} attempts");
    }

    const int MaxPortAttempts = 1_000;
    const int StablePortFloor = 10_000;
    static readonly HashSet<int> HandedOut = new();

    /// <summary>The ports below the ephemeral range (Linux: /proc/sys/net/ipv4/ip_local_port_range, 32768-60999 by
    /// default), or above it when it starts too low to leave room.</summary>
    static (int Low, int High) StablePortRange()
    {
        int ephemeralLow = 32_768, ephemeralHigh = 60_999;
        const string RangeFile = "/proc/sys/net/ipv4/ip_local_port_range";
        if (File.Exists(RangeFile))
        {
            string[] parts = File.ReadAllText(RangeFile).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 2 && int.TryParse(parts[0], out int low) && int.TryParse(parts[1], out int high) && low <= high)
                (ephemeralLow, ephemeralHigh) = (low, high);
        }
        if (ephemeralLow - StablePortFloor >= 1_000) return (StablePortFloor, ephemeralLow - 1);
        if (65_535 - ephemeralHigh >= 1_000) return (ephemeralHigh + 1, 65_535);
        throw new InvalidOperationException(
            $"the ephemeral port range {ephemeralLow}-{ephemeralHigh} leaves no room for ports that must survive a restart");
    }

    static bool Bindable(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    async Task StartAllAsync()
    {
        var initialCluster = string.Join(",", _members.Select(m => $"{m.Name}={m.PeerUrl}"));
        foreach (var member in _members) Launch(member, initialCluster);
        // A member of several answers healthy only once they have a leader, so all start before any is awaited.
        foreach (var member in _members) await WaitHealthyAsync(member);
    }

    void Launch(Member member, string initialCluster)
    {
        Directory.CreateDirectory(member.DataDir);
        var info = LaunchPrefix.StartInfo(_launchPrefix, _binary);
        foreach (var arg in new[]
        {
            "--name", member.Name, "--data-dir", member.DataDir,
            "--listen-client-urls", member.ClientUrl, "--advertise-client-urls", member.ClientUrl,
            "--listen-peer-urls", member.PeerUrl, "--initial-advertise-peer-urls", member.PeerUrl,
            "--initial-cluster", initialCluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", Path.GetFileName(_root),
            // etcd's smallest lease is 1.5 election timeouts rounded up to whole seconds: 2 s under its defaults
            // (100 ms heartbeat, 1 s election); 1 s here, so a test can ask for a 1 s TTL and get it.
            "--heartbeat-interval", "50", "--election-timeout", "500",
            "--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn",
        }) info.ArgumentList.Add(arg);
        var process = Process.Start(info) ?? throw new InvalidOperationException($"{_binary} did not start");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        member.Process = process;
    }

    static async Task WaitHealthyAsync(Member member)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var started = Stopwatch.StartNew();
        while (started.ElapsedMilliseconds < StartTimeoutMs)
        {
            if (member.Process!.HasExited) throw new InvalidOperationException($"etcd {member.Name} exited at start with code {member.Process.ExitCode}");
            try
            {
                var health = await http.GetStringAsync($"{member.ClientUrl}/health");
                if (health.Contains("\"health\":\"true\"")) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet.
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"etcd {member.Name} on {member.ClientUrl} was not healthy within {StartTimeoutMs} ms");
    }

    /// <summary>SIGSTOP: connections stay open and nothing is answered (on SIGCONT etcd finds overdue leases expired).</summary>
    public void Pause(int member = 0)
    {
        Signal(_members[member], SigStop);
        _members[member].Paused = true;
    }

    public void Resume(int member = 0)
    {
        Signal(_members[member], SigCont);
        _members[member].Paused = false;
    }

    /// <summary>Kills every member (their data stays) and starts them again on the same ports.</summary>
    public async Task RestartAsync()
    {
        await StopAsync();
        // Members restarted on their data rejoin the cluster they formed; the initial-cluster flags are then ignored.
        var initialCluster = string.Join(",", _members.Select(m => $"{m.Name}={m.PeerUrl}"));
        foreach (var member in _members) Launch(member, initialCluster);
        foreach (var member in _members) await WaitHealthyAsync(member);
    }

    /// <summary>Kills one member, or all of them.</summary>
    public async Task StopAsync(int? member = null)
    {
        foreach (var m in member is { } i ? [_members[i]] : _members)
        {
            if (m.Process is not { } process) continue;
            if (m.Paused) Resume(Array.IndexOf(_members, m));
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            process.Dispose();
            m.Process = null;
        }
    }

    /// <summary>Which member leads etcd's own raft now, as the members say.</summary>
    public async Task<int> RaftLeaderAsync()
    {
        for (var i = 0; i < _members.Length; i++)
        {
            if (_members[i].Process is null) continue;
            using var client = new dotnet_etcd.EtcdClient(_members[i].ClientUrl);
            var status = await client.StatusAsync(new StatusRequest());
            if (status.Leader == status.Header.MemberId) return i;
        }
        throw new InvalidOperationException("no running member says it leads");
    }

    static void Signal(Member member, int signal)
    {
        var process = member.Process ?? throw new InvalidOperationException($"etcd {member.Name} is not running");
        if (Kill(process.Id, signal) != 0) throw new InvalidOperationException($"kill({process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        if (!_temporary) return; // the caller's directory: its data stays
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // A temp directory left behind is harmless.
        }
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    static extern int Kill(int pid, int signal);
}
