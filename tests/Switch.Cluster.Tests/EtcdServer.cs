using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Switch.Cluster.Tests;

/// <summary>A real single-member etcd (Debian package etcd-server) on free loopback ports in a temporary data
/// directory; it can be paused (SIGSTOP: the sockets stay open and nothing answers, as a hung or cut-off etcd),
/// resumed, stopped and started again on the same ports and data. A missing binary fails the test, never skips it.</summary>
public sealed class EtcdServer : IAsyncDisposable
{
    const int SigStop = 19;
    const int SigCont = 18;
    const int StartTimeoutMs = 30_000;

    readonly string _binary;
    readonly string _dataDir;
    readonly int _clientPort;
    readonly int _peerPort;
    Process? _process;
    bool _paused;

    EtcdServer(string binary, string dataDir, int clientPort, int peerPort)
    {
        _binary = binary;
        _dataDir = dataDir;
        _clientPort = clientPort;
        _peerPort = peerPort;
    }

    public string ClientUrl => $"http://127.0.0.1:{_clientPort}";

    public static async Task<EtcdServer> StartAsync()
    {
        var binary = FindBinary() ?? throw new Xunit.Sdk.XunitException(
            "etcd is not installed: these tests need a real etcd v3 server; install the Debian package etcd-server " +
            "(apt-get install etcd-server; .ci/run does it)");
        var dataDir = Path.Combine(Path.GetTempPath(), "switch-etcd-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dataDir);
        var server = new EtcdServer(binary, dataDir, FreePort(), FreePort());
        await server.StartProcessAsync();
        return server;
    }

    static string? FindBinary()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, "etcd");
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    async Task StartProcessAsync()
    {
        var peer = $"http://127.0.0.1:{_peerPort}";
        var info = new ProcessStartInfo(_binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
        {
            "--name", "test", "--data-dir", _dataDir,
            "--listen-client-urls", ClientUrl, "--advertise-client-urls", ClientUrl,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", $"test={peer}", "--initial-cluster-state", "new",
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
        _process = process;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var started = Stopwatch.StartNew();
        while (started.ElapsedMilliseconds < StartTimeoutMs)
        {
            if (process.HasExited) throw new InvalidOperationException($"etcd exited at start with code {process.ExitCode}");
            try
            {
                var health = await http.GetStringAsync($"{ClientUrl}/health");
                if (health.Contains("\"health\":\"true\"")) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet.
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"etcd on {ClientUrl} was not healthy within {StartTimeoutMs} ms");
    }

    /// <summary>SIGSTOP: connections stay open and nothing is answered (on SIGCONT etcd finds overdue leases expired).</summary>
    public void Pause()
    {
        Signal(SigStop);
        _paused = true;
    }

    public void Resume()
    {
        Signal(SigCont);
        _paused = false;
    }

    /// <summary>Kills the process (its data stays) and starts it again on the same ports.</summary>
    public async Task RestartAsync()
    {
        await StopAsync();
        await StartProcessAsync();
    }

    public async Task StopAsync()
    {
        if (_process is not { } process) return;
        if (_paused) Resume();
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync();
        process.Dispose();
        _process = null;
    }

    void Signal(int signal)
    {
        var process = _process ?? throw new InvalidOperationException("etcd is not running");
        if (Kill(process.Id, signal) != 0) throw new InvalidOperationException($"kill({process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        try
        {
            Directory.Delete(_dataDir, recursive: true);
        }
        catch (IOException)
        {
            // A temp directory left behind is harmless.
        }
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    static extern int Kill(int pid, int signal);
}
