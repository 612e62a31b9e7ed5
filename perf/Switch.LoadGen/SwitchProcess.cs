using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host;
using Switch.Host.Configuration;

namespace Switch.LoadGen;

/// <summary>How the harness configures the switch it starts.</summary>
public sealed record SwitchSetup
{
    /// <summary>The simulated banks' latency ("0", "fixed:MS", "uniform:MIN-MAX", "lognormal:MEDIAN,SIGMA").</summary>
    public string BankLatency { get; init; } = "0";
    public double BankFailureRate { get; init; }
    /// <summary>A configuration file to use as is, instead of the generated one.</summary>
    public string? ConfigFile { get; init; }
    public bool KeepData { get; init; }
    /// <summary>The switch's stall watchdog threshold (<c>stallReportMs</c>); null: the switch's default.</summary>
    public int? StallReportMs { get; init; }

    /// <summary>The embedded demo configuration with the simulated banks set as asked.</summary>
    public string GenerateConfigJson()
    {
        HostConfig config = HostConfig.EmbeddedDefault();
        config = config with
        {
            SimulatedBanks = (config.SimulatedBanks ?? new SimulatedBanksConfig()) with { Latency = BankLatency, FailureRate = BankFailureRate },
            StallReportMs = StallReportMs ?? config.StallReportMs,
        };
        string json = JsonSerializer.Serialize(config, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, WriteIndented = true });
        HostConfig.Parse(json, "generated configuration"); // Refused here, naming the field, rather than by the child.
        return json;
    }
}

/// <summary>
/// The real switch (the built Switch.Host.dll next to this program) as a child process on loopback, on a fresh
/// temporary data directory and a free port, stopped by SIGTERM as an init system would.
/// </summary>
public sealed class SwitchProcess : IAsyncDisposable
{
    private const int StartTimeoutSeconds = 120;
    private const int StopTimeoutSeconds = 60;
    private const int KeptLines = 200;

    private readonly Process _process;
    private readonly TaskCompletionSource _running = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Queue<string> _lines = new();
    private readonly string _workDirectory;
    private readonly bool _keep;

    private SwitchProcess(Process process, string workDirectory, bool keep)
    {
        _process = process;
        _workDirectory = workDirectory;
        _keep = keep;
    }

    private int _disposed;

    public Uri? InstitutionAddress { get; private set; }
    /// <summary>The operator API's address, when the switch prints one.</summary>
    public Uri? AdminAddress { get; private set; }
    /// <summary>The operator HTTP API's address (dashboard, /metrics), when the switch prints one.</summary>
    public Uri? OperatorHttpAddress { get; private set; }
    public string DataDirectory => Path.Combine(_workDirectory, "data");
    public int Id => _process.Id;

    /// <summary>The switch's snapshot_taken records so far (each pause's parts, the checkpoint's and the views' timing).</summary>
    public IReadOnlyList<string> SnapshotRecords()
    {
        lock (_snapshotRecords) return _snapshotRecords.ToArray();
    }

    private readonly List<string> _snapshotRecords = new();

    /// <summary>The switch's stall records so far (its watchdog's <c>event=stall</c>), each as logged.</summary>
    public List<string> StallRecords()
    {
        lock (_stallRecords) return [.. _stallRecords];
    }

    private readonly List<string> _stallRecords = new();

    public string RecentOutput()
    {
        lock (_lines) return string.Join("\n", _lines);
    }

    public const string Gen0SizeVariable = "DOTNET_GCgen0size";

    /// <summary>
    /// 64 MiB of gen0 (the runtime's default here is about 20): nearly all a transaction allocates dies young, so a
    /// collection copies the same few survivors however large gen0 is, and collections come four times less often.
    /// Measured with this harness (streams 4 x 4096, batch 64, 120,000/s, 1.1 M warm; alternating, shared machine):
    /// gen0 collections 69/69/68 -> 18/18 in 20 s, gen1 15/19/7 -> 5/5, GC pause 617/566/400 -> 286/232 ms; switch CPU
    /// per transaction unchanged within the noise (7.4-7.9 µs both). In hex, as the runtime reads it.
    /// </summary>
    public const string Gen0Size = "0x4000000";

