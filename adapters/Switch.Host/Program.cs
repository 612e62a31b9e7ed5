using System.Runtime.InteropServices;
using Switch.Engine.Business;
using Switch.Host;
using Switch.Host.Configuration;

// The switch process. With no arguments it runs the embedded default configuration on simulated banks, with
// its journal under ./data. Overrides: --config FILE (or SWITCH_CONFIG), --data DIR (SWITCH_DATA_DIR),
// --port N (SWITCH_INSTITUTION_PORT), --admin-port N (SWITCH_ADMIN_PORT), --admin-grpc-port N (SWITCH_ADMIN_GRPC_PORT),
// --listen IP (SWITCH_LISTEN_ADDRESS).
return await SwitchProgram.RunAsync(args);

internal static class SwitchProgram
{
    public static async Task<int> RunAsync(string[] args)
    {
        Log log = Log.Console;
        if (args.Length > 0 && args[0] == "verify-history") return VerifyHistory(args[1..], log);
        if (args.Length > 0 && args[0] == Switch.Host.Cluster.ClusterDemo.Command) return await Switch.Host.Cluster.ClusterDemo.RunAsync(args[1..], log);
        HostConfig config;
        try
        {
            config = Load(args);
        }
        catch (Exception e) when (e is ConfigException or ArgumentException or IOException)
        {
            log.Error("config_refused", e.Message);
            return 2;
        }
        if (config is null) return 0; // --help

        using var stop = new CancellationTokenSource();
        using PosixSignalRegistration term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        using PosixSignalRegistration interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });

        if (config.Cluster is not null)
        {
            // A node of a primary/standby pair: its role comes from etcd, and may change while it runs.
            try
            {
                return await Switch.Host.Cluster.ClusterNode.RunAsync(config, log, stop.Token);
            }
            catch (Exception e) when (e is ConfigException or IOException or InvalidDataException or Switch.Journal.JournalCorruptException
                or Switch.Cluster.LeadershipException or Switch.Engine.Replication.ReplicationRefusedException)
            {
                log.Error("start_failed", $"cannot start: {e.Message}");
                return 1;
            }
        }

        SwitchHost host;
        long startedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            host = await SwitchHost.StartAsync(config, log);
        }
        catch (Exception e) when (e is ConfigException or IOException or InvalidDataException or Switch.Journal.JournalCorruptException)
        {
            // A corrupt journal (damage with intact records after it: not a torn tail) is never repaired silently.
            log.Error("start_failed", $"cannot start: {e.Message}");
            return 1;
        }
        await using (host)
        {
            long startMs = (long)System.Diagnostics.Stopwatch.GetElapsedTime(startedAt).TotalMilliseconds;
            RecoveryLog.Write(log, host.Engine.Recovery, config.DataDirectory, startMs);
            bool tls = host.Certificate is not null;
            log.Info("listening", $"institution API (gRPC, {(tls ? "TLS" : "h2c")})", ("api", "institution"), ("address", host.InstitutionAddress));
            log.Info("listening", $"operator API (gRPC, {(tls ? "TLS" : "h2c")})", ("api", "operator_grpc"), ("address", host.AdminGrpcAddress));
            log.Info("listening", $"operator dashboard, JSON API (/api/v1/) and /metrics ({(tls ? "HTTPS" : "HTTP/1.1")})", ("api", "operator_http"),
                ("address", host.AdminAddress));
            if (host.Certificate is { } certificate)
            {
                // Public facts only: which certificate is served and until when; never the key or its password.
                log.Info("tls_certificate", "TLS certificate served on every port", ("subject", certificate.Subject),
                    ("sha256", Switch.Host.Gateway.CertificateFingerprint.Of(certificate)), ("not_after", certificate.NotAfter.ToUniversalTime().ToString("u")));
                log.Info("tls_client_certificates", config.Tls!.ClientCertificateRule == Switch.Grpc.Tls.ClientCertificates.None
                        ? "institution client certificates not asked for (institutions authenticate by API key)"
                        : "institution client certificates checked against the CA bundle",
                    ("rule", config.Tls.ClientCertificates), ("mapped", host.MappedClientCertificates));
            }
            foreach (var sim in host.Simulators)
            {
                log.Info("simulated_bank", "simulated bank endpoint", ("bank", string.Join(',', sim.Options.BankCodes)), ("address", sim.Address));
            }
            // Only the embedded demo configuration has these: published test keys, printed so a newcomer can call it.
            foreach (var (code, key) in config.DemoApiKeys)
            {
                log.Info("demo_credentials", "demo configuration: a published test key", ("institution", code), ("header", "x-api-key"), ("key", key));
            }
            foreach (var (id, key) in config.DemoOperatorKeys)
            {
                string role = config.Operators.First(o => o.Id == id).Role;
                log.Info("demo_credentials", "demo configuration: a published test key", ("operator", id), ("role", role), ("header", "x-operator-key"), ("key", key));
            }
            log.Info("running", "Ctrl-C or SIGTERM stops it gracefully");
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException)
            {
            }
            log.Info("stopping", "no new calls, finishing in-flight bank work, committing the journal");
        }
        log.Info("stopped", "stopped");
        return 0;
    }

    /// <summary>
    /// <c>verify-history [--data DIR]</c>: for audits, on a stopped switch's data directory (or a copy): replays the whole
    /// history from the genesis (the journal's archive, then the live journal) and checks that it reproduces each kept
    /// snapshot's state hash. One record per snapshot; exit 0 when every one agrees, 1 when one does not, 2 when the
    /// history cannot be read.
    /// </summary>
    private static int VerifyHistory(string[] args, Log log)
    {
        HostConfig? config;
        try
        {
            config = Load(args);
        }
        catch (Exception e) when (e is ConfigException or ArgumentException or IOException)
        {
            log.Error("config_refused", e.Message);
            return 2;
        }
        if (config is null) return 0;
        try
        {
            var timer = System.Diagnostics.Stopwatch.StartNew();
            IReadOnlyList<Switch.Engine.Snapshots.HistoryVerifier.Result> results = Switch.Engine.Snapshots.HistoryVerifier.Verify(config.DataDirectory);
            foreach (var r in results)
            {
                if (r.Agrees) log.Info("history_verified", "the history reproduces the snapshot's state", ("snapshot", r.Snapshot), ("record", r.RecordNo), ("state_hash", r.SnapshotHash.ToString("X16")));
                else if (!r.Reached) log.Error("history_short", "the history ends before the snapshot's position", ("snapshot", r.Snapshot), ("record", r.RecordNo));
                else log.Error("history_differs", "the history does not reproduce the snapshot's state", ("snapshot", r.Snapshot), ("record", r.RecordNo),
                    ("snapshot_hash", r.SnapshotHash.ToString("X16")), ("replay_hash", r.ReplayHash.ToString("X16")));
            }
            bool agree = results.All(r => r.Agrees);
            log.Info("history_verification_done", agree ? "every snapshot agrees with the history" : "a snapshot disagrees with the history",
                ("snapshots", results.Count), ("elapsed_ms", timer.ElapsedMilliseconds));
            return agree ? 0 : 1;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or Switch.Journal.JournalCorruptException)
        {
            log.Error("history_unreadable", e.Message);
            return 2;
        }
    }

    private static HostConfig Load(string[] args)
    {
        string? configPath = Environment.GetEnvironmentVariable("SWITCH_CONFIG");
        string? dataDir = Environment.GetEnvironmentVariable("SWITCH_DATA_DIR");
        string? port = Environment.GetEnvironmentVariable("SWITCH_INSTITUTION_PORT");
        string? listen = Environment.GetEnvironmentVariable("SWITCH_LISTEN_ADDRESS");
        string? adminPort = Environment.GetEnvironmentVariable("SWITCH_ADMIN_PORT");
        string? adminGrpcPort = Environment.GetEnvironmentVariable("SWITCH_ADMIN_GRPC_PORT");
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--config": configPath = Value(); break;
                case "--data": dataDir = Value(); break;
                case "--port": port = Value(); break;
                case "--listen": listen = Value(); break;
                case "--admin-port": adminPort = Value(); break;
                case "--admin-grpc-port": adminGrpcPort = Value(); break;
                case "-h" or "--help":
                    Console.WriteLine("""
                        usage: switch [--config FILE] [--data DIR] [--port N] [--admin-port N] [--admin-grpc-port N] [--listen IP]
                          --config FILE          host configuration (JSON); default: the embedded demo configuration
                          --data DIR             journal directory (default ./data); the same directory on restart recovers
                          --port N               institution API port (default 7001; 0 = any free port)
                          --admin-port N         operator dashboard, JSON API and /metrics, HTTP/1.1 (default 7002; 0 = any free port)
                          --admin-grpc-port N    operator API, gRPC h2c (default 7003; 0 = any free port)
                          --listen IP            address to listen on (default 127.0.0.1)
                        The same settings come from SWITCH_CONFIG, SWITCH_DATA_DIR, SWITCH_INSTITUTION_PORT, SWITCH_ADMIN_PORT,
                        SWITCH_ADMIN_GRPC_PORT, SWITCH_LISTEN_ADDRESS.
                        """);
                    return null!;
                default: throw new ArgumentException($"unknown option '{args[i]}' (see --help)");
            }
        }
        HostConfig config = configPath is null
            ? HostConfig.EmbeddedDefault()
            : HostConfig.Parse(File.ReadAllText(configPath), configPath, Path.GetDirectoryName(Path.GetFullPath(configPath)));
        if (dataDir is not null) config = config with { DataDirectory = dataDir };
        if (listen is not null) config = config with { ListenAddress = listen };
        if (port is not null) config = config with { InstitutionPort = Port("port", port) };
        if (adminPort is not null) config = config with { AdminPort = Port("admin port", adminPort) };
        if (adminGrpcPort is not null) config = config with { AdminGrpcPort = Port("admin gRPC port", adminGrpcPort) };
        if (Environment.GetEnvironmentVariable(Switch.Engine.Pipeline.JournalCrashPoint.EnvironmentVariable) is { Length: > 0 } crash)
        {
            config = config with { CrashPoint = Switch.Engine.Pipeline.JournalCrashPoint.Parse(crash) };
        }
        if (Environment.GetEnvironmentVariable(Switch.Host.Banks.LinkStall.EnvironmentVariable) is { Length: > 0 } stall)
        {
            config = config with { LinkStall = Switch.Host.Banks.LinkStall.Parse(stall) };
        }
        config.Validate();
        // The TLS files are read here too, so a bad one is a configuration error like any other (exit 2).
        try
        {
            if (config.Tls is not null) TlsMaterial.Check(config.Tls, Environment.GetEnvironmentVariable);
        }
        catch (ConfigException e) when (configPath is not null)
        {
            throw new ConfigException($"{configPath}: {e.Message}");
        }
        return config;
    }

    private static int Port(string what, string text) =>
        int.TryParse(text, out int port) ? port : throw new ArgumentException($"{what}: not a number: '{text}'");
}
