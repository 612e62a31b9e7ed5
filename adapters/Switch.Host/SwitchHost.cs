using System.Net;
using Prometheus;
using Switch.BankSim;
using Switch.Clearing;
using Switch.Engine.Business;
using Switch.Engine.Client;
using Switch.Engine.Pipeline;
using Switch.Grpc.Server;
using Switch.Grpc.Tls;
using Switch.Host.Admin;
using Switch.Host.Banks;
using Switch.Host.Clearing;
using Switch.Host.Configuration;
using Switch.Host.Gateway;
using Switch.Journal;

namespace Switch.Host;

/// <summary>
/// The switch process, assembled: simulated banks (for endpoints addressed "sim"), the engine recovered from
/// the data directory, the bank connector, the institution gateway on its port, and the operator API on the admin
/// ports (HTTP/1.1: dashboard, JSON API, /metrics; h2c: gRPC), all three over TLS when the configuration has a tls
/// block. Stopping reverses it: stop accepting, let in-flight bank work finish (bounded), close the journal.
/// </summary>
public sealed class SwitchHost : IAsyncDisposable
{
    private readonly HostConfig _config;
    private readonly List<BankSimulatorServer> _simulators;
    private readonly GrpcServer _server;
    private readonly BankConnector _connector;
    private readonly AdminParts _admin;
    private readonly TlsMaterial? _tls;
    private readonly NodeHealth _health;
    private readonly NodeRole _role;
    private readonly Log _log;
    private int _stopped;

    private readonly ClearingRecorder _clearing;
    private readonly OutputDispatcher _dispatcher;

    /// <summary>The operator side: its servers, the views they serve, and the success-rate watch's loop.</summary>
    private sealed record AdminParts(GrpcServer Grpc, AdminWebServer Web, AuditLog Audit, LiveStats Stats, SuccessRateWatch? Watch,
        CancellationTokenSource StopWatch, Task WatchLoop, StallWatchdog? Stalls)
    {
        /// <summary>The ports following the node's role; ended when the host stops.</summary>
        public IDisposable? RoleObservation { get; set; }
    }

    private SwitchHost(HostConfig config, List<BankSimulatorServer> simulators, SwitchEngine engine, BankConnector connector,
        GrpcServer server, EngineClient client, OutputDispatcher dispatcher, OutcomeFeeds feeds, ClearingRecorder clearing, ClearingDesk desk, AdminParts admin, TlsMaterial? tls,
        NodeHealth health, NodeRole role, Log log)
    {
        _log = log;
        _health = health;
        _role = role;
        _tls = tls;
        _config = config;
        _simulators = simulators;
        Engine = engine;
        _connector = connector;
        _server = server;
        EngineClient = client;
        _dispatcher = dispatcher;
        Feeds = feeds;
        _clearing = clearing;
        Clearing = desk;
        _admin = admin;
    }

    public SwitchEngine Engine { get; }
    /// <summary>The adapters' one way into the engine (and the matching of its answers to callers).</summary>
    public EngineClient EngineClient { get; }
    public AnswerRouter Answers => EngineClient.Answers;
    /// <summary>Bank requests the engine emitted with no connector to take them (0: the host attaches it before the engine runs).</summary>
    public long UndeliverableBankRequests => _dispatcher.Undeliverable;
    public OutcomeFeeds Feeds { get; }
    /// <summary>Clearing batches: close, settlement files, breaks (the operator API exposes these).</summary>
    public ClearingDesk Clearing { get; }
    public Uri InstitutionAddress => _server.Address;
    /// <summary>The admin HTTP/1.1 address: dashboard at "/", JSON API under /api/v1/, /metrics.</summary>
    public Uri AdminAddress => _admin.Web.Address;
    /// <summary>The admin gRPC (h2c) address: switch.v1.AdminService.</summary>
    public Uri AdminGrpcAddress => _admin.Grpc.Address;
    /// <summary>The audit log and the routing view built from it.</summary>
    public AuditLog Audit => _admin.Audit;
    public LiveStats Stats => _admin.Stats;
    /// <summary>Null when the watch is disabled in the configuration.</summary>
    public SuccessRateWatch? SuccessRateWatch => _admin.Watch;
    public IReadOnlyList<BankSimulatorServer> Simulators => _simulators;
    /// <summary>Serving, stopping or faulted: what the health service and /readyz answer.</summary>
    public NodeHealth Health => _health;
    /// <summary>Primary (a single switch's only role) or standby: what the leadership sets; a standby refuses calls NOT_PRIMARY.</summary>
    public NodeRole Role => _role;
    public BankConnector Connector => _connector;
    /// <summary>The server certificate on all three ports, or null when they are cleartext.</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2? Certificate => _tls?.Certificate;
    /// <summary>Client certificates mapped to institutions (0 without mutual TLS).</summary>
    public int MappedClientCertificates { get; private init; }
    /// <summary>The institution port's gateway: its limiter counts each institution's streams, connections and queued answers.</summary>
    public InstitutionGateway Gateway { get; private init; } = null!;
    /// <summary>Starts the writeback of the outcome feeds' and clearing records' appends (<see cref="HostConfig.WriteBehindBytes"/>).</summary>
    public WriteBehind WriteBehind { get; private init; } = null!;

