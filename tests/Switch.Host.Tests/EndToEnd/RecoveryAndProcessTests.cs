using System.Diagnostics;
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
    public async Task A_transaction_resolved_after_a_restart_answers_no_caller_of_the_new_life()
    {
        // First life: the bank executes and stays silent; the caller gives up and the switch stops before the bank's
        // deadline, as a crash would leave it: the transaction's answer still owed to the first life's correlation
        // id. Second life: the deadline passes and the query resolves it, each answering to that old id. Callers of
        // the second life (another institution's streams, holding its first ids) must never receive those answers.
        HostConfig config = TestConfig(_data, new SimulatedBanksConfig { Latency = "0", FailureRate = 0, NoAnswerRate = 1 },
            rules => rules with { BankTimeoutMs = 6_000, QueryBackoffInitialMs = 200, QueryBackoffMaxMs = 200 }) with { ShutdownGraceMs = 0 };
        await using (RunningSwitch first = await RunningSwitch.StartAsync(config, _data))
        {
            // The caller's deadline stays well inside the bank's 6 s; 2 s, not less: a deadline that passes before the
            // switch journals the request refuses it unexecuted (DEADLINE_PASSED, the order number free), which on a
            // loaded machine left this test without its transaction (ORDER_NOT_FOUND in the second life).
            RpcException gaveUp = await Assert.ThrowsAsync<RpcException>(() =>
                first.Channel.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("STALE-1", 777), As(TenpayKey, timeoutMs: 2_000)));
            Assert.Equal(StatusCode.DeadlineExceeded, gaveUp.StatusCode);
            TransferResult atBank = await first.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = "STALE-1" }, As(TenpayKey));
            Assert.Equal(TransactionStatus.Processing, atBank.Status); // journaled and at the silent bank: the premise holds
        }
        await using RunningSwitch second = await RunningSwitch.StartAsync(
            config with { SimulatedBanks = new SimulatedBanksConfig { Latency = "0", FailureRate = 0 } }, _data);
        var streams = new List<DuplexStreamingCall<TransferRequest, TransferResult>>();
        try
        {
            // The new life's first callers: ALIPAY streams, each proven registered by one payment answered on it.
            for (int i = 0; i < 8; i++)
            {
                DuplexStreamingCall<TransferRequest, TransferResult> call = second.Channel.DuplexStreaming(InstitutionMethods.Transact, As(AlipayKey, 60_000));
                streams.Add(call);
                TransferRequest payment = Payment($"NEW-{i}", 100 + i, account: $"62220{i}");
                payment.Kind = RequestKind.AgreementPayment;
                await call.RequestStream.WriteAndFlushAsync(payment);
                Assert.Equal($"NEW-{i}", (await call.ResponseStream.ReadAsync())!.OrderNo);
            }
            await Admin.AdminClient.WaitUntilAsync(async () =>
                (await second.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = "STALE-1" }, As(TenpayKey))).Status
                    is TransactionStatus.Succeeded or TransactionStatus.Failed, "the first life's transaction final");
            foreach (DuplexStreamingCall<TransferRequest, TransferResult> call in streams)
            {
                await call.RequestStream.CompleteAsync();
                TransferResult? stray = await call.ResponseStream.ReadAsync();
                Assert.True(stray is null, $"an ALIPAY stream of the new life received {stray?.OrderNo} ({stray?.Status})");
            }
        }
        finally
        {
            foreach (DuplexStreamingCall<TransferRequest, TransferResult> call in streams) call.Dispose();
        }
    }

    [Fact]
    public async Task Bank_requests_due_at_the_first_tick_after_a_restart_are_delivered()
    {
        // First life: the banks execute and stay silent, the callers give up. Between lives every bank deadline passes,
        // and its first query is due, so the second life's first tick asks each bank at once: those requests must reach
        // the connector (attached before the engine runs) and be sent, none counted undeliverable.
        const int Orders = 6;
        HostConfig config = TestConfig(_data, new SimulatedBanksConfig { Latency = "0", FailureRate = 0, NoAnswerRate = 1 },
            rules => rules with { BankTimeoutMs = 2_000, QueryBackoffInitialMs = 200, QueryBackoffMaxMs = 60_000 }) with { ShutdownGraceMs = 0 };
        await using (RunningSwitch first = await RunningSwitch.StartAsync(config, _data))
        {
            // The bank's endpoints up and the unary path compiled first (a query of an unknown order: no bank involved):
            // on a loaded machine the first calls of a new process can outlast the 500 ms the callers below allow, and
            // a call whose deadline passes before the switch takes it is never journaled (nothing would be due).
            await Admin.AdminClient.WaitUntilAsync(() => Task.FromResult(first.Host.Connector.Links.Where(l => l.BankCode == 102).All(l => l.IsUp)),
                "ICBC's endpoints reachable");
            RpcException unknown = await Assert.ThrowsAsync<RpcException>(() => first.Channel.UnaryAsync(InstitutionMethods.Query,
                new TransferRequest { OrderNo = "DUE-WARM-UP" }, As(TenpayKey)));
            Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
            // All at once, so the first life ends before any bank deadline.
            await Task.WhenAll(Enumerable.Range(0, Orders).Select(async i =>
            {
                RpcException gaveUp = await Assert.ThrowsAsync<RpcException>(() => first.Channel.UnaryAsync(InstitutionMethods.AgreementPayment,
                    Payment($"DUE-{i}", 300 + i, account: $"62221{i}"), As(TenpayKey, timeoutMs: 500)));
                Assert.Equal(StatusCode.DeadlineExceeded, gaveUp.StatusCode);
            }));
            // Each was taken and journaled before its caller gave up (a failure here is the set-up's, not the restart's).
            await Admin.AdminClient.WaitUntilAsync(() => Task.FromResult(first.Host.Engine.Logic.Transactions.LastId == Orders), $"{Orders} payments taken");
        }
        await Task.Delay(3_500); // every bank deadline passes while the switch is down
        await using RunningSwitch second = await RunningSwitch.StartAsync(
            config with { SimulatedBanks = new SimulatedBanksConfig { Latency = "0", FailureRate = 0 } }, _data);
        // The query follows the deadline by 200 ms: due before the restart, so emitted at the first tick.
        await Admin.AdminClient.WaitUntilAsync(() => Task.FromResult(second.Host.Connector.Links.Sum(l => l.Sent) >= Orders),
            $"{Orders} follow-ups sent to the banks");
        Assert.Equal(0, second.Host.UndeliverableBankRequests);
    }

    [Fact]
    public async Task The_switch_process_starts_with_defaults_serves_stops_on_sigterm_and_recovers()
    {
        string orderNo = "PROC-" + Guid.NewGuid().ToString("N")[..8];
        long transactionId;
        using (SwitchProcess process = SwitchProcess.Start(_data))
        {
            Uri address = await process.WaitForAddressAsync();
            Assert.Contains(process.Records(), r => r is { Event: "demo_credentials" } && r["institution"] == "ALIPAY"
                && r["header"] == "x-api-key" && r["key"] == "demo-alipay-key");
            using var channel = GrpcChannel.ForAddress(address);
            TransferResult paid = await channel.UnaryAsync(InstitutionMethods.AgreementPayment, Payment(orderNo, 4_200), As(AlipayKey));
            Assert.Equal(TransactionStatus.Succeeded, paid.Status);
            transactionId = paid.TransactionId;
            Assert.Equal(0, await process.TerminateAsync());
            Assert.Contains(process.Records(), r => r.Event == "stopped");
        }
        using (SwitchProcess process = SwitchProcess.Start(_data))
        {
            Uri address = await process.WaitForAddressAsync();
            Assert.Contains(process.Records(), r => r.Event == "journal_recovered" && r["transactions"] == "1" && r["unresolved"] == "0");
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
    /// <summary>The operator API (gRPC), known once the process has printed it.</summary>
    public Uri? AdminGrpcAddress { get; private set; }
    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;

    private SwitchProcess(Process process) => _process = process;

    public static SwitchProcess Start(string dataDirectory, params string[] extra) => Start(dataDirectory, new Dictionary<string, string>(), extra);

    /// <summary>With <paramref name="environment"/> added to the process's environment.</summary>
    public static SwitchProcess Start(string dataDirectory, IReadOnlyDictionary<string, string> environment, params string[] extra) =>
        Start([], dataDirectory, environment, extra);

    /// <summary>Started through <paramref name="launchPrefix"/>, a command that execs the rest (`ip netns exec NS`: the
    /// process is the switch itself, so signals reach it).</summary>
    public static SwitchProcess Start(IReadOnlyList<string> launchPrefix, string dataDirectory, IReadOnlyDictionary<string, string> environment, params string[] extra)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "Switch.Host.dll");
        ProcessStartInfo info = Switch.Cluster.LaunchPrefix.StartInfo(launchPrefix, "dotnet");
        info.ArgumentList.Add(dll);
        foreach ((string name, string value) in environment) info.Environment[name] = value;
        foreach (string a in new[] { "--data", dataDirectory, "--port", "0", "--admin-port", "0", "--admin-grpc-port", "0" }.Concat(extra)) info.ArgumentList.Add(a);
        var process = new Process { StartInfo = info };
        var running = new SwitchProcess(process);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (running.Output) running.Output.Add(e.Data);
            LogRecord? record = LogRecord.TryParse(e.Data);
            if (record is { Event: "listening" } && record["api"] == "institution") running._listening = new Uri(record["address"]!);
            if (record is { Event: "listening" } && record["api"] == "operator_grpc") running.AdminGrpcAddress = new Uri(record["address"]!);
            // Ready once it says it is running: every start-up line is in by then.
            if (record?.Event == "running" && running._listening is not null) running._address.TrySetResult(running._listening);
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

    /// <summary>Standard output so far, as log records; a line that is not one fails the test.</summary>
    public List<LogRecord> Records()
    {
        string[] lines;
        lock (Output) lines = Output.ToArray();
        return lines.Select(l => LogRecord.TryParse(l) ?? throw new Xunit.Sdk.XunitException($"not a log record: {l}")).ToList();
    }

    /// <summary>The address the switch announced for one of its APIs ("institution", "operator_grpc", "operator_http").</summary>
    public Uri AddressOf(string api) =>
        new(Records().Single(r => r.Event == "listening" && r["api"] == api)["address"]!);

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
        await SignalAsync("TERM");
        return await WaitForExitAsync();
    }

    /// <summary>Sends signal <paramref name="name"/> (TERM); false when it could not (the process is gone).</summary>
    public async Task<bool> SignalAsync(string name)
    {
        using Process kill = Process.Start("kill", [$"-{name}", _process.Id.ToString()])!;
        await kill.WaitForExitAsync();
        return kill.ExitCode == 0;
    }

    /// <summary>SIGSTOP (<paramref name="stop"/>) or SIGCONT by the system call, at once: a test that pins a moment cannot
    /// wait for a kill process to start. False when the process is gone.</summary>
    public bool Stop(bool stop) => Kill(_process.Id, stop ? SigStop : SigCont) == 0;

    private const int SigStop = 19, SigCont = 18; // Linux

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    /// <summary>SIGKILL, as a power cut or the OOM killer stops it: no handler runs, nothing is flushed.</summary>
    public async Task<int> KillAsync()
    {
        _process.Kill(); // kill(2) with SIGKILL on Unix
        return await WaitForExitAsync();
    }

    /// <summary>The output lines so far, safe to read while the process writes.</summary>
    public string[] OutputSnapshot()
    {
        lock (Output) return Output.ToArray();
    }

    public Task<int> WaitForExitAsync() => WaitForExitAsync(60_000);

    /// <summary>The exit code once the process has exited; <see cref="OperationCanceledException"/> after <paramref name="timeoutMs"/>.</summary>
    public async Task<int> WaitForExitAsync(int timeoutMs)
    {
        using var timeout = new CancellationTokenSource(timeoutMs);
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