    public static async Task<SwitchProcess> StartAsync(SwitchSetup setup, TextWriter log)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "Switch.Host.dll");
        if (!File.Exists(dll)) throw new FileNotFoundException($"the switch is not built next to the harness: {dll}");
        string work = Path.Combine(Path.GetTempPath(), "switch-loadgen-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(work);
        string configFile = setup.ConfigFile ?? Path.Combine(work, "config.json");
        if (setup.ConfigFile is null) await File.WriteAllTextAsync(configFile, setup.GenerateConfigJson());
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { dll, "--config", configFile, "--data", Path.Combine(work, "data"), "--port", "0", "--admin-port", "0", "--admin-grpc-port", "0", "--listen", "127.0.0.1" })
        {
            info.ArgumentList.Add(a);
        }
        // The gen0 budget the switch is meant to run with (README, "Load harness"), unless the harness's own environment
        // names one (DOTNET_GCgen0size=0: the runtime's default). The runtime reads it from the environment only.
        if (Environment.GetEnvironmentVariable(Gen0SizeVariable) is null) info.Environment[Gen0SizeVariable] = Gen0Size;
        var process = new Process { StartInfo = info };
        var running = new SwitchProcess(process, work, setup.KeepData);
        process.OutputDataReceived += (_, e) => running.OnLine(e.Data, log);
        process.ErrorDataReceived += (_, e) => running.OnLine(e.Data, log);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        Task done = await Task.WhenAny(running._running.Task, process.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(StartTimeoutSeconds)));
        if (done != running._running.Task)
        {
            await running.DisposeAsync();
            throw new InvalidOperationException($"the switch did not start:\n{running.RecentOutput()}");
        }
        return running;
    }

    private void OnLine(string? line, TextWriter log)
    {
        if (line is null) return;
        lock (_lines)
        {
            _lines.Enqueue(line);
            if (_lines.Count > KeptLines) _lines.Dequeue();
        }
        log.WriteLine("  | " + line);
        // The switch logs structured records (Switch.Host.Log); its addresses are in its "listening" records.
        LogRecord? record = LogRecord.TryParse(line);
        if (record is { Event: "listening" } && record["address"] is { } address)
        {
            if (record["api"] == "institution") InstitutionAddress = new Uri(address);
            else if (record["api"] == "operator_grpc") AdminAddress = new Uri(address);
            else if (record["api"] == "operator_http") OperatorHttpAddress = new Uri(address);
        }
        if (record?.Event == "snapshot_taken")
        {
            lock (_snapshotRecords) _snapshotRecords.Add(line);
        }
        if (record?.Event == "stall")
        {
            lock (_stallRecords) _stallRecords.Add(line);
            Console.WriteLine("  switch: " + line); // among the progress lines: when it came is where it shows
        }
        // Every start-up line is in once it says it runs.
        if (record?.Event == "running" && InstitutionAddress is not null) _running.TrySetResult();
    }

    /// <summary>The child's CPU time so far (user + system), from /proc; null where there is none.</summary>
    public double? CpuSeconds()
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{_process.Id}/stat");
            // Fields after the command name (which may hold spaces, in parentheses): state is field 3; utime 14, stime 15.
            string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            long ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            return ticks / 100.0; // USER_HZ is 100 on Linux.
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>The child's CPU seconds by thread, named threads apart and the thread pool's (and the runtime's)
    /// summed, from /proc: where the switch spends its time. Empty where there is no /proc.</summary>
    public Dictionary<string, double> CpuSecondsByThread()
    {
        var byName = new Dictionary<string, double>();
        try
        {
            foreach (string task in Directory.EnumerateDirectories($"/proc/{_process.Id}/task"))
            {
                string name = File.ReadAllText(Path.Combine(task, "comm")).Trim();
                string stat = File.ReadAllText(Path.Combine(task, "stat"));
                string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                double seconds = (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
                string group = name.StartsWith("switch-", StringComparison.Ordinal) ? name
                    : name.StartsWith(".NET TP", StringComparison.Ordinal) || name.StartsWith(".NET Sock", StringComparison.Ordinal) ? "thread pool and sockets"
                    : name.StartsWith(".NET", StringComparison.Ordinal) ? "runtime (JIT, GC, timers)"
                    : "other";
                byName[group] = byName.GetValueOrDefault(group) + seconds;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            // A thread ended while being read, or no /proc: what was read stands.
        }
        return byName;
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);

    private const int SigTerm = 15;

    /// <summary>SIGTERM, then the exit code (the switch finishes in-flight work and commits its journal).</summary>
    public async Task<int> StopAsync()
    {
        if (_process.HasExited) return _process.ExitCode;
        if (SendSignal(_process.Id, SigTerm) != 0) throw new InvalidOperationException($"kill -TERM {_process.Id} failed: errno {Marshal.GetLastPInvokeError()}");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(StopTimeoutSeconds));
        await _process.WaitForExitAsync(timeout.Token);
        _process.WaitForExit(); // Drains the output handlers.
        return _process.ExitCode;
    }

    /// <summary>Kills the switch (SIGKILL) if it still runs and deletes its files; a second call does nothing.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
        if (!_keep)
        {
            try { Directory.Delete(_workDirectory, recursive: true); } catch (IOException) { }
        }
    }
}