    /// <param name="log">Where the host logs (reachability changes, clearing alerts, failed handlers); the console by default.</param>
    /// <param name="listening">Called once the three ports listen, before the journal is recovered (their addresses are
    /// then known: health and reflection answer, everything else is UNAVAILABLE until recovery ends).</param>
    /// <param name="role">The node's role, changed by its owner at any time; null: always the primary.</param>
    /// <param name="standbyGenesis">A cluster's standby: the primary's record 0, which an empty journal begins with.</param>
    /// <param name="mayAct">A cluster's node: whether its leadership may still be trusted, read per batch (<see cref="Engine.Replication.ReplicationOptions.MayAct"/>).</param>
    /// <param name="mayDegrade">A cluster's node: asked before synchronous replication degrades (<see cref="Engine.Replication.ReplicationOptions.MayDegrade"/>).</param>
    /// <remarks>A single switch runs at once. A cluster's node (<see cref="HostConfig.Cluster"/>) is left recovered, not
    /// running: its owner (Cluster.ClusterNode) calls <see cref="RunAsPrimary"/> or <see cref="Follow"/>.</remarks>
    public static async Task<SwitchHost> StartAsync(HostConfig config, Log? log = null, Action<ListeningPorts>? listening = null, NodeRole? role = null,
        byte[]? standbyGenesis = null, Func<bool>? mayDegrade = null, Func<bool>? mayAct = null)
    {
        log ??= Log.Console;
        role ??= new NodeRole();
        config.Validate();
        var simulators = new List<BankSimulatorServer>();
        SwitchEngine? engine = null;
        BankConnector? connector = null;
        ClearingRecorder? clearing = null;
        OutcomeFeeds? feeds = null;
        WriteBehind? writeBehind = null;
        GrpcServer? grpc = null;
        GrpcServer? adminGrpc = null;
        AdminWebServer? adminWeb = null;
        // Read first: a bad file stops the start before anything listens or the journal opens.
        TlsMaterial? tls = config.Tls is null ? null : TlsMaterial.Load(config.Tls, Environment.GetEnvironmentVariable);
        var health = new NodeHealth();
        try
        {
            // Simulated endpoints first, so the connector finds them listening.
            var simulated = new Dictionary<(int Bank, string Endpoint), Uri>();
            for (int b = 0; b < config.Switch.Banks.Count; b++)
            {
                BankConfig bank = config.Switch.Banks[b];
                // A bank's endpoints front one set of books, as a real bank's data centres do: the switch may ask any
                // of them about a transaction another one took (follow-ups rotate), and "no record" must mean none.
                var books = new BankLedger(new BankSimulatorOptions().MaxLedgerEntries);
                for (int e = 0; e < bank.Endpoints.Count; e++)
                {
                    string address = bank.Endpoints[e].Address;
                    if (!string.IsNullOrEmpty(address) && address != HostConfig.SimulatedAddress) continue;
                    SimulatedBanksConfig sim = config.SimulatedBanks!;
                    BankSimulatorServer server = await BankSimulatorServer.StartAsync(sim.EndpointOptions(b, e, bank.Code), ledger: books);
                    simulators.Add(server);
                    simulated[(bank.Code, bank.Endpoints[e].Name)] = server.Address;
                }
            }

            // Listen first, so a load balancer or probe sees a recovering switch (NOT_SERVING, /healthz alive) rather than
            // a closed port during a long replay; the methods are served once the engine runs.
            Action<string, Exception> handlerFailed = (method, e) =>
                log.Error("handler_failed", "a call handler failed", ("method", method), ("error", $"{e.GetType().Name}: {e.Message}"));
            var institutionPort = new PortServices(config.MaxMessageBytes, config.CompressResponses, handlerFailed, health.Institution,
                Contracts.V1.InstitutionReflection.Descriptor.Services);
            var adminPort = new PortServices(MaxAdminMessageBytes, config.CompressResponses, handlerFailed, health.Admin,
                Contracts.V1.AdminReflection.Descriptor.Services);
            grpc = await GrpcServer.StartAsync(institutionPort.Recovering(), new GrpcEndpointOptions
            {
                Address = IPAddress.Parse(config.ListenAddress),
                Port = config.InstitutionPort,
                Tls = tls?.InstitutionPort(config.Tls!),
                MaxConnections = config.Limits.MaxConnections,
            });
            adminGrpc = await GrpcServer.StartAsync(adminPort.Recovering(),
                new GrpcEndpointOptions { Address = IPAddress.Parse(config.ListenAddress), Port = config.AdminGrpcPort, Tls = tls?.AdminPort() });
            adminWeb = await AdminWebServer.StartAsync(IPAddress.Parse(config.ListenAddress), config.AdminPort, tls?.AdminPort(), health, role,
                new DashboardAssets(typeof(SwitchHost).Assembly));
            listening?.Invoke(new ListeningPorts(grpc.Address, adminWeb.Address, adminGrpc.Address));

            var answers = new AnswerRouter();
            // The feeds on disk are kept across restarts and caught up by the replay; clearing records and files are
            // derived from the journal too: rebuilt by the same replay.
            // Both are appended through the page cache: their dirty pages go back as they grow, not in the kernel's bursts.
            writeBehind = new WriteBehind(config.WriteBehindBytes);
            feeds = new OutcomeFeeds(config.DataDirectory, config.OutcomeFeed.SegmentRecords, config.OutcomeFeed.RetentionUs, writeBehind);
            clearing = new ClearingRecorder(config.DataDirectory, log, config.ClearingRecordsRetentionDays * 86_400_000_000L, writeBehind);
            // The audit log and routing view too: built from the audit outputs, replayed and then live.
            var audit = new AuditLog();
            var dispatcher = new OutputDispatcher(answers, feeds, clearing, audit);
            var members = new MemberStats(); // per-member figures: from the replayed outputs, then the live ones
            // A snapshot holds these views as they were at its mark: a start from it takes them back, then replays the rest.
            var views = new SnapshotViews(feeds, clearing, audit, members);
            var snapshotStatus = new SnapshotStatus();
            // /metrics: one registry per switch (never the library's global one: tests run several switches in a process).
            CollectorRegistry registry = Metrics.NewCustomRegistry();
            IMetricFactory metrics = MetricsWriter.Factory(registry);
            // Recover first (no thread runs): the replay feeds the derived views through the dispatcher's one routing; then
            // the host attaches its parts, and only then does the engine run, so no output finds a part missing.
            var engineOptions = new EngineOptions
            {
                CommitObserver = new JournalMetrics(metrics),
                DataDirectory = config.DataDirectory,
                TickIntervalMs = config.TickIntervalMs,
                InputRingSize = config.InputRingSize,
                OutputRingSize = config.OutputRingSize,
                Clock = config.Clock ?? SystemClock.Instance,
                // A long recovery says how far it is: events applied, journal position, rate.
                ReplayProgressIntervalMs = config.RecoveryLogIntervalMs,
                OnReplayProgress = p => log.Info("recovery_progress", "replaying the journal",
                    ("events", p.Events), ("records", p.Records), ("position", p.Address), ("elapsed_ms", p.ElapsedMs),
                    ("events_per_second", p.ElapsedMs == 0 ? 0 : p.Events * 1000 / p.ElapsedMs)),
                Archive = config.Archive.ToSizing(),
                // A cluster keeps its whole journal live: a standby that rejoins may need any record (joining from a
                // snapshot is not built), so nothing is retired to journal-archive/.
                Snapshots = config.Cluster is null ? config.Snapshots.ToOptions() : config.Snapshots.ToOptions() with { RetireJournal = false },
                RestoreViews = views.Restore,
                OnSnapshot = r =>
                {
                    snapshotStatus.Published(r, SystemClock.Instance.NowUs());
                    log.Info("snapshot_taken", $"snapshot taken ({r.Trigger})", ("position", r.Position.RecordNo),
                        ("events", r.Position.EventsApplied), ("bytes", r.Bytes), ("pause_us", r.PauseUs),
                        ("pause_logic_us", r.Pause.LogicStateUs), ("pause_archive_us", r.Pause.ArchiveStateUs),
                        ("pause_checkpoint_start_us", r.Pause.CheckpointStartUs),
                        ("pause_mark_us", r.Pause.MarkUs), ("pause_writer_start_us", r.Pause.WriterStartUs), ("pause_gcs", r.Pause.GarbageCollections), ("write_ms", r.WriteMs),
                        ("archive_checkpoint_ms", r.ArchiveCheckpointMs), ("archive_fold_over_bytes", r.ArchiveFoldOverBytes), ("views_ms", r.ViewsMs), ("paced_ms", r.PacedMs), ("pages_copied_aside", r.PagesCopiedAside), ("aside_allocated_pages", r.PagesAllocatedAside), ("aside_allocated_bytes", r.BytesAllocatedAside),
                        ("published_ms", r.PublishedMs), ("retire_ms", r.RetireMs),
                        ("journal_archive_files_deleted", r.JournalArchiveFilesDeleted),
                        ("trigger", r.Trigger), ("file", r.Path));
                },
                OnSnapshotFailed = e => log.Alert("snapshot_failed", "a snapshot could not be taken; the journal holds everything, the next start replays more",
                    ("error", $"{e.GetType().Name}: {e.Message}")),
                ReplaySink = members.ReplaySink(dispatcher.ReplaySink()),
                Wait = WaitKind.Blocking,
                CrashPoint = config.CrashPoint is null ? null : config.CrashPoint with
                {
                    Announce = (first, last, appended) => log.Warn("test_crash_point", $"test crash point {config.CrashPoint}: SIGKILL now",
                        ("first_address", first), ("last_address", last), ("records_appended", appended)),
                },
                Replication = config.Cluster?.ToReplicationOptions(alert => log.Alert("replication_" + alert.Kind.ToString().ToLowerInvariant(), alert.Message,
                    ("acknowledged_records", alert.AcknowledgedRecords), ("journal_records", alert.JournalRecords)), mayDegrade, mayAct),
            };
            engine = standbyGenesis is null ? SwitchEngine.Recover(engineOptions, config.Switch) : SwitchEngine.RecoverStandby(engineOptions, standbyGenesis);

            feeds.EndReplay();
            views.Attach(engine.SnapshotViewsCaptured, engine.SnapshotViewsFailed, SnapshotViewsWaitMs);
            dispatcher.Attach(views);
            var client = new EngineClient(engine, answers);
            // Before any caller registers: this life's correlation ids above every id in the journal.
            answers.ContinueAfter(engine.Recovery.LastCorrelationId);

            // The journal's configuration decides the participants (replay must match); addresses are not
            // business state, so they come from the configuration given now, found by bank code and endpoint name.
            SwitchConfig running = engine.Logic.Config;
            audit.Attach(running);
            var stats = new LiveStats(running);
            stats.Attach(new TransactionMetrics(metrics, running));
            dispatcher.Attach(stats);
            Counter grpcCalls = GrpcMetrics.Family(metrics);
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
            connector = new BankConnector(client, running, AddressOf, config.MaxQueuedPerEndpoint, config.ProbeIntervalMs, log, config.LinkStall);
            if (config.LinkStall is not null)
            {
                log.Warn("test_link_stall", $"test hook: first requests to {config.LinkStall.Endpoint} held {config.LinkStall.DelayMs} ms");
            }
            dispatcher.Attach(connector);

            ClientCertificateMap? certificates = config.Tls is { ClientCertificateRule: not ClientCertificates.None }
                ? ClientCertificateMap.Create(config.Tls.InstitutionCertificates, running)
                : null;
            var authFailures = new AuthFailureLimiter(config.Limits);
            var auth = new ApiKeyAuthenticator(running, authFailures, certificates);
            var gateway = new InstitutionGateway(client, auth, feeds, config.MaxInFlightPerStream, config.Limits, role);

            // The operator API: never on the institutions' port; its own keys.
            var desk = new ClearingDesk(client, clearing, config.DataDirectory);
            SuccessRateWatch? watch = config.SuccessRateWatch.Enabled
                ? new SuccessRateWatch(config.SuccessRateWatch, running.Banks.Select(b => b.Code.ToString("D3")).ToArray(), running.Rules.DayUtcOffsetHours,
                    (bank, from, to) =>
                    {
                        WindowFigures f = stats.Sum(bank, -1, from, to);
                        return (f.Answered, f.Succeeded);
                    })
                : null;
            IClock clock = SystemClock.Instance;
            var operations = new AdminOperations(client, audit, stats, watch, clock);
            var operatorAuth = new OperatorAuthenticator(config.Operators);
            var memberReports = new MemberReports(members, running);
            var memberFiles = new MemberReportFiles(members, memberReports, config.DataDirectory);
            var explanations = new OrderExplanations(engine, running, config.DataDirectory, config.MaxConcurrentExplains, log);
            var service = new AdminService(operatorAuth, operations, new ClearingOperations(desk), memberReports, explanations,
                new SnapshotOperations(engine), role, (request, cancel) => NodeStatusOf(engine!, role, config.Cluster, request, cancel));
            // A cluster's node runs when its owner knows its role (RunAsPrimary or Follow).
            if (config.Cluster is null)
            {
                engine.Run(members.Tap(dispatcher));
                EngineThreadPriority.ApplyAndLog(config.EngineThreadsNice, log);
                connector.Start();
            }
            Action<Grpc.StatusCode> institutionCalls = new GrpcMetrics(grpcCalls, "institution").Completed;
            Action<Grpc.StatusCode> adminCalls = new GrpcMetrics(grpcCalls, "admin").Completed;
            GrpcRouter institutionServing = institutionPort.Serving(gateway.Map, institutionCalls);
            GrpcRouter adminServing = adminPort.Serving(service.Map, adminCalls);
            adminWeb.Serve(service,
                new MetricsWriter(registry, engine, audit, stats, watch, clock, new MetricSources(connector, feeds, authFailures, operatorAuth, snapshotStatus)));
            var stopWatch = new CancellationTokenSource();
            Task watchLoop = Task.WhenAll(
                watch is null ? Task.CompletedTask : Task.Run(() => RunWatchAsync(watch, clock, stopWatch.Token)),
                Task.Run(() => WatchEngineAsync(engine, health, log, config.EngineThreadsNice, stopWatch.Token)),
                Task.Run(() => memberFiles.RunAsync(e => log.Alert("member_report_file_failed", e.Message), stopWatch.Token)));
            StallWatchdog? stalls = config.StallReportMs == 0 ? null : WatchStalls(engine, config.StallReportMs, log);
            var admin = new AdminParts(adminGrpc, adminWeb, audit, stats, watch, stopWatch, watchLoop, stalls);
            // From here the role decides what the two gRPC ports serve (the admin HTTP port reads it per request), now
            // and on every change: all methods as the primary; as a standby, health and reflection and NOT_PRIMARY.
            GrpcServer institutionServer = grpc, adminServer = adminGrpc;
            admin.RoleObservation = role.Observe(r =>
            {
                if (r.IsPrimary)
                {
                    institutionServer.Serve(institutionServing);
                    adminServer.Serve(adminServing);
                    health.MarkServing();
                    log.Info("role_primary", "this node is the primary: serving institutions and operators");
                    return;
                }
                institutionServer.Serve(institutionPort.Standby(r, RolePort.Institution, institutionCalls));
                adminServer.Serve(adminPort.Standby(r, RolePort.AdminGrpc, adminCalls, service.MapNodeStatus));
                health.MarkStandby();
                log.Info("role_standby", "this node is a standby: calls are refused NOT_PRIMARY",
                    ("primary", r.PrimaryFor(RolePort.Institution) is { } p ? RoleState.Address(p) : "unknown"));
            });
            return new SwitchHost(config, simulators, engine, connector, grpc, client, dispatcher, feeds, clearing, desk, admin, tls, health, role, log)
            {
                _members = members,
                MappedClientCertificates = certificates?.Count ?? 0,
                Gateway = gateway,
                WriteBehind = writeBehind,
            };
        }
        catch
        {
            health.MarkStopping();
            if (adminWeb is not null) await adminWeb.DisposeAsync();
            if (adminGrpc is not null) await adminGrpc.DisposeAsync();
            if (grpc is not null) await grpc.DisposeAsync();
            if (connector is not null) await connector.DisposeAsync();
            engine?.Dispose();
            clearing?.Dispose();
            feeds?.Dispose();
            writeBehind?.Dispose();
            foreach (BankSimulatorServer s in simulators) await s.DisposeAsync();
            tls?.Dispose();
            throw;
        }
    }

