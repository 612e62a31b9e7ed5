using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using Switch.Engine.Business;

namespace Switch.Host.Configuration;

/// <summary>
/// The switch process's configuration: where it listens and keeps its journal, and the switch configuration
/// (participants and rules). An endpoint address of "sim" (or empty) is served by a simulated bank started
/// inside the process.
/// </summary>
public sealed record HostConfig
{
    public const string SimulatedAddress = "sim";

    public string ListenAddress { get; init; } = "127.0.0.1";
    public int InstitutionPort { get; init; } = 7001;
    /// <summary>The operator API over HTTP/1.1: dashboard, JSON API, /metrics (0 = any free port).</summary>
    public int AdminPort { get; init; } = 7002;
    /// <summary>The operator API over gRPC (h2c; cleartext Kestrel cannot serve HTTP/1.1 and h2c on one port).</summary>
    public int AdminGrpcPort { get; init; } = 7003;
    /// <summary>Who may use the operator API, with their key digests and roles.</summary>
    public IReadOnlyList<OperatorConfig> Operators { get; init; } = [];
    public SuccessRateWatchConfig SuccessRateWatch { get; init; } = new();
    public string DataDirectory { get; init; } = "./data";
    /// <summary>Unary calls and stream results waiting for the engine, per stream.</summary>
    public int MaxInFlightPerStream { get; init; } = 8192;
    /// <summary>Each institution's outcome feed on disk under &lt;data&gt;/feeds: retention and segment size.</summary>
    public OutcomeFeedConfig OutcomeFeed { get; init; } = new();
    /// <summary>The largest request message the institution port takes; a larger one is RESOURCE_EXHAUSTED before it is read.</summary>
    public int MaxMessageBytes { get; init; } = DefaultMaxMessageBytes;
    /// <summary>Bank requests waiting to be written to one endpoint; past it they are dropped and resolved by query.</summary>
    public int MaxQueuedPerEndpoint { get; init; } = 65_536;
    /// <summary>How often a down endpoint is probed.</summary>
    public int ProbeIntervalMs { get; init; } = 1_000;
    /// <summary>On shutdown, how long in-flight bank work may take to finish.</summary>
    public int ShutdownGraceMs { get; init; } = 5_000;
    public int TickIntervalMs { get; init; } = 10;
    /// <summary>The engine's input ring (events accepted, not yet applied) and output ring (effects not yet carried out),
    /// in slots of about 0.5 KiB, allocated whole at start: a power of two from 4,096 (the largest batch) up.</summary>
    public int InputRingSize { get; init; } = DefaultRingSize;
    public int OutputRingSize { get; init; } = DefaultRingSize;
    public const int DefaultRingSize = 1 << 16;
    public const int MinRingSize = 1 << 12;
    public const int MaxRingSize = 1 << 24;
    /// <summary>Gzip gRPC answers to clients that accept gzip (both gRPC ports). Off: a payment answer is a few hundred
    /// bytes, which gzip barely shrinks at a measurable CPU cost. Requests in gzip are accepted either way.</summary>
    public bool CompressResponses { get; init; }
    /// <summary>During the replay at start, a recovery_progress log record this often.</summary>
    public int RecoveryLogIntervalMs { get; init; } = 5_000;
    /// <summary>A pipeline stage (journal, logic, output, thread pool) standing still this long with work waiting is a
    /// stall, logged as <c>event=stall</c> (<see cref="StallWatchdog"/>); 0: not watched.</summary>
    public int StallReportMs { get; init; } = 200;
    /// <summary>The nice of the engine's single-writer threads (<see cref="EngineThreadPriority"/>): -20 to 0 (0: as the
    /// process's other threads). Below 0 needs CAP_SYS_NICE or systemd's LimitNICE; refused, a warning and nothing else.
    /// Off (0) by default: quietly, -10 made the unary closed loop's engine threads run more, smaller batches (the switch
    /// 61.5-63.6 µs a call against 53.8-55.7, 23,441-24,020 calls/s against 26,930-27,575) and did not change the design
    /// peak's p99 beyond the noise; it helps a switch whose cores are shared with busy neighbours.</summary>
    public int EngineThreadsNice { get; init; } = 0;
    private const int MinEngineThreadsNice = global::Switch.Engine.Snapshots.NiceThread.MinNice;
    /// <summary>ExplainOrder calls replaying the journal at once (each a separate logic, as much memory as the live one's
    /// tables); beyond it RESOURCE_EXHAUSTED.</summary>
    public int MaxConcurrentExplains { get; init; } = 2;
    /// <summary>Fair-use limits of the institution port: per-institution rate and in-flight cap, failed logins per address.</summary>
    public Gateway.GatewayLimits Limits { get; init; } = new();
    /// <summary>How long a closed batch's raw records (128 bytes per transaction) are kept once its files are complete;
    /// the reconciliation and settlement files themselves are the business record and are never deleted.</summary>
    public int ClearingRecordsRetentionDays { get; init; } = 7;
    /// <summary>The most bytes an outcome feed's segment or a batch's clearing records file is appended ahead of the
    /// writeback started for it (<see cref="Journal.WriteBehind"/>): its dirty pages stay about this many, instead of
    /// piling up until the kernel writes them back in bursts the journal's commits queue behind. 0: off (the kernel's
    /// own writeback); else 64 KiB to 1 GiB.</summary>
    public long WriteBehindBytes { get; init; } = DefaultWriteBehindBytes;
    public const long DefaultWriteBehindBytes = 1 << 20;
    /// <summary>The transaction archive's memory: its hash index (size it near 64 bytes per 7 orders the switch must
    /// remember, rules.orderMemoryTransactions, so a new order's look-up finds no chain to follow to disk) and the
    /// newest records kept in memory.</summary>
    public ArchiveConfig Archive { get; init; } = new();
    /// <summary>Snapshots of the state and derived views: a start replays only the journal after the newest one.</summary>
    public SnapshotsConfig Snapshots { get; init; } = new();
    public SimulatedBanksConfig? SimulatedBanks { get; init; } = new();
    /// <summary>Null: a single switch. Otherwise a node of a primary/standby pair, leadership held in etcd (README "Hot standby").</summary>
    public ClusterConfig? Cluster { get; init; }
    /// <summary>Null serves cleartext (h2c and HTTP/1.1); otherwise TLS on all three ports, and client certificates if asked.</summary>
    public TlsConfig? Tls { get; init; }
    public required SwitchConfig Switch { get; init; }

