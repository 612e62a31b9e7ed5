using System.Diagnostics;
using System.Text.RegularExpressions;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Configuration;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;

namespace Switch.Host.Tests.EndToEnd;

/// <summary>Restarts on the same journal, in process and as the real switch process stopped by SIGTERM.</summary>
public sealed class RecoveryAndProcessTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "switch-recovery-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_data, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public async Task A_restart_recovers_orders_duplicates_and_the_outcome_feed()
    {
        HostConfig config = TestConfig(_data);
        long paymentId;
        await using (RunningSwitch first = await RunningSwitch.StartAsync(config, _data))
        {
            for (int i = 0; i < 20; i++) await first.PayAsync(Payment($"K-{i}", 500 + i, account: $"A{i}"));
            paymentId = (await first.PayAsync(Payment("KEEP", 9_999))).TransactionId;
        }
        await using (RunningSwitch second = await RunningSwitch.StartAsync(config, _data))
        {
            Assert.Equal(21, second.Host.Engine.Recovery.LastTransactionId);
            TransferResult again = await second.PayAsync(Payment("KEEP", 9_999));
            Assert.True(again.Duplicate);
            Assert.Equal(paymentId, again.TransactionId);

            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            using ServerStreamingCall<TransferResult> feed = second.Channel.ServerStreaming(InstitutionMethods.Outcomes,
                new OutcomesRequest { AfterFeedNo = 0 }, As(AlipayKey) with { Timeout = null, CancellationToken = cts.Token });
            var outcomes = new List<TransferResult>();
            while (outcomes.Count < 21 && await feed.ResponseStream.ReadAsync() is { } o) outcomes.Add(o);
            Assert.Equal(Enumerable.Range(1, 21).Select(i => (long)i), outcomes.Select(o => o.FeedNo));
            Assert.Equal("KEEP", outcomes[^1].OrderNo);

            // New work continues after the recovered records.
            TransferResult next = await second.PayAsync(Payment("NEXT", 1));
            Assert.Equal(22, next.TransactionId);
            Assert.Equal(22, next.FeedNo);
        }
    }

    [Fact]
    public async Task The_switch_process_starts_with_defaults_serves_stops_on_sigterm_and_recovers()
    {
        string orderNo = "PROC-" + Guid.NewGuid().ToString("N")[..8];
        long transactionId;
        using (SwitchProcess process = SwitchProcess.Start(_data))
        {
            Uri address = await process.WaitForAddressAsync();
            Assert.Contains(process.Output, l => l.Contains("demo credentials: institution ALIPAY, metadata x-api-key: demo-alipay-key"));
            using var channel = GrpcChannel.ForAddress(address);
            TransferResult paid = await channel.UnaryAsync(InstitutionMethods.AgreementPayment, Payment(orderNo, 4_200), As(AlipayKey));
            Assert.Equal(TransactionStatus.Succeeded, paid.Status);
            transactionId = paid.TransactionId;
            Assert.Equal(0, await process.TerminateAsync());
            Assert.Contains(process.Output, l => l.Contains("switch: stopped"));
        }
        using (SwitchProcess process = SwitchProcess.Start(_data))
        {
            Uri address = await process.WaitForAddressAsync();
            Assert.Contains(process.Output, l => l.Contains("1 transactions, 0 unresolved"));
            Assert.Contains(process.Output, l => l.Contains("recovered "));
            using var channel = GrpcChannel.ForAddress(address);
            TransferResult queried = await channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = orderNo }, As(AlipayKey));
            Assert.Equal(transactionId, queried.TransactionId);
            Assert.Equal(TransactionStatus.Succeeded, queried.Status);
            Assert.Equal(0, await process.TerminateAsync());
        }
    }

    [Fact]
    public async Task A_bad_configuration_file_is_refused_naming_the_field()
    {
        string file = Path.Combine(Path.GetTempPath(), "switch-bad-config-" + Guid.NewGuid().ToString("N") + ".json");
        HostConfig good = HostConfig.EmbeddedDefault();
        string json = System.Text.Json.JsonSerializer.Serialize(good, new System.Text.Json.JsonSerializerOptions { PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.CamelCase });
        await File.WriteAllTextAsync(file, json.Replace("\"weightBps\":500", "\"weightBps\":400"));
        try
        {
            using SwitchProcess process = SwitchProcess.Start(_data, "--config", file);
            Assert.Equal(2, await process.WaitForExitAsync());
            Assert.Contains(process.Errors, l => l.Contains("switch.banks[0].endpoints"));
            Assert.Contains(process.Errors, l => l.Contains("weights must sum to 10000 bps, got 9900"));
        }
        finally
        {
            File.Delete(file);
        }
    }
}

/// <summary>The real switch process (the built Switch.Host.dll), its output captured line by line.</summary>
internal sealed class SwitchProcess : IDisposable
{
    private readonly Process _process;
    private readonly TaskCompletionSource<Uri> _address = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Uri? _listening;
    public List<string> Output { get; } = new();
    public List<string> Errors { get; } = new();

    private SwitchProcess(Process process) => _process = process;

    public static SwitchProcess Start(string dataDirectory, params string[] extra) => Start(dataDirectory, new Dictionary<string, string>(), extra);

    /// <summary>With <paramref name="environment"/> added to the process's environment.</summary>
    public static SwitchProcess Start(string dataDirectory, IReadOnlyDictionary<string, string> environment, params string[] extra)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "Switch.Host.dll");
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(dll);
        foreach ((string name, string value) in environment) info.Environment[name] = value;
        foreach (string a in new[] { "--data", dataDirectory, "--port", "0", "--admin-port", "0", "--admin-grpc-port", "0" }.Concat(extra)) info.ArgumentList.Add(a);
        var process = new Process { StartInfo = info };
        var running = new SwitchProcess(process);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (running.Output) running.Output.Add(e.Data);
            Match m = Regex.Match(e.Data, @"institution API \(gRPC, (?:h2c|TLS)\) at (\S+)");
            if (m.Success) running._listening = new Uri(m.Groups[1].Value);
            // Ready once it says it is running: every start-up line is in by then.
            if (e.Data.StartsWith("switch: running") && running._listening is not null) running._address.TrySetResult(running._listening);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (running.Errors) running.Errors.Add(e.Data);
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return running;
    }

    public async Task<Uri> WaitForAddressAsync()
    {
        Task exited = _process.WaitForExitAsync();
        Task done = await Task.WhenAny(_address.Task, exited, Task.Delay(TimeSpan.FromSeconds(60)));
        if (done != _address.Task)
        {
            throw new InvalidOperationException($"the switch did not start: {string.Join("\n", Output.Concat(Errors))}");
        }
        return await _address.Task;
    }

    /// <summary>SIGTERM, as an init system stops it; returns the exit code.</summary>
    public async Task<int> TerminateAsync()
    {
        using (Process kill = Process.Start("kill", ["-TERM", _process.Id.ToString()])!)
        {
            await kill.WaitForExitAsync();
        }
        return await WaitForExitAsync();
    }

    public async Task<int> WaitForExitAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await _process.WaitForExitAsync(timeout.Token);
        _process.WaitForExit(); // drains the output handlers
        return _process.ExitCode;
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
        _process.Dispose();
    }
}
