using System.Text.Json;
using System.Text.Json.Serialization;

namespace Switch.Engine.Business;

/// <summary>Fee for one request type: basis points of the amount (floored) plus a fixed part, both to the switch.</summary>
public sealed record FeeRule
{
    public int Bps { get; init; }
    public long FixedFen { get; init; }
}

public sealed record InstitutionConfig
{
    /// <summary>10 billion CNY: far above any single payment, and amount × 10000 bps still fits in a long.</summary>
    public const long MaxSingleLimitFen = 1_000_000_000_000;

    /// <summary>The institution's code, e.g. "Z2004944000010" style; at most 16 printable ASCII characters.</summary>
    public required string Code { get; init; }
    public string Name { get; init; } = "";
    /// <summary>The reserve (备付金) account the switch settles the institution through.</summary>
    public required string ReserveAccount { get; init; }
    /// <summary>A reference to the institution's credential (the hashed API key lives with the gateway).</summary>
    public string CredentialRef { get; init; } = "";
    public bool Enabled { get; init; } = true;
    /// <summary>Largest single transaction, in fen.</summary>
    public long SingleLimitFen { get; init; }
    /// <summary>Payouts and refunds may not take the institution's open-batch position below minus this.</summary>
    public long NetDebitCapFen { get; init; }
    public FeeRule AgreementPaymentFee { get; init; } = new();
    public FeeRule PayoutFee { get; init; } = new();
    public FeeRule RefundFee { get; init; } = new();
}

public sealed record EndpointConfig
{
    public required string Name { get; init; }
    /// <summary>Where the bank connector reaches this endpoint (an http(s) URL); the engine never uses it.</summary>
    public string Address { get; init; } = "";
    public int WeightBps { get; init; }
    /// <summary>Most requests outstanding at this endpoint at once; protects the bank.</summary>
    public int InFlightCap { get; init; }
}

public sealed record BankConfig
{
    /// <summary>The 3-digit bank code (102 = ICBC, 103 = ABC, 104 = BOC, 105 = CCB, 308 = CMB...).</summary>
    public required int Code { get; init; }
    public string Name { get; init; } = "";
    /// <summary>Most a payer's account may be debited through this bank per day (fen); 0 = no limit.</summary>
    public long DailyAccountLimitFen { get; init; }
    public required IReadOnlyList<EndpointConfig> Endpoints { get; init; }
}

public sealed record RulesConfig
{
    /// <summary>Retained transactions; the oldest final one is evicted when a new one needs its slot.</summary>
    public int TransactionCapacity { get; init; } = 1 << 20;
    /// <summary>
    /// How many of the newest transactions (by id) the switch remembers for idempotency, queries and refunds: those
    /// retained in memory, then the archive on disk (312 bytes each). A repeat of an order older than that is no
    /// longer recognised, so this is the idempotency window: size it to the institutions' order-number reuse horizon
    /// (the default, 2^30, is about 22 hours at 13,500 transactions a second, the 2018 Double-11 day's average).
    /// </summary>
    public long OrderMemoryTransactions { get; init; } = 1L << 30;
    /// <summary>
    /// Most transactions of one bank not final at once (dispatched, or unknown until a query or reversal settles
    /// them). At the bound only that bank's new requests are refused (BANK_UNRESOLVED_LIMIT); other banks go on. The
    /// table holds banks × this many parked transactions (those older than the ring still waiting for their bank).
    /// </summary>
    public int MaxUnresolvedPerBank { get; init; } = 65_536;
    /// <summary>A dispatched transaction with no bank answer after this becomes unknown.</summary>
    public int BankTimeoutMs { get; init; } = 5_000;
    public int QueryBackoffInitialMs { get; init; } = 1_000;
    public int QueryBackoffMaxMs { get; init; } = 60_000;
    /// <summary>A debit still unknown this long after its deadline is reversed.</summary>
    public int ReverseAfterMs { get; init; } = 300_000;
    /// <summary>Payer accounts whose daily usage is tracked at once.</summary>
    public int MaxTrackedAccounts { get; init; } = 1 << 20;
    /// <summary>Daily limits roll over at midnight in this zone (China: +8).</summary>
    public int DayUtcOffsetHours { get; init; } = 8;
    /// <summary>Clearing batches close by themselves at these local times of day ("HH:mm", zone above); empty = only
    /// on an operator's command.</summary>
    public IReadOnlyList<string> BatchCloseTimes { get; init; } = [];
    /// <summary>Circuit breaker: the sliding window (whole seconds) over which an endpoint's calls and failures count.</summary>
    public int BreakerWindowMs { get; init; } = 10_000;
    /// <summary>Circuit breaker: fewer calls than this in the window never open it (too little to judge).</summary>
    public int BreakerMinCalls { get; init; } = 20;
    /// <summary>Circuit breaker: opens when timeouts and system failures reach this percentage of the window's calls.</summary>
    public int BreakerErrorRatePct { get; init; } = 50;
    /// <summary>Circuit breaker: how long an open endpoint takes no traffic before probes start.</summary>
    public int BreakerOpenMs { get; init; } = 5_000;
    /// <summary>Circuit breaker, half-open: one in this many of the transactions that would go to the endpoint is a probe.</summary>
    public int BreakerProbeEvery { get; init; } = 10;
    /// <summary>Circuit breaker, half-open: good answers in a row that close it.</summary>
    public int BreakerProbeSuccesses { get; init; } = 5;
}

/// <summary>
/// Everything the engine starts from. It is journaled as the first record, so a replay rebuilds the same
/// state whatever configuration file is on disk later; later changes arrive as operator events.
/// </summary>
public sealed record SwitchConfig
{
    public const int MaxInstitutions = 4096;
    public const int MaxBanks = 1000;

    public required IReadOnlyList<InstitutionConfig> Institutions { get; init; }
    public required IReadOnlyList<BankConfig> Banks { get; init; }
    public RulesConfig Rules { get; init; } = new();

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = false,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    public byte[] ToJsonUtf8() => JsonSerializer.SerializeToUtf8Bytes(this, JsonOptions);

    /// <summary>Parses and validates; a bad configuration is refused with a message naming the field.</summary>
    public static SwitchConfig FromJsonUtf8(ReadOnlySpan<byte> json)
    {
        SwitchConfig? config;
        try
        {
            config = JsonSerializer.Deserialize<SwitchConfig>(json, JsonOptions);
        }
        catch (JsonException e)
        {
            throw new ConfigException($"configuration: {(e.Path is null ? "" : e.Path + ": ")}{e.Message}");
        }
        if (config is null)
        {
            throw new ConfigException("configuration: empty document");
        }
        ConfigValidator.Validate(config);
        return config;
    }
}

public sealed class ConfigException(string message) : Exception(message);
