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
        HostConfig config;
        try
        {
            config = Load(args);
        }
        catch (Exception e) when (e is ConfigException or ArgumentException or IOException)
        {
            Console.Error.WriteLine($"switch: {e.Message}");
            return 2;
        }
        if (config is null) return 0; // --help

        using var stop = new CancellationTokenSource();
        using PosixSignalRegistration term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        using PosixSignalRegistration interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });

        SwitchHost host;
        long startedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            host = await SwitchHost.StartAsync(config);
        }
        catch (Exception e) when (e is ConfigException or IOException or InvalidDataException)
        {
            Console.Error.WriteLine($"switch: cannot start: {e.Message}");
            return 1;
        }
        await using (host)
        {
            var recovery = host.Engine.Recovery;
            string journal = Path.GetFullPath(config.DataDirectory);
            double startMs = System.Diagnostics.Stopwatch.GetElapsedTime(startedAt).TotalMilliseconds;
            Console.WriteLine(recovery.ConfigFromJournal
                ? $"switch: journal {journal}: recovered {recovery.EventsReplayed} events, {recovery.LastTransactionId} transactions, " +
                  $"{recovery.Unresolved} unresolved (resolved by asking their banks), started in {startMs:F0} ms"
                : $"switch: journal {journal}: new, started in {startMs:F0} ms");
            if (recovery.ConfigDiffers)
            {
                Console.WriteLine("switch: note: the configuration differs from the journal's; the journal's participants and rules stay in force");
            }
            bool tls = host.Certificate is not null;
            Console.WriteLine($"switch: institution API (gRPC, {(tls ? "TLS" : "h2c")}) at {host.InstitutionAddress}");
            Console.WriteLine($"switch: operator API (gRPC, {(tls ? "TLS" : "h2c")}) at {host.AdminGrpcAddress}");
            Console.WriteLine($"switch: operator dashboard, JSON API (/api/v1/) and /metrics ({(tls ? "HTTPS" : "HTTP/1.1")}) at {host.AdminAddress}");
            if (host.Certificate is { } certificate)
            {
                // Public facts only: which certificate is served and until when; never the key or its password.
                Console.WriteLine($"switch: TLS certificate {certificate.Subject}, SHA-256 {Switch.Host.Gateway.CertificateFingerprint.Of(certificate)}, " +
                    $"valid until {certificate.NotAfter.ToUniversalTime():u}");
                Console.WriteLine(config.Tls!.ClientCertificateRule == Switch.Grpc.Tls.ClientCertificates.None
                    ? "switch: institution client certificates: not asked for (institutions authenticate by API key)"
                    : $"switch: institution client certificates: {config.Tls.ClientCertificates}, {host.MappedClientCertificates} mapped to institutions");
            }
            foreach (var sim in host.Simulators)
            {
                Console.WriteLine($"switch: simulated bank endpoint at {sim.Address}");
            }
            foreach (var (code, key) in config.DemoApiKeys)
            {
                Console.WriteLine($"switch: demo credentials: institution {code}, metadata x-api-key: {key}");
            }
            foreach (var (id, key) in config.DemoOperatorKeys)
            {
                string role = config.Operators.First(o => o.Id == id).Role;
                Console.WriteLine($"switch: demo credentials: operator {id} ({role}), header x-operator-key: {key}");
            }
            Console.WriteLine("switch: running; Ctrl-C or SIGTERM stops it gracefully");
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException)
            {
            }
            Console.WriteLine("switch: stopping: no new calls, finishing in-flight bank work, committing the journal");
        }
        Console.WriteLine("switch: stopped");
        return 0;
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