    private MemberStats _members = null!;

    /// <summary>How long GetNodeStatus waits for the logic's state hash (a primary's gate may hold the logic).</summary>
    private const int StateHashWaitMs = 5_000;

    /// <summary>What GetNodeStatus answers: the node's role, term and journal positions (and a primary's replication);
    /// asked for, the logic's state hash at the record it applied.</summary>
    private static async Task<Contracts.V1.NodeStatus> NodeStatusOf(SwitchEngine engine, NodeRole role, ClusterConfig? cluster,
        Contracts.V1.NodeStatusRequest request, CancellationToken cancel)
    {
        RoleState now = role.Current;
        var status = new Contracts.V1.NodeStatus
        {
            Node = cluster?.Node ?? "",
            Role = cluster is null ? "single" : now.IsPrimary ? "primary" : "standby",
            Term = engine.Term,
            JournalRecords = engine.DurableRecordCount,
            AppliedRecords = engine.AppliedRecordCount,
            Primary = now.PrimaryFor(RolePort.Institution) is { } primary ? RoleState.Address(primary) : "",
        };
        if (now.IsPrimary && engine.Replication is { } replication)
        {
            status.AcknowledgedRecords = replication.AcknowledgedRecords;
            status.LagRecords = replication.LagRecords;
            status.LagSeconds = replication.LagUs / 1e6;
            status.Replication = replication.State.ToString().ToLowerInvariant();
        }
        if (request.StateHash)
        {
            try
            {
                StateHashAt hash = await engine.RequestStateHashAsync().WaitAsync(TimeSpan.FromMilliseconds(StateHashWaitMs), cancel);
                status.StateHash = hash.Hash.ToString("x16");
                status.StateHashRecords = hash.AppliedRecords;
            }
            catch (Exception e) when (e is TimeoutException or InvalidOperationException)
            {
                status.StateHashError = e is TimeoutException ? $"STATE_HASH_TIMEOUT: the logic did not answer within {StateHashWaitMs} ms" : e.Message;
            }
        }
        return status;
    }

