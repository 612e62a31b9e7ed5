using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Switch.Contracts.V1;
using Switch.GrpcCompare;

// The own gRPC layer against the official packages, same messages, same workloads, client and server as separate
// processes, alternating rounds:
//   run [--rounds N] [--seconds S] [--warmup S] [--workloads unary,transact]   everything; prints per-round figures and medians
//   server --stack own|official                                                 serves on a free port, prints {"port": N}
//   client --stack own|official --target URL --workload unary|transact ...     one measured client run, prints JSON
return await Compare.MainAsync(args);

internal static class Compare
{
    /// <summary>Unary: calls in flight at once. Transact: streams, and requests in flight per stream (as the harness runs them).</summary>
    private const int UnaryConcurrency = 64;
    private const int Streams = 4;
    private const int StreamWindow = 1024;

    public static async Task<int> MainAsync(string[] args)
    {
        var options = Options(args.Skip(1));
        string Get(string key, string fallback) => options.GetValueOrDefault(key, fallback);
        switch (args.FirstOrDefault())
        {
            case "server":
                return await ServeAsync(Get("stack", "own"));
            case "client":
                return await ClientAsync(Get("stack", "own"), new Uri(Get("target", "")), Get("workload", "unary"),
                    double.Parse(Get("warmup", "5"), CultureInfo.InvariantCulture), double.Parse(Get("seconds", "10"), CultureInfo.InvariantCulture));
            case "run":
                return await RunAsync(int.Parse(Get("rounds", "5"), CultureInfo.InvariantCulture), Get("warmup", "5"), Get("seconds", "10"),
                    Get("workloads", "unary,transact").Split(','));
            default:
                Console.Error.WriteLine("usage: Switch.GrpcCompare run [--rounds N] [--seconds S] [--warmup S] [--workloads unary,transact]");
                return 2;
        }
    }

    private static Dictionary<string, string> Options(IEnumerable<string> args)
    {
        var options = new Dictionary<string, string>();
        string? key = null;
        foreach (string a in args)
        {
            if (a.StartsWith("--", StringComparison.Ordinal)) key = a[2..];
            else if (key is not null) { options[key] = a; key = null; }
        }
        return options;
    }

    private static async Task<int> ServeAsync(string stack)
    {
        var (address, server) = stack == "official" ? await Servers.StartOfficialAsync(0) : await Servers.StartOwnAsync(0);
        Console.WriteLine(JsonSerializer.Serialize(new { port = address.Port }));
        await Console.In.ReadToEndAsync(); // until the parent closes our stdin
        await server.DisposeAsync();
        return 0;
    }

