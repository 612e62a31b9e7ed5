using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Switch.BankSim;
using Switch.Contracts.V1;
using Switch.Grpc.Client;

namespace Switch.Host.Tests.BankSim;

/// <summary>The stand-alone simulator as a child process: `dotnet Switch.BankSim.dll ...`.</summary>
public sealed partial class BankSimProcessTests
{
    [Fact]
    public async Task The_process_prints_its_address_answers_and_stops_on_sigterm()
    {
        using var process = Start("--port", "0", "--latency", "fixed:1", "--seed", "7");
        try
        {
            Uri address = await ReadAddressAsync(process);
            using (var channel = GrpcChannel.ForAddress(address))
            {
                var response = await channel.UnaryAsync(BankEndpointMethods.Debit, Requests.Debit(1), new CallOptions { Timeout = BankUnderTest.Bound })
                    .WaitAsync(BankUnderTest.Bound);
                Assert.Equal(BankReply.Succeeded, response.Reply);
            }

            if (OperatingSystem.IsWindows()) return; // No SIGTERM there; the finally kills it.
            Assert.Equal(0, Kill(process.Id, Sigterm));
            using var cts = new CancellationTokenSource(BankUnderTest.Bound);
            await process.WaitForExitAsync(cts.Token);
            Assert.Equal(0, process.ExitCode);
            string rest = await process.StandardOutput.ReadToEndAsync().WaitAsync(BankUnderTest.Bound);
            Assert.Contains("stopped", rest);
            Assert.Contains("Executed = 1", rest);
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task With_system_error_rate_one_the_process_fails_every_new_debit_as_a_system_error_and_counts_it()
    {
        using var process = Start("--port", "0", "--system-error-rate", "1");
        try
        {
            Uri address = await ReadAddressAsync(process);
            using (var channel = GrpcChannel.ForAddress(address))
            {
                var response = await channel.UnaryAsync(BankEndpointMethods.Debit, Requests.Debit(1), new CallOptions { Timeout = BankUnderTest.Bound })
                    .WaitAsync(BankUnderTest.Bound);
                Assert.Equal((BankReply.Failed, BankReasons.SystemError), (response.Reply, response.Reason));
                var query = await channel.UnaryAsync(BankEndpointMethods.Query, Requests.Query(1), new CallOptions { Timeout = BankUnderTest.Bound })
                    .WaitAsync(BankUnderTest.Bound);
                Assert.Equal(BankReply.NotFound, query.Reply); // not executed, not recorded
            }

            if (OperatingSystem.IsWindows()) return; // No SIGTERM there; the finally kills it.
            Assert.Equal(0, Kill(process.Id, Sigterm));
            using var cts = new CancellationTokenSource(BankUnderTest.Bound);
            await process.WaitForExitAsync(cts.Token);
            string rest = await process.StandardOutput.ReadToEndAsync().WaitAsync(BankUnderTest.Bound);
            Assert.Contains("Executed = 0", rest);
            Assert.Contains("SystemErrors = 1", rest);
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task A_bad_option_exits_non_zero_naming_it_and_help_explains_each_option()
    {
        using (var bad = Start("--no-answer-rate", "7"))
        {
            string error = await bad.StandardError.ReadToEndAsync().WaitAsync(BankUnderTest.Bound);
            await bad.WaitForExitAsync().WaitAsync(BankUnderTest.Bound);
            Assert.NotEqual(0, bad.ExitCode);
            Assert.Contains("--no-answer-rate", error);
        }
        using var help = Start("--help");
        string text = await help.StandardOutput.ReadToEndAsync().WaitAsync(BankUnderTest.Bound);
        await help.WaitForExitAsync().WaitAsync(BankUnderTest.Bound);
        Assert.Equal(0, help.ExitCode);
        foreach (string option in new[] { "--port", "--latency", "--failure-rate", "--no-answer-rate", "--system-error-rate", "--capacity-tps", "--seed" })
            Assert.Contains(option, text);
    }

    private static Process Start(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(SimulatorDll());
        foreach (string arg in args) info.ArgumentList.Add(arg);
        return Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start.");
    }

    private static async Task<Uri> ReadAddressAsync(Process process)
    {
        while (await process.StandardOutput.ReadLineAsync().WaitAsync(BankUnderTest.Bound) is { } line)
        {
            if (AddressPattern().Match(line) is { Success: true } match) return new Uri(match.Groups[1].Value);
        }
        string error = await process.StandardError.ReadToEndAsync().WaitAsync(BankUnderTest.Bound);
        throw new InvalidOperationException($"The simulator ended without printing its address: {error}");
    }

    /// <summary>The simulator's own build output (it has its runtimeconfig), else the copy beside the tests if runnable.</summary>
    private static string SimulatorDll()
    {
        string beside = typeof(BankSimulatorServer).Assembly.Location;
        if (File.Exists(Path.ChangeExtension(beside, ".runtimeconfig.json"))) return beside;
        // tests/Switch.Host.Tests/bin/<Configuration>/<tfm>/ -> adapters/Switch.BankSim/bin/<Configuration>/<tfm>/
        var tfm = new DirectoryInfo(Path.GetDirectoryName(beside)!);
        string configuration = tfm.Parent!.Name;
        for (var dir = tfm; dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "adapters", "Switch.BankSim", "bin", configuration, tfm.Name, "Switch.BankSim.dll");
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException("Switch.BankSim.dll with its runtimeconfig was not found; build adapters/Switch.BankSim.");
    }

    [GeneratedRegex(@"listening on (http://\S+)")]
    private static partial Regex AddressPattern();

    private const int Sigterm = 15;

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