    /// <summary>A cluster's primary, from its start: the engine runs and the banks are reached.</summary>
    public void RunAsPrimary()
    {
        Engine.Run(_members.Tap(_dispatcher));
        EngineThreadPriority.ApplyAndLog(_config.EngineThreadsNice, _log);
        _connector.Start();
    }

    /// <summary>A cluster's standby: the engine applies what the primary journals (<see cref="SwitchEngine.ApplyReplicated"/>),
    /// its outputs feeding the derived views only; <paramref name="durable"/> hears each local commit, on the journal thread.</summary>
    public void Follow(Action<long> durable)
    {
        Engine.Follow(_members.Tap(_dispatcher.Following()), durable);
        EngineThreadPriority.ApplyAndLog(_config.EngineThreadsNice, _log);
    }

    /// <summary>The standby takes office: the engine's outputs go live (answers, bank requests), this life's callers get
    /// correlation ids above every journaled one, and the banks are reached; then the owner journals the term.</summary>
    public Engine.Replication.PromotionReport TakeOffice()
    {
        Engine.Replication.PromotionReport report = Engine.Promote(_members.Tap(_dispatcher));
        Answers.ContinueAfter(report.LastCorrelationId);
        _connector.Start();
        return report;
    }

    /// <summary>Operator requests are small, but SubmitRecords sends chunks of up to 1 MiB.</summary>
    public const int MaxAdminMessageBytes = ClearingOperations.MaxChunkBytes + 1024;

