using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Switch.Cluster;

/// <summary>
/// A single-member etcd (the Debian package etcd-server's `etcd` binary) on loopback ports with its own data directory:
/// for the demo cluster and the tests, never for production (run etcd as its operators do). It can be paused (SIGSTOP:
/// connections stay open and nothing answers, as a hung or cut-off etcd), resumed, stopped and started again on the
/// same ports and data.
/// </summary>
public sealed class EtcdProcess : IAsyncDisposable
{
    private const int SigStop = 19;
    private const int SigCont = 18;
    private const int StartTimeoutMs = 30_000;

    private readonly string _binary;
    private readonly string _dataDirectory;
    private readonly int _clientPort;
    private readonly int _peerPort;
    private Process? _process;
    private bool _paused;

    private EtcdProcess(string binary, string dataDirectory, int clientPort, int peerPort)
    {
        _binary = binary;
        _dataDirectory = dataDirectory;
        _clientPort = clientPort;
        _peerPort = peerPort;
    }

    public string ClientUrl => $"http://127.0.0.1:{_clientPort}";
    public string DataDirectory => _dataDirectory;

    /// <summary>Starts etcd and waits until it reports healthy. Ports 0: free ones. A missing binary is an
    /// <see cref="InvalidOperationException"/> that says which package provides it.</summary>
    public static async Task<EtcdProcess> StartAsync(string dataDirectory, int clientPort = 0, int peerPort = 0)
    {
        string binary = FindBinary() ?? throw new InvalidOperationException(
            "ETCD_NOT_INSTALLED: no `etcd` on the PATH; install the Debian package etcd-server (apt-get install etcd-server)");
        Directory.CreateDirectory(dataDirectory);
        var etcd = new EtcdProcess(binary, dataDirectory, clientPort == 0 ? FreePort() : clientPort, peerPort == 0 ? FreePort() : peerPort);
        await etcd.StartProcessAsync();
        return etcd;
    }

    private static string? FindBinary()
    {
        foreach (string directory in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(directory, "etcd");
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>A loopback port free now (the caller binds it soon after).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private async Task StartProcessAsync()
    {
        string peer = $"http://127.0.0.1:{_peerPort}";
        var info = new ProcessStartInfo(_binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[]
        {
            "--name", "switch", "--data-dir", _dataDirectory,
            "--listen-client-urls", ClientUrl, "--advertise-client-urls", ClientUrl,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", $"switch={peer}", "--initial-cluster-state", "new",
            // Half etcd's defaults: its smallest lease is then 1 s (1.5 election timeouts, rounded up to seconds), so a 1 s TTL is honoured.
            "--heartbeat-interval", "50", "--election-timeout", "500",
            "--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn",
        }) info.ArgumentList.Add(arg);
        Process process = Process.Start(info) ?? throw new InvalidOperationException($"{_binary} did not start");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var started = Stopwatch.StartNew();
        while (started.ElapsedMilliseconds < StartTimeoutMs)
        {
            if (process.HasExited) throw new InvalidOperationException($"etcd exited at start with code {process.ExitCode} (ports {_clientPort}, {_peerPort} taken?)");
            try
            {
                string health = await http.GetStringAsync($"{ClientUrl}/health");
                if (health.Contains("\"health\":\"true\"", StringComparison.Ordinal)) return;
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

    private void Signal(int signal)
    {
        Process process = _process ?? throw new InvalidOperationException("etcd is not running");
        if (Kill(process.Id, signal) != 0) throw new InvalidOperationException($"kill({process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Stops etcd; its data directory stays (the caller owns it).</summary>
    public async ValueTask DisposeAsync() => await StopAsync();

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