/// <summary>
/// The per-endpoint split as the switch counts it, from the operator API (admin GetStats): the counts of its
/// longest window (15 minutes) after the run minus before it, so probes and warm-up are left out (exact for
/// runs shorter than the window); the latency percentiles are the window's, as the switch reports them.
/// </summary>
public static class EndpointStatsSource
{
    public const string DefaultOperatorKey = "demo-operator-key";

    public sealed record Snapshot(IReadOnlyList<Report.EndpointLine> Lines, int WindowSeconds, string? Error);

    public static async Task<Snapshot> FetchAsync(Uri? adminAddress, string operatorKey)
    {
        if (adminAddress is null) return new Snapshot([], 0, "the switch announced no operator API");
        try
        {
            using var channel = GrpcChannel.ForAddress(adminAddress);
            StatsReply stats = await channel.UnaryAsync(AdminMethods.GetStats, new StatsRequest(), new CallOptions
            {
                Headers = new Metadata().Add(AdminMethods.OperatorKeyHeader, operatorKey),
                Timeout = TimeSpan.FromSeconds(10),
            });
            var lines = new List<Report.EndpointLine>();
            int window = 0;
            foreach (BankStats bank in stats.Banks)
            {
                foreach (EndpointStats endpoint in bank.Endpoints)
                {
                    WindowStats? w = endpoint.Windows.MaxBy(x => x.WindowSeconds);
                    if (w is null) continue;
                    window = Math.Max(window, w.WindowSeconds);
                    lines.Add(new Report.EndpointLine(bank.Bank, endpoint.Name, w.Requests, w.Succeeded, w.Failed, w.TimedOut, w.P50LatencyUs, w.P99LatencyUs));
                }
            }
            return new Snapshot(lines, window, null);
        }
        catch (RpcException e)
        {
            return new Snapshot([], 0, $"admin GetStats at {adminAddress} failed: {e.Status.Code} {e.Status.Detail}");
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
        {
            return new Snapshot([], 0, $"admin GetStats at {adminAddress} unreachable: {e.Message}");
        }
    }

    /// <summary>What happened between two snapshots, and where the figures came from.</summary>
    public static (IReadOnlyList<Report.EndpointLine> Lines, string Source) Between(Snapshot before, Snapshot after, Uri? adminAddress, double runSeconds)
    {
        string? error = after.Error ?? before.Error;
        if (error is not null) return ([], $"not split by endpoint ({error}); the split by bank is from the generator's own sends");
        var earlier = before.Lines.ToDictionary(l => (l.Bank, l.Endpoint));
        var lines = after.Lines.Select(l => earlier.TryGetValue((l.Bank, l.Endpoint), out var b)
            ? l with { Requests = l.Requests - b.Requests, Succeeded = l.Succeeded - b.Succeeded, Failed = l.Failed - b.Failed, TimedOut = l.TimedOut - b.TimedOut }
            : l).ToList();
        string exact = runSeconds < after.WindowSeconds ? "" : $" (the run outlasted the {after.WindowSeconds} s window: counts are of its last {after.WindowSeconds} s)";
        return (lines, $"from the switch's operator API (GetStats at {adminAddress}): requests sent to each endpoint during the run; latencies are the bank round trip over the last {after.WindowSeconds} s{exact}");
    }
}