    private static async Task<int> ClientAsync(string stack, Uri target, string workload, double warmupSeconds, double seconds)
    {
        using IBenchClient client = stack == "official" ? new OfficialClient(target) : new OwnClient(target);
        using var stop = new CancellationTokenSource();
        long completed = 0;
        Task[] workers = workload == "transact"
            ? Enumerable.Range(0, Streams).Select(s => Task.Run(() => TransactAsync(client, s, () => Interlocked.Increment(ref completed), stop.Token))).ToArray()
            : Enumerable.Range(0, UnaryConcurrency).Select(w => Task.Run(() => UnaryAsync(client, w, () => Interlocked.Increment(ref completed), stop.Token))).ToArray();

        await Task.Delay(TimeSpan.FromSeconds(warmupSeconds));
        Console.WriteLine(JsonSerializer.Serialize(new { measuring = true }));
        long count0 = Interlocked.Read(ref completed);
        TimeSpan cpu0 = Environment.CpuUsage.TotalTime;
        var clock = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(seconds));
        long messages = Interlocked.Read(ref completed) - count0;
        TimeSpan cpu = Environment.CpuUsage.TotalTime - cpu0;
        double elapsed = clock.Elapsed.TotalSeconds;
        Console.WriteLine(JsonSerializer.Serialize(new { messages, seconds = elapsed, cpuUs = cpu.TotalMicroseconds }));
        stop.Cancel();
        try { await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(10)); } catch (Exception) { /* stopping mid-call is expected */ }
        return 0;
    }

    private static async Task UnaryAsync(IBenchClient client, int worker, Action done, CancellationToken stop)
    {
        for (long n = (long)worker << 40; !stop.IsCancellationRequested; n++)
        {
            TransferResult result = await client.PayAsync(Answers.Request(n));
            if (result.Status != TransactionStatus.Succeeded) throw new InvalidOperationException("unexpected answer");
            done();
        }
    }

    /// <summary>A Transact-shaped stream: up to a window of requests in flight, results read as they come.</summary>
    private static async Task TransactAsync(IBenchClient client, int stream, Action done, CancellationToken stop)
    {
        using IBenchStream call = client.OpenTransact();
        using var window = new SemaphoreSlim(StreamWindow);
        Task reader = Task.Run(async () =>
        {
            while (await call.ReadAsync() is not null)
            {
                window.Release();
                done();
            }
        });
        for (long n = (long)stream << 40; !stop.IsCancellationRequested; n++)
        {
            if (!window.Wait(0))
            {
                await call.FlushAsync(); // the peer must see what is written before answers can free the window
                try { await window.WaitAsync(stop); } catch (OperationCanceledException) { break; }
            }
            await call.WriteAsync(Answers.Request(n));
        }
        await call.CompleteAsync();
        await reader;
    }

    private sealed record Round(string Workload, string Stack, int RoundNo, long Messages, double Seconds, double ClientCpuUs, double ServerCpuUs)
    {
        public double PerSecond => Messages / Seconds;
        public double ClientUsPerMessage => ClientCpuUs / Messages;
        public double ServerUsPerMessage => ServerCpuUs / Messages;
        public double TotalUsPerMessage => (ClientCpuUs + ServerCpuUs) / Messages;
    }

    private static async Task<int> RunAsync(int rounds, string warmup, string seconds, string[] workloads)
    {
        var results = new List<Round>();
        Console.WriteLine($"# {Environment.ProcessorCount} cores; unary: {UnaryConcurrency} calls in flight; transact: {Streams} streams x {StreamWindow} in flight; " +
            $"warm-up {warmup} s, measured {seconds} s per round");
        Console.WriteLine("workload  stack     round  msg/s       client us/msg  server us/msg  total us/msg");
        foreach (string workload in workloads)
        {
            for (int round = 1; round <= rounds; round++)
            {
                // Alternate which stack goes first, so drift on a shared machine falls on both.
                string[] order = round % 2 == 1 ? ["own", "official"] : ["official", "own"];
                foreach (string stack in order)
                {
                    Round r = await OneRoundAsync(workload, stack, round, warmup, seconds);
                    results.Add(r);
                    Console.WriteLine($"{workload,-9} {stack,-9} {round,5}  {r.PerSecond,10:N0}  {r.ClientUsPerMessage,13:F2}  {r.ServerUsPerMessage,13:F2}  {r.TotalUsPerMessage,12:F2}");
                }
            }
        }
        Console.WriteLine();
        Console.WriteLine("medians    stack     msg/s       client us/msg  server us/msg  total us/msg");
        foreach (string workload in workloads)
        {
            var own = Medians(results.Where(r => r.Workload == workload && r.Stack == "own").ToList());
            var official = Medians(results.Where(r => r.Workload == workload && r.Stack == "official").ToList());
            foreach (var (stack, m) in new[] { ("own", own), ("official", official) })
                Console.WriteLine($"{workload,-10} {stack,-9} {m.PerSecond,10:N0}  {m.Client,13:F2}  {m.Server,13:F2}  {m.Total,12:F2}");
            Console.WriteLine($"{workload,-10} official/own: throughput {official.PerSecond / own.PerSecond:F2}x, CPU per message {official.Total / own.Total:F2}x " +
                $"(client {official.Client / own.Client:F2}x, server {official.Server / own.Server:F2}x)");
        }
        return 0;
    }

    private static (double PerSecond, double Client, double Server, double Total) Medians(List<Round> rounds)
    {
        static double Median(IEnumerable<double> values)
        {
            var sorted = values.Order().ToArray();
            return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        }
        return (Median(rounds.Select(r => r.PerSecond)), Median(rounds.Select(r => r.ClientUsPerMessage)),
            Median(rounds.Select(r => r.ServerUsPerMessage)), Median(rounds.Select(r => r.TotalUsPerMessage)));
    }

    private static async Task<Round> OneRoundAsync(string workload, string stack, int round, string warmup, string seconds)
    {
        using Process server = Self("server", "--stack", stack);
        string portLine = await server.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60))
            ?? throw new InvalidOperationException("server exited: " + await server.StandardError.ReadToEndAsync());
        int port = JsonDocument.Parse(portLine).RootElement.GetProperty("port").GetInt32();
        using Process client = Self("client", "--stack", stack, "--target", $"http://127.0.0.1:{port}", "--workload", workload,
            "--warmup", warmup, "--seconds", seconds);
        client.StandardInput.Close();
        TimeSpan serverCpu0 = TimeSpan.Zero;
        JsonElement result = default;
        while (await client.StandardOutput.ReadLineAsync() is { } line)
        {
            var json = JsonDocument.Parse(line).RootElement.Clone();
            server.Refresh();
            if (json.TryGetProperty("measuring", out _)) serverCpu0 = server.TotalProcessorTime;
            else
            {
                result = json;
                break;
            }
        }
        server.Refresh();
        TimeSpan serverCpu = server.TotalProcessorTime - serverCpu0;
        if (result.ValueKind != JsonValueKind.Object) throw new InvalidOperationException("client failed: " + await client.StandardError.ReadToEndAsync());
        await client.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        server.StandardInput.Close();
        if (!server.WaitForExit(15_000)) server.Kill(entireProcessTree: true);
        return new Round(workload, stack, round, result.GetProperty("messages").GetInt64(), result.GetProperty("seconds").GetDouble(),
            result.GetProperty("cpuUs").GetDouble(), serverCpu.TotalMicroseconds);
    }

    private static Process Self(params string[] args)
    {
        string host = Environment.ProcessPath!;
        var info = new ProcessStartInfo(host)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet") info.ArgumentList.Add(typeof(Compare).Assembly.Location);
        foreach (string a in args) info.ArgumentList.Add(a);
        return Process.Start(info) ?? throw new InvalidOperationException("could not start " + host);
    }
}
