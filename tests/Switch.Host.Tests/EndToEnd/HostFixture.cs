using Switch.Contracts.V1;
using Switch.Engine.Business;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host;
using Switch.Host.Banks;
using Switch.Host.Configuration;

namespace Switch.Host.Tests.EndToEnd;

/// <summary>A real switch host on loopback (port 0), its journal in a temporary directory, simulated banks.</summary>
public sealed class RunningSwitch : IAsyncDisposable
{
    public const string AlipayKey = "demo-alipay-key";
    public const string TenpayKey = "demo-tenpay-key";

    private RunningSwitch(SwitchHost host, HostConfig config, string dataDirectory, bool ownsDirectory)
    {
        Host = host;
        Config = config;
        DataDirectory = dataDirectory;
        _ownsDirectory = ownsDirectory;
        Channel = GrpcChannel.ForAddress(host.InstitutionAddress);
    }

    private readonly bool _ownsDirectory;
    public SwitchHost Host { get; }
    public HostConfig Config { get; }
    public string DataDirectory { get; }
    public GrpcChannel Channel { get; }

    /// <summary>The embedded default configuration, made quick and deterministic for tests unless told otherwise.</summary>
    public static HostConfig TestConfig(string dataDirectory, SimulatedBanksConfig? banks = null, Func<RulesConfig, RulesConfig>? rules = null)
    {
        HostConfig config = HostConfig.EmbeddedDefault();
        // Small tables: a test run holds dozens of switches in one process at once (test classes run in parallel), and
        // the defaults (rings of 65,536 slots of about 0.5 KiB, the archive's two 32 MiB pages, index and filter
        // allocated at start, a parked table of banks x 65,536 slots) are about 1 GiB of GC heap each: 277 MiB with the
        // tables below while the rings and archive kept their defaults, 149 MiB with these.
        RulesConfig r = config.Switch.Rules with { TransactionCapacity = 1 << 14, MaxTrackedAccounts = 1 << 14, MaxUnresolvedPerBank = 1 << 14 };
        return config with
        {
            DataDirectory = dataDirectory,
            InstitutionPort = 0,
            AdminPort = 0,
            AdminGrpcPort = 0,
            ProbeIntervalMs = 100,
            ShutdownGraceMs = 2_000,
            InputRingSize = 1 << 14,
            OutputRingSize = 1 << 14,
            Archive = new ArchiveConfig { IndexMiB = 1, MemoryMiB = 2, PageMiB = 1, FilterMiB = 1 },
            SimulatedBanks = banks ?? new SimulatedBanksConfig { Latency = "0", FailureRate = 0 },
            Switch = config.Switch with { Rules = rules is null ? r : rules(r) },
        };
    }

    /// <summary>The configuration with one bank's endpoints served at these addresses (stand-alone simulators the test
    /// controls), in order, with equal weights.</summary>
    public static HostConfig WithBankAt(HostConfig config, int bankCode, params Uri[] addresses) => config with
    {
        Switch = config.Switch with
        {
            Banks = config.Switch.Banks.Select(b => b.Code != bankCode ? b : b with
            {
                Endpoints = b.Endpoints.Take(addresses.Length).Select((e, i) =>
                    e with { Address = addresses[i].ToString(), WeightBps = 10_000 / addresses.Length + (i == 0 ? 10_000 % addresses.Length : 0) }).ToList(),
            }).ToList(),
        },
    };

    public static async Task<RunningSwitch> StartAsync(HostConfig? config = null, string? dataDirectory = null)
    {
        bool owns = dataDirectory is null;
        dataDirectory ??= Path.Combine(Path.GetTempPath(), "switch-host-test-" + Guid.NewGuid().ToString("N"));
        config ??= TestConfig(dataDirectory);
        config = config with { DataDirectory = dataDirectory };
        SwitchHost host = await SwitchHost.StartAsync(config);
        var running = new RunningSwitch(host, config, dataDirectory, owns);
        await running.WaitForSimulatedBanksAsync();
        return running;
    }

    /// <summary>
    /// Waits (bounded) until the link to every in-process simulated endpoint has probed it and told the engine it is up.
    /// The engine starts believing every endpoint reachable, so a payment sent at once usually goes through; but on a
    /// loaded machine a first probe may fail, and a test's first payment then meets BANK_UNAVAILABLE (seen once in CI).
    /// </summary>
    private async Task WaitForSimulatedBanksAsync()
    {
        var simulated = Host.Simulators.Select(s => s.Address).ToHashSet();
        EndpointLink[] links = Host.Connector.Links.Where(l => simulated.Contains(l.Address)).ToArray();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!links.All(l => l.HasReported && l.IsUp))
        {
            if (DateTime.UtcNow > deadline)
            {
                await DisposeAsync();
                string down = string.Join(", ", links.Where(l => !(l.HasReported && l.IsUp)).Select(l => $"{l.BankCode:D3} {l.Name}"));
                throw new TimeoutException($"simulated endpoints not up 30 s after the switch started: {down}");
            }
            await Task.Delay(10);
        }
    }

    public static CallOptions As(string apiKey, int timeoutMs = 10_000) => new()
    {
        Headers = new Metadata().Add(InstitutionMethods.ApiKeyHeader, apiKey),
        Timeout = TimeSpan.FromMilliseconds(timeoutMs),
    };

    public static TransferRequest Payment(string orderNo, long amountFen, string bank = "102", string account = "6222020200112233", string echo = "") => new()
    {
        OrderNo = orderNo, AmountFen = amountFen, Currency = "CNY", Bank = bank, Account = account, Echo = echo,
    };

    public Task<TransferResult> PayAsync(TransferRequest request, string apiKey = AlipayKey) =>
        Channel.UnaryAsync(InstitutionMethods.AgreementPayment, request, As(apiKey));

    /// <summary>Stops the host (as on SIGTERM) but keeps the data directory, for a restart.</summary>
    public async Task StopAsync()
    {
        Channel.Dispose();
        await Host.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        if (_ownsDirectory)
        {
            try { Directory.Delete(DataDirectory, recursive: true); } catch (IOException) { }
        }
    }
}

/// <summary>A test class's own data directory under the temporary directory, deleted after it.</summary>
public abstract class WithDataDirectory : IDisposable
{
    protected string Data { get; } = Path.Combine(Path.GetTempPath(), "switch-host-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(Data, recursive: true); } catch (IOException) { }
    }
}
