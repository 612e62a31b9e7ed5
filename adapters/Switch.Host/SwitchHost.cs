using System.Net;
using Switch.BankSim;
using Switch.Engine.Business;
using Switch.Engine.Clearing;
using Switch.Engine.Pipeline;
using Switch.Grpc.Server;
using Switch.Host.Banks;
using Switch.Host.Clearing;
using Switch.Host.Configuration;
using Switch.Host.Gateway;

namespace Switch.Host;

/// <summary>
/// The switch process, assembled: simulated banks (for endpoints addressed "sim"), the engine recovered from
/// the data directory, the bank connector, and the institution gateway on its port. Stopping reverses it:
/// stop accepting, let in-flight bank work finish (bounded), close the journal.
/// </summary>
public sealed class SwitchHost : IAsyncDisposable
{
    private readonly HostConfig _config;
    private readonly List<BankSimulatorServer> _simulators;
    private readonly GrpcServer _server;
    private readonly BankConnector _connector;
    private int _stopped;

    private readonly ClearingRecorder _clearing;

    private SwitchHost(HostConfig config, List<BankSimulatorServer> simulators, SwitchEngine engine, BankConnector connector,
        GrpcServer server, AnswerRouter answers, OutcomeFeeds feeds, ClearingRecorder clearing)
    {
        _config = config;
        _simulators = simulators;
        Engine = engine;
        _connector = connector;
        _server = server;
        Answers = answers;
        Feeds = feeds;
        _clearing = clearing;
        Clearing = new ClearingDesk(engine, answers, clearing, config.DataDirectory);
    }

    public SwitchEngine Engine { get; }
    public AnswerRouter Answers { get; }
    public OutcomeFeeds Feeds { get; }
    /// <summary>Clearing batches: close, settlement files, breaks (the operator API exposes these).</summary>
    public ClearingDesk Clearing { get; }
    public Uri InstitutionAddress => _server.Address;
    public IReadOnlyList<BankSimulatorServer> Simulators => _simulators;
    public BankConnector Connector => _connector;

    public static async Task<SwitchHost> StartAsync(HostConfig config)
    {
        config.Validate();
        var simulators = new List<BankSimulatorServer>();
        SwitchEngine? engine = null;
        BankConnector? connector = null;
        ClearingRecorder? clearing = null;
        try
        {
            // Simulated endpoints first, so the connector finds them listening.
            var simulated = new Dictionary<(int Bank, string Endpoint), Uri>();
            for (int b = 0; b < config.Switch.Banks.Count; b++)
            {
                BankConfig bank = config.Switch.Banks[b];
                for (int e = 0; e < bank.Endpoints.Count; e++)
                {
                    string address = bank.Endpoints[e].Address;
                    if (!string.IsNullOrEmpty(address) && address != HostConfig.SimulatedAddress) continue;
                    SimulatedBanksConfig sim = config.SimulatedBanks!;
                    BankSimulatorServer server = await BankSimulatorServer.StartAsync(new BankSimulatorOptions
                    {
                        Port = 0,
                        Latency = LatencyModel.Parse(sim.Latency),
                        FailureRate = sim.FailureRate,
                        NoAnswerRate = sim.NoAnswerRate,
                        CapacityTps = sim.CapacityTps,
                        Seed = sim.Seed + b * 16 + e,
                        BankCodes = [bank.Code],
                    });
                    simulators.Add(server);
                    simulated[(bank.Code, bank.Endpoints[e].Name)] = server.Address;
                }
            }

            var answers = new AnswerRouter();
            var feeds = new OutcomeFeeds(config.Switch.Institutions.Count, config.FeedRetentionPerInstitution);
            // Clearing records and files are derived from the journal like the feeds: rebuilt by the same replay.
            clearing = new ClearingRecorder(config.DataDirectory);
            var dispatcher = new OutputDispatcher(answers, feeds, clearing);
            engine = SwitchEngine.Start(new EngineOptions
            {
                DataDirectory = config.DataDirectory,
                TickIntervalMs = config.TickIntervalMs,
                ReplaySink = clearing.ReplaySink(feeds.ReplaySink()),
                Wait = WaitKind.Blocking,
            }, config.Switch, dispatcher);

            // The journal's configuration decides the participants (replay must match); addresses are not
            // business state, so they come from the configuration given now, found by bank code and endpoint name.
            SwitchConfig running = engine.Logic.Config;
            Uri AddressOf(int b, int e)
            {
                BankConfig bank = running.Banks[b];
                string name = bank.Endpoints[e].Name;
                if (simulated.TryGetValue((bank.Code, name), out Uri? sim)) return sim;
                EndpointConfig? given = config.Switch.Banks.FirstOrDefault(x => x.Code == bank.Code)?.Endpoints.FirstOrDefault(x => x.Name == name);
                if (given is null || string.IsNullOrEmpty(given.Address) || given.Address == HostConfig.SimulatedAddress)
                {
                    throw new ConfigException($"configuration: bank {bank.Code} endpoint '{name}' is in the journal but has no address in the configuration");
                }
                return new Uri(given.Address);
            }
            connector = new BankConnector(engine, running, AddressOf, config.MaxQueuedPerEndpoint, config.ProbeIntervalMs);
            dispatcher.Attach(connector);

            var auth = new ApiKeyAuthenticator(running);
            var gateway = new InstitutionGateway(engine, auth, answers, feeds, config.MaxInFlightPerStream);
            var router = gateway.Map(new GrpcRouter(new GrpcServerOptions { MaxReceiveMessageBytes = MaxInstitutionMessageBytes }));
            GrpcServer grpc = await GrpcServer.StartAsync(router, new GrpcEndpointOptions
            {
                Address = IPAddress.Parse(config.ListenAddress),
                Port = config.InstitutionPort,
            });
            return new SwitchHost(config, simulators, engine, connector, grpc, answers, feeds, clearing);
        }
        catch
        {
            if (connector is not null) await connector.DisposeAsync();
            engine?.Dispose();
            clearing?.Dispose();
            foreach (BankSimulatorServer s in simulators) await s.DisposeAsync();
            throw;
        }
    }

    /// <summary>A request is a few hundred bytes; anything near this is abuse (RESOURCE_EXHAUSTED).</summary>
    public const int MaxInstitutionMessageBytes = 16 * 1024;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
        await _server.DisposeAsync(); // stop accepting; calls in progress end
        long deadline = Environment.TickCount64 + _config.ShutdownGraceMs;
        while (_connector.Outstanding > 0 && Environment.TickCount64 < deadline)
        {
            await Task.Delay(10); // let bank answers already on their way come in and be journaled
        }
        Engine.WaitUntilIdle(_config.ShutdownGraceMs);
        await _connector.DisposeAsync();
        Engine.Dispose(); // drains, commits, closes the journal
        _clearing.Dispose(); // writes the files of batches already closed
        foreach (BankSimulatorServer s in _simulators) await s.DisposeAsync();
    }
}