    /// <summary>An engine that stopped on a fault accepts nothing more: health says NOT_SERVING from then on. Now and then
    /// the engine's threads' nice is set again: a thread that started after the last time (a standby promoted, a thread
    /// not yet named when the host looked) gets it too.</summary>
    private static async Task WatchEngineAsync(SwitchEngine engine, NodeHealth health, Log log, int engineThreadsNice, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(EngineCheckIntervalMs));
        long ticks = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                if (++ticks % EngineThreadsNiceEveryTicks == 0) EngineThreadPriority.Apply(engineThreadsNice);
                if (engine.Fault is not { } fault) continue;
                health.MarkFaulted();
                log.Error("engine_faulted", "the engine stopped on a fault; health is NOT_SERVING", ("error", $"{fault.GetType().Name}: {fault.Message}"));
                return;
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>The engine's stages as the stall watchdog sees them: each one's sequence, and the work waiting for it
    /// (events published and not journaled; journaled and not applied; outputs published and not handed out; archive
    /// writes handed to its writer thread and not applied).</summary>
    private static StallWatchdog WatchStalls(SwitchEngine engine, int stallMs, Log log)
    {
        var watchdog = new StallWatchdog(
        [
            new WatchedStage("journal", () => engine.DurableSequence, () => engine.PublishedSequence - engine.DurableSequence),
            new WatchedStage("logic", () => engine.AppliedSequence, () => engine.DurableSequence - engine.AppliedSequence),
            new WatchedStage("output", () => engine.OutputHandedOutSequence, () => engine.OutputPublishedSequence - engine.OutputHandedOutSequence),
            new WatchedStage("archive", () => engine.ArchiveWriterApplied, () => engine.ArchiveWriterLag),
        ], stallMs, report => report.WriteTo(log), engine.JournalDeviceWrites, engine.ArchiveDeviceWrites);
        watchdog.Start();
        return watchdog;
    }

