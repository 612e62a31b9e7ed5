using System.Globalization;
using System.Net;

namespace Switch.BankSim;

/// <summary>
/// How one simulated bank endpoint behaves. Validate() names the field at fault; the server validates before
/// it starts, so a bad configuration never reaches a socket.
/// </summary>
public sealed record BankSimulatorOptions
{
    /// <summary>Port to listen on; 0 picks a free one (read it back from the server's Address).</summary>
    public int Port { get; init; }

    /// <summary>The address to listen on: loopback unless a test reaches the bank from another network namespace.</summary>
    public IPAddress ListenAddress { get; init; } = IPAddress.Loopback;

    /// <summary>Time from receipt to execution (and answer) of each request.</summary>
    public LatencyModel Latency { get; init; } = LatencyModel.Immediate;

    /// <summary>Share of debits and credits the bank declines (INSUFFICIENT_FUNDS, ACCOUNT_CLOSED, LIMIT_EXCEEDED); 0..1.</summary>
    public double FailureRate { get; init; }

    /// <summary>Share of debits and credits the bank executes but never answers, so the switch times out; 0..1.</summary>
    public double NoAnswerRate { get; init; }

    /// <summary>
    /// Share of new debits and credits the bank's own systems fail: answered FAILED/SYSTEM_ERROR at once, not
    /// executed, not recorded (a fault of the endpoint, not a decline of the customer); 0..1.
    /// </summary>
    public double SystemErrorRate { get; init; }

    /// <summary>
    /// Requests per second the bank handles at its normal latency; 0 = unlimited. Between 1x and 2x the bank
    /// adds a queueing delay growing with the overload; past 2x it declines debits and credits with BANK_BUSY.
    /// </summary>
    public int CapacityTps { get; init; }

    /// <summary>Seed of the bank's random source (latency, declines, silence).</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Bank codes this endpoint serves; informational (requests for other codes are not refused).</summary>
    public IReadOnlyList<int> BankCodes { get; init; } = [];

    /// <summary>Answers one Exchange stream may hold before the bank stops reading it (back pressure).</summary>
    public int MaxPendingPerStream { get; init; } = 65_536;

    /// <summary>Requests (and answers) one Exchange message may carry, declared in the x-bank-batch-max header; 1 is
    /// the single form only (no header: a bank that has not implemented batches). Declared as at most MaxPendingPerStream.</summary>
    public int BatchMax { get; init; } = Switch.Contracts.V1.ExchangeBatch.MaxElements;

    /// <summary>Queueing delay added at 2x capacity; it grows linearly from 0 at 1x.</summary>
    public int MaxQueueingDelayMs { get; init; } = 200;

    /// <summary>How long a unary call without a deadline is held when the bank stays silent.</summary>
    public int MaxSilenceMs { get; init; } = 60_000;

    /// <summary>Transactions the ledger keeps; past it new debits and credits are declined with LEDGER_FULL.</summary>
    public int MaxLedgerEntries { get; init; } = 16 * 1024 * 1024;

    /// <summary>The batch this endpoint declares: a batch must fit in a stream's pending answers.</summary>
    public int DeclaredBatchMax => Math.Min(BatchMax, MaxPendingPerStream);

    public const int MaxCapacityTps = 100_000_000;
    public const int MaxPendingLimit = 1 << 20; // The queue is pre-sized to it: ~32 MB per stream at the top.

    /// <summary>Throws BankOptionException (an ArgumentException) naming the first invalid field.</summary>
    public BankSimulatorOptions Validate()
    {
        Require(Port is >= 0 and <= 65_535, nameof(Port), "must be between 0 and 65535", Port);
        if (ListenAddress is null) throw new BankOptionException(nameof(ListenAddress), $"{nameof(ListenAddress)} is required.");
        if (Latency is null) throw new BankOptionException(nameof(Latency), $"{nameof(Latency)} is required.");
        if (Latency.Problem() is { } problem) throw new BankOptionException(nameof(Latency), $"{nameof(Latency)}: {problem}.");
        Require(FailureRate is >= 0 and <= 1, nameof(FailureRate), "must be between 0 and 1", FailureRate);
        Require(NoAnswerRate is >= 0 and <= 1, nameof(NoAnswerRate), "must be between 0 and 1", NoAnswerRate);
        Require(SystemErrorRate is >= 0 and <= 1, nameof(SystemErrorRate), "must be between 0 and 1", SystemErrorRate);
        Require(CapacityTps is >= 0 and <= MaxCapacityTps, nameof(CapacityTps), $"must be between 0 (unlimited) and {MaxCapacityTps}", CapacityTps);
        if (BankCodes is null) throw new BankOptionException(nameof(BankCodes), $"{nameof(BankCodes)} must not be null.");
        foreach (int code in BankCodes)
            Require(code is >= 1 and <= 999, nameof(BankCodes), "entries must be 3-digit bank codes (1..999)", code);
        Require(MaxPendingPerStream is >= 1 and <= MaxPendingLimit, nameof(MaxPendingPerStream), $"must be between 1 and {MaxPendingLimit}", MaxPendingPerStream);
        Require(BatchMax is >= 1 and <= Switch.Contracts.V1.ExchangeBatch.MaxElements, nameof(BatchMax),
            $"must be between 1 (single messages only) and {Switch.Contracts.V1.ExchangeBatch.MaxElements}", BatchMax);
        Require(MaxQueueingDelayMs is >= 0 and <= 60_000, nameof(MaxQueueingDelayMs), "must be between 0 and 60000", MaxQueueingDelayMs);
        Require(MaxSilenceMs is >= 1 and <= 3_600_000, nameof(MaxSilenceMs), "must be between 1 and 3600000", MaxSilenceMs);
        Require(MaxLedgerEntries >= 1, nameof(MaxLedgerEntries), "must be at least 1", MaxLedgerEntries);
        return this;
    }

    private static void Require(bool condition, string field, string rule, IFormattable value)
    {
        // "is >= 0 and <= 1" is false for NaN, so NaN rates are refused too.
        if (!condition)
            throw new BankOptionException(field, $"{field} {rule}, got {value.ToString(null, CultureInfo.InvariantCulture)}.");
    }

    public override string ToString()
    {
        string capacity = CapacityTps == 0 ? "unlimited" : CapacityTps.ToString(CultureInfo.InvariantCulture);
        string codes = BankCodes.Count == 0 ? "" : $", bank-codes {string.Join(',', BankCodes)}";
        return string.Create(CultureInfo.InvariantCulture,
            $"latency {Latency}, failure-rate {FailureRate}, no-answer-rate {NoAnswerRate}, system-error-rate {SystemErrorRate}, capacity-tps {capacity}, seed {Seed}{codes}");
    }
}

/// <summary>An invalid <see cref="BankSimulatorOptions"/> field; ParamName is the field, Message names it too.</summary>
public sealed class BankOptionException : ArgumentException
{
    private readonly string _text;

    public BankOptionException(string field, string message) : base(message, field) => _text = message;

    /// <summary>The message alone, without ArgumentException's "(Parameter ...)" suffix.</summary>
    public override string Message => _text;
}