    /// <summary>Demo API keys of the embedded default configuration, printed at start (never for a real file).</summary>
    [JsonIgnore]
    public IReadOnlyDictionary<string, string> DemoApiKeys { get; init; } = new Dictionary<string, string>();

    /// <summary>Demo operator keys of the embedded default configuration (operator id to key), printed at start.</summary>
    [JsonIgnore]
    public IReadOnlyDictionary<string, string> DemoOperatorKeys { get; init; } = new Dictionary<string, string>();

    /// <summary>Test hook from SWITCH_TEST_CRASH_POINT (never in a file): the journaler kills the process there.</summary>
    [JsonIgnore]
    public Switch.Engine.Pipeline.JournalCrashPoint? CrashPoint { get; init; }

    /// <summary>Test hook (never in a file): the clock stamped on events, so a test can let days pass.</summary>
    [JsonIgnore]
    public Switch.Engine.Pipeline.IClock? Clock { get; init; }

    /// <summary>A request is a few hundred bytes; anything near 16 KiB is abuse.</summary>
    public const int DefaultMaxMessageBytes = 16 * 1024;
    public const int MinMaxMessageBytes = 1024;
    public const int MaxMaxMessageBytes = 4 * 1024 * 1024;

    /// <summary>Test hook from SWITCH_TEST_LINK_STALL (never in a file): one endpoint's first requests are held this long.</summary>
    [JsonIgnore]
    public Banks.LinkStall? LinkStall { get; init; }

    private static readonly string[] DemoOperatorKeyList = ["demo-operator-key", "demo-viewer-key"];

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    /// <param name="directory">Where relative file names in the document are taken from (the file's directory); null: the working directory.</param>
    public static HostConfig Parse(string json, string source, string? directory = null)
    {
        HostConfig? config;
        try
        {
            config = JsonSerializer.Deserialize<HostConfig>(json, Json);
        }
        catch (JsonException e)
        {
            throw new ConfigException($"{source}: {(e.Path is null ? "" : e.Path + ": ")}{e.Message}");
        }
        if (config is null) throw new ConfigException($"{source}: empty document");
        if (config.Tls is not null && directory is not null) config = config with { Tls = config.Tls.RelativeTo(directory) };
        try
        {
            config.Validate();
        }
        catch (ConfigException e)
        {
            throw new ConfigException($"{source}: {e.Message}");
        }
        return config;
    }