    /// <summary>How long a snapshot's views wait for the files of the batches closed before its mark.</summary>
    private const int SnapshotViewsWaitMs = 50_000;

    /// <summary>How often the engine's fault flag is read for the health answers.</summary>
    public const int EngineCheckIntervalMs = 250;
    /// <summary>The engine's threads' nice is set again every this many checks (2 s: a scan of the process's threads).</summary>
    private const int EngineThreadsNiceEveryTicks = 8;

    /// <summary>Judges each closed window (several checks per window, so an alert comes within a fraction of one).</summary>
    private static async Task RunWatchAsync(SuccessRateWatch watch, IClock clock, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(Math.Clamp(watch.WindowSeconds * 250, 250, 5_000)));
        try
        {
            do
            {
                watch.Evaluate(clock.NowUs());
            }
            while (await timer.WaitForNextTickAsync(stop));
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
        _admin.RoleObservation?.Dispose(); // a role change from now on leaves the stopping ports alone
        _health.MarkStopping(); // NOT_SERVING first: load balancers stop sending before the ports close
        _admin.StopWatch.Cancel();
        await _admin.WatchLoop;
        _admin.StopWatch.Dispose();
        _admin.Stalls?.Dispose();
        await _admin.Web.DisposeAsync();
        await _admin.Grpc.DisposeAsync();
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
        Feeds.Dispose(); // nothing appends any more
        WriteBehind.Dispose(); // after the last append
        foreach (BankSimulatorServer s in _simulators) await s.DisposeAsync();
        _tls?.Dispose(); // nothing listens any more
    }
}

/// <summary>The three bound addresses, known before the journal is recovered.</summary>
public sealed record ListeningPorts(Uri Institution, Uri AdminHttp, Uri AdminGrpc);
