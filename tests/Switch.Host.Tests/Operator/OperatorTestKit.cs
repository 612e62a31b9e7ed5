using System.Net;
using System.Net.Sockets;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Tests.EndToEnd;
using Switch.Operator;

namespace Switch.Host.Tests.Operator;

/// <summary>What one switchctl run printed and returned.</summary>
public sealed record CtlRun(int ExitCode, string Out, string Err)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Out}\n--- stderr\n{Err}";
}

/// <summary>A real switch with its admin ports on port 0, and switchctl run in-process against it.</summary>
public static class OperatorTestKit
{
    public const string OperatorKey = "demo-operator-key";
    public const string ViewerKey = "demo-viewer-key";
    /// <summary>Generous: a slow, shared 2-core machine; a run that takes this long is a hang, not slowness.</summary>
    public const int RunTimeoutMs = 60_000;

    /// <summary>The bank deadline and the payers' deadline are far beyond what a simulated bank with no latency needs, so
    /// a starved machine (load average 30 on 2 cores happens) delays payments without turning them "unknown".</summary>
    public const int BankTimeoutMs = 30_000;
    public const int PaymentTimeoutMs = 60_000;

    public static Task<RunningSwitch> StartSwitchAsync()
    {
        // StartAsync gives the switch a temporary data directory of its own and deletes it on dispose.
        var config = RunningSwitch.TestConfig("", rules: r => r with { BankTimeoutMs = BankTimeoutMs }) with { AdminPort = 0, AdminGrpcPort = 0 };
        return RunningSwitch.StartAsync(config);
    }

    /// <summary>An agreement payment by ALIPAY that must succeed.</summary>
    public static async Task PayAsync(RunningSwitch sw, TransferRequest request)
    {
        TransferResult paid = await sw.Channel.UnaryAsync(InstitutionMethods.AgreementPayment, request, RunningSwitch.As(RunningSwitch.AlipayKey, PaymentTimeoutMs));
        Assert.True(paid.Status == TransactionStatus.Succeeded, $"{request.OrderNo}: {paid}");
    }

    /// <summary>Runs switchctl with --admin and --key set and no environment (the tests' own variables never leak in).</summary>
    public static Task<CtlRun> CtlAsync(RunningSwitch sw, string key, params string[] args) =>
        RawAsync(["--admin", sw.Host.AdminGrpcAddress.ToString(), "--key", key, .. args]);

    public static async Task<CtlRun> RawAsync(string[] args, Action<string, CancellationTokenSource>? onOutput = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        using var cts = new CancellationTokenSource(RunTimeoutMs);
        var stdout = new WatchedWriter(text => onOutput?.Invoke(text, cts));
        var stderr = new StringWriter();
        int exit = await SwitchCtl.RunAsync(args, stdout, stderr, name => environment?.GetValueOrDefault(name), cts.Token);
        return new CtlRun(exit, stdout.ToString(), stderr.ToString());
    }

    /// <summary>An address where nothing listens: a port just bound and released.</summary>
    public static string ClosedAddress()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return $"http://127.0.0.1:{port}";
    }

    /// <summary>The bank as the switch's gRPC admin API shows it (not through the CLI under test).</summary>
    public static async Task<BankView> BankAsync(RunningSwitch sw, string bank)
    {
        using var channel = GrpcChannel.ForAddress(sw.Host.AdminGrpcAddress);
        ListBanksReply reply = await channel.UnaryAsync(AdminMethods.ListBanks, new ListBanksRequest { Bank = bank }, AsOperator(OperatorKey));
        return Assert.Single(reply.Banks);
    }

    public static CallOptions AsOperator(string key) => new()
    {
        Headers = new Metadata().Add(AdminMethods.OperatorKeyHeader, key),
        Timeout = TimeSpan.FromSeconds(60),
    };

    public static int[] Weights(BankView bank) => bank.Endpoints.Select(e => e.WeightBps).ToArray();

    /// <summary>Polls a condition every 50 ms for up to <paramref name="timeoutMs"/>; never a fixed sleep.</summary>
    public static async Task<bool> EventuallyAsync(Func<Task<bool>> condition, int timeoutMs = 30_000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (true)
        {
            if (await condition()) return true;
            if (DateTime.UtcNow > deadline) return false;
            await Task.Delay(50);
        }
    }

    /// <summary>A StringWriter that tells the test what was written, so a follow or a watch can be stopped on content, not on time.</summary>
    private sealed class WatchedWriter(Action<string> onWrite) : StringWriter
    {
        private readonly object _gate = new();

        public override void Write(char value)
        {
            lock (_gate) base.Write(value);
        }

        public override void Write(string? value)
        {
            lock (_gate) base.Write(value);
            onWrite(ToString());
        }

        public override void WriteLine(string? value)
        {
            lock (_gate) base.WriteLine(value);
            onWrite(ToString());
        }

        public override string ToString()
        {
            lock (_gate) return base.ToString();
        }
    }
}