    /// <summary>The embedded default: three institutions, four banks of two simulated endpoints each.</summary>
    public static HostConfig EmbeddedDefault()
    {
        using Stream stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("default-config.json")
            ?? throw new InvalidOperationException("the embedded default configuration is missing");
        using var reader = new StreamReader(stream);
        HostConfig config = Parse(reader.ReadToEnd(), "embedded default configuration");
        return config with
        {
            DemoApiKeys = config.Switch.Institutions.ToDictionary(i => i.Code, i => $"demo-{i.Code.ToLowerInvariant()}-key"),
            // The demo operators' keys are published (README, start-up lines); a key is shown only if its digest is the one configured.
            DemoOperatorKeys = config.Operators
                .Select(o => (o.Id, Key: DemoOperatorKeyList.FirstOrDefault(k => ApiKeyHash.Of(k) == o.KeyHash)))
                .Where(x => x.Key is not null).ToDictionary(x => x.Id, x => x.Key!),
        };
    }

    public void Validate()
    {
        Require(System.Net.IPAddress.TryParse(ListenAddress, out _), "listenAddress", $"an IP address, got '{ListenAddress}'");
        Require(InstitutionPort is >= 0 and <= 65535, "institutionPort", "0 to 65535");
        Require(AdminPort is >= 0 and <= 65535, "adminPort", "0 to 65535");
        Require(AdminGrpcPort is >= 0 and <= 65535, "adminGrpcPort", "0 to 65535");
        Require(AdminPort == 0 || (AdminPort != InstitutionPort && AdminPort != AdminGrpcPort), "adminPort",
            "must differ from institutionPort and adminGrpcPort (the operator API is never on the institutions' port)");
        Require(AdminGrpcPort == 0 || AdminGrpcPort != InstitutionPort, "adminGrpcPort", "must differ from institutionPort");
        Require(!string.IsNullOrWhiteSpace(DataDirectory), "dataDirectory", "required");
        Require(MaxInFlightPerStream is >= 1 and <= 1 << 20, "maxInFlightPerStream", "1 to 1048576");
        Require(OutcomeFeed is not null, "outcomeFeed", "required");
        Require(OutcomeFeed!.RetentionDays is >= 1 and <= OutcomeFeedConfig.MaxRetentionDays, "outcomeFeed.retentionDays",
            $"1 to {OutcomeFeedConfig.MaxRetentionDays}, got {OutcomeFeed.RetentionDays}");
        Require(OutcomeFeed.SegmentRecords is >= OutcomeFeedConfig.MinSegmentRecords and <= OutcomeFeedConfig.MaxSegmentRecords, "outcomeFeed.segmentRecords",
            $"{OutcomeFeedConfig.MinSegmentRecords} to {OutcomeFeedConfig.MaxSegmentRecords}, got {OutcomeFeed.SegmentRecords}");
        Require(MaxMessageBytes is >= MinMaxMessageBytes and <= MaxMaxMessageBytes, "maxMessageBytes",
            $"{MinMaxMessageBytes} to {MaxMaxMessageBytes}, got {MaxMessageBytes}");
        Require(MaxQueuedPerEndpoint is >= 16 and <= 1 << 22, "maxQueuedPerEndpoint", "16 to 4194304");
        Require(ProbeIntervalMs is >= 10 and <= 600_000, "probeIntervalMs", "10 to 600000");
        Require(ShutdownGraceMs is >= 0 and <= 600_000, "shutdownGraceMs", "0 to 600000");
        Require(TickIntervalMs is >= 1 and <= 1_000, "tickIntervalMs", "1 to 1000");
        Require(IsPowerOfTwo(InputRingSize) && InputRingSize is >= MinRingSize and <= MaxRingSize, "inputRingSize",
            $"a power of two from {MinRingSize} to {MaxRingSize}, got {InputRingSize}");
        Require(IsPowerOfTwo(OutputRingSize) && OutputRingSize is >= MinRingSize and <= MaxRingSize, "outputRingSize",
            $"a power of two from {MinRingSize} to {MaxRingSize}, got {OutputRingSize}");
        Require(RecoveryLogIntervalMs is >= 1 and <= 3_600_000, "recoveryLogIntervalMs", $"1 to 3600000, got {RecoveryLogIntervalMs}");
        Require(StallReportMs == 0 || StallReportMs is >= StallWatchdog.MinStallMs and <= StallWatchdog.MaxStallMs, "stallReportMs",
            $"0 (off) or {StallWatchdog.MinStallMs} to {StallWatchdog.MaxStallMs}, got {StallReportMs}");
        Require(EngineThreadsNice is >= MinEngineThreadsNice and <= 0, "engineThreadsNice", $"{MinEngineThreadsNice} to 0, got {EngineThreadsNice}");
        Require(MaxConcurrentExplains is >= 1 and <= 16, "maxConcurrentExplains", $"1 to 16, got {MaxConcurrentExplains}");
        Require(ClearingRecordsRetentionDays is >= 0 and <= 3_650, "clearingRecordsRetentionDays", "0 to 3650");
        Require(WriteBehindBytes == 0 || WriteBehindBytes is >= Journal.WriteBehind.MinBehindBytes and <= Journal.WriteBehind.MaxBehindBytes,
            "writeBehindBytes", $"0 (off) or {Journal.WriteBehind.MinBehindBytes} to {Journal.WriteBehind.MaxBehindBytes}, got {WriteBehindBytes}");
        Require(Archive is not null, "archive", "required");
        Require(IsPowerOfTwo(Archive!.IndexMiB) && Archive.IndexMiB <= ArchiveConfig.MaxIndexMiB, "archive.indexMiB",
            $"a power of two from 1 to {ArchiveConfig.MaxIndexMiB}, got {Archive.IndexMiB}");
        Require(IsPowerOfTwo(Archive.PageMiB) && Archive.PageMiB <= ArchiveConfig.MaxPageMiB, "archive.pageMiB",
            $"a power of two from 1 to {ArchiveConfig.MaxPageMiB}, got {Archive.PageMiB}");
        Require(IsPowerOfTwo(Archive.MemoryMiB) && Archive.MemoryMiB >= 2 * Archive.PageMiB && Archive.MemoryMiB <= ArchiveConfig.MaxMemoryMiB, "archive.memoryMiB",
            $"a power of two from two pages ({2 * Archive.PageMiB}, archive.pageMiB {Archive.PageMiB}) to {ArchiveConfig.MaxMemoryMiB}, got {Archive.MemoryMiB}");
        Require(IsPowerOfTwo(Archive.FilterMiB) && Archive.FilterMiB <= ArchiveConfig.MaxFilterMiB, "archive.filterMiB",
            $"a power of two from 1 to {ArchiveConfig.MaxFilterMiB}, got {Archive.FilterMiB}");
        Require(Archive.HandoffEntries == 0 || (IsPowerOfTwo(Archive.HandoffEntries) && Archive.HandoffEntries is >= 64 and <= 1 << 20),
            "archive.handoffEntries", $"0 or a power of two from 64 to 1048576, got {Archive.HandoffEntries}");
        Require(Snapshots is not null, "snapshots", "required");
        if (Snapshots!.Problem() is { } snapshots) Require(false, snapshots.Field, snapshots.Why);
        Require(Limits is not null, "limits", "required");
        try
        {
            Limits!.Validated();
        }
        catch (ArgumentOutOfRangeException e)
        {
            // The limit's property name, as the file spells it.
            string field = e.ParamName is { Length: > 0 } name ? char.ToLowerInvariant(name[0]) + name[1..] : "?";
            throw new ConfigException($"configuration: limits.{field}: {e.Message.Split(" (Parameter", 2)[0]}");
        }
        Require(Operators is not null, "operators", "a list (may be empty: then the operator API refuses every key)");
        Require(Operators!.Count <= OperatorConfig.MaxOperators, "operators", $"at most {OperatorConfig.MaxOperators}");
        var operatorIds = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < Operators.Count; i++)
        {
            OperatorConfig op = Operators[i];
            Require(op is not null, $"operators[{i}]", "required");
            Require(OperatorConfig.IsValidId(op!.Id), $"operators[{i}].id",
                $"1 to {OperatorConfig.MaxIdBytes} letters, digits, '-', '_' or '.', got '{op.Id}'");
            Require(operatorIds.Add(op.Id), $"operators[{i}].id", $"duplicate operator id '{op.Id}'");
            Require(ApiKeyHash.TryParse(op.KeyHash, out _), $"operators[{i}].keyHash", "the operator's key as sha256:<64 hex digits> (keys are stored hashed)");
            Require(op.Role is OperatorConfig.RoleRead or OperatorConfig.RoleOperate, $"operators[{i}].role",
                $"\"{OperatorConfig.RoleRead}\" or \"{OperatorConfig.RoleOperate}\", got '{op.Role}'");
        }
        Require(SuccessRateWatch is not null, "successRateWatch", "required");
        SuccessRateWatch!.Validate();
        Require(Switch is not null, "switch", "required");
        try
        {
            ConfigValidator.Validate(Switch!);
        }
        catch (ConfigException e)
        {
            // Name the field from the top of this file: the switch section sits under "switch".
            throw new ConfigException(e.Message.Replace("configuration: ", "configuration: switch.", StringComparison.Ordinal));
        }
        for (int i = 0; i < Operators.Count; i++)
        {
            OperatorConfig op = Operators[i];
            if (op.Scope is null) continue;
            // A bank's or institution's key: it may only read, and only what names it (checked against the participants).
            Require(op.Role == OperatorConfig.RoleRead, $"operators[{i}].scope", $"only with the \"{OperatorConfig.RoleRead}\" role, got '{op.Role}'");
            string? problem = op.Scope.Problem(Switch);
            Require(problem is null, $"operators[{i}].scope", problem!);
        }
        for (int i = 0; i < Switch!.Institutions.Count; i++)
        {
            Require(ApiKeyHash.TryParse(Switch.Institutions[i].CredentialRef, out _), $"switch.institutions[{i}].credentialRef",
                "the institution's API key as sha256:<64 hex digits> (keys are stored hashed)");
        }
        if (Tls is not null) Tls.Validate(Switch.Institutions);
        bool anySimulated = false;
        for (int b = 0; b < Switch.Banks.Count; b++)
        {
            for (int e = 0; e < Switch.Banks[b].Endpoints.Count; e++)
            {
                string address = Switch.Banks[b].Endpoints[e].Address;
                bool simulated = string.IsNullOrEmpty(address) || address == SimulatedAddress;
                anySimulated |= simulated;
                Require(simulated || (Uri.TryCreate(address, UriKind.Absolute, out Uri? uri) && uri.Scheme is "http" or "https"),
                    $"switch.banks[{b}].endpoints[{e}].address", $"\"sim\" or an http(s) URL, got '{address}'");
            }
        }
        Require(!anySimulated || SimulatedBanks is not null, "simulatedBanks", "required when an endpoint address is \"sim\"");
        if (Cluster is not null)
        {
            if (Cluster.Problem() is { } cluster) Require(false, cluster.Field, cluster.Why);
            Require(InstitutionPort != 0 && AdminPort != 0 && AdminGrpcPort != 0 && Cluster.ReplicationPort != 0, "cluster",
                "a cluster's node advertises its ports in etcd: institutionPort, adminPort, adminGrpcPort and cluster.replicationPort must be fixed (not 0)");
            if (Host.Cluster.ClusterNode.LeadershipOptionsOf(this).Problem() is { } leadership)
                Require(false, ClusterConfig.KeyOfLeadership(leadership.Field), leadership.Why);
            // Both nodes must reach the same banks: a simulated bank inside a node would die with it, and its books with it.
            Require(!anySimulated, "cluster", "every bank endpoint needs a real address in a cluster (\"sim\" banks live inside one node and die with it)");
            Require(Cluster.ReplicationPort == 0 || (Cluster.ReplicationPort != InstitutionPort && Cluster.ReplicationPort != AdminPort
                && Cluster.ReplicationPort != AdminGrpcPort), "cluster.replicationPort", "must differ from the other ports");
        }
    }

    private static bool IsPowerOfTwo(int value) => value > 0 && (value & (value - 1)) == 0;

    private static void Require(bool ok, string field, string why)
    {
        if (!ok) throw new ConfigException($"configuration: {field}: {why}");
    }
}
