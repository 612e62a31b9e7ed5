using System.Net;
using Switch.Grpc.Server;

namespace Switch.BankSim;

/// <summary>
/// One simulated bank endpoint listening on loopback: the in-process form the switch host and tests use.
/// <code>
/// await using var bank = await BankSimulatorServer.StartAsync(new BankSimulatorOptions { Latency = LatencyModel.Parse("fixed:2") });
/// using var channel = GrpcChannel.ForAddress(bank.Address);   // ... later: bank.Ledger.Snapshot()
/// </code>
/// </summary>
public sealed class BankSimulatorServer : IAsyncDisposable
{
    private readonly GrpcServer _server;
    private readonly CancellationTokenSource _stopping;
    private int _disposed;

    private readonly SimulatedBank _bank;

    private BankSimulatorServer(GrpcServer server, CancellationTokenSource stopping, SimulatedBank bank)
    {
        _server = server;
        _stopping = stopping;
        _bank = bank;
    }

    /// <summary>The bound address, e.g. http://127.0.0.1:7101 (the real port when 0 was asked for).</summary>
    public Uri Address => _server.Address;

    /// <summary>The behaviour now (the options started with, as changed by <see cref="Reconfigure"/>).</summary>
    public BankSimulatorOptions Options => _bank.Options;

    /// <summary>The bank's own record, for comparing with the switch's.</summary>
    public BankLedger Ledger => _bank.Ledger;

    /// <summary>Debits and credits executed through this endpoint (the ledger counts the whole bank's when shared).</summary>
    public long ExecutedHere => _bank.ExecutedHere;

    /// <summary>
    /// Changes Latency and the rates while serving, from the next request on (connections stay up): an endpoint
    /// turning slow, failing or silent, and healing. Any other field changed is a BankOptionException naming it.
    /// </summary>
    public void Reconfigure(Func<BankSimulatorOptions, BankSimulatorOptions> change)
    {
        ArgumentNullException.ThrowIfNull(change);
        _bank.Reconfigure(change(_bank.Options));
    }

    /// <summary>Validates the options (ArgumentException naming the field) and starts listening on its address (127.0.0.1 unless told).</summary>
    /// <param name="onHandlerException">Told about handler failures the peer saw only as UNKNOWN; null ignores them.</param>
    /// <param name="ledger">The bank's books, when this endpoint shares them (another data centre of the bank, or this
    /// endpoint restarted: a bank's front end going down loses no record); null starts empty books of its own.</param>
    public static async Task<BankSimulatorServer> StartAsync(BankSimulatorOptions options,
        Action<string, Exception>? onHandlerException = null, CancellationToken cancellationToken = default, BankLedger? ledger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        ledger ??= new BankLedger(options.MaxLedgerEntries);
        var stopping = new CancellationTokenSource();
        try
        {
            var bank = new SimulatedBank(options, ledger, stopping.Token);
            var router = new BankEndpointService(bank).Map(new GrpcRouter(new GrpcServerOptions { OnHandlerException = onHandlerException }));
            var server = await GrpcServer.StartAsync(router, new GrpcEndpointOptions { Address = options.ListenAddress, Port = options.Port }, cancellationToken)
                .ConfigureAwait(false);
            return new BankSimulatorServer(server, stopping, bank);
        }
        catch
        {
            stopping.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Starts one endpoint per options entry (e.g. a bank's two data centres); all or none: on a failure the
    /// ones already started are stopped.
    /// </summary>
    public static async Task<IReadOnlyList<BankSimulatorServer>> StartManyAsync(IEnumerable<BankSimulatorOptions> options,
        Action<string, Exception>? onHandlerException = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var started = new List<BankSimulatorServer>();
        try
        {
            foreach (var entry in options)
                started.Add(await StartAsync(entry, onHandlerException, cancellationToken).ConfigureAwait(false));
            return started;
        }
        catch
        {
            foreach (var server in started) await server.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Starts <paramref name="count"/> endpoints alike but for their seeds (Seed, Seed+1, ...), each on a free port.</summary>
    public static Task<IReadOnlyList<BankSimulatorServer>> StartManyAsync(int count, BankSimulatorOptions options,
        Action<string, Exception>? onHandlerException = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentNullException.ThrowIfNull(options);
        return StartManyAsync(Enumerable.Range(0, count).Select(i => options with { Port = 0, Seed = unchecked(options.Seed + i) }),
            onHandlerException, cancellationToken);
    }

    /// <summary>Ends held calls and streams (UNAVAILABLE), then stops the listener. The ledger stays readable.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stopping.Cancel();
        try { await _server.DisposeAsync().ConfigureAwait(false); }
        finally { _stopping.Dispose(); }
    }
}
