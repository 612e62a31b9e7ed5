using System.Diagnostics;
using Switch.Contracts.V1;

namespace Switch.BankSim;

/// <summary>
/// The bank's decisions, shared by the unary handlers and every Exchange stream of one endpoint: validation,
/// admission against capacity, latency, and execution against the ledger. Transport-free and thread-safe.
/// </summary>
internal sealed class SimulatedBank
{
    /// <summary>Longest account string accepted (real account numbers are at most ~32 characters).</summary>
    public const int MaxAccountChars = 64;

    private readonly BankDice _dice;
    private readonly CapacityMeter _capacity;
    private readonly long _maxQueueingDelayTicks;

    public SimulatedBank(BankSimulatorOptions options, BankLedger ledger, CancellationToken stopping)
    {
        _options = options.Validate();
        Ledger = ledger;
        Stopping = stopping;
        _dice = new BankDice(options.Seed);
        _capacity = new CapacityMeter(options.CapacityTps, options.MaxQueueingDelayMs);
        _maxQueueingDelayTicks = options.MaxQueueingDelayMs * Stopwatch.Frequency / 1000;
    }

    private BankSimulatorOptions _options;
    private long _executedHere;

    /// <summary>Debits and credits this endpoint executed (its books may be shared with the bank's other endpoints).</summary>
    public long ExecutedHere => Interlocked.Read(ref _executedHere);

    /// <summary>The behaviour now; each request reads it once, so a change applies from the next request.</summary>
    public BankSimulatorOptions Options => Volatile.Read(ref _options);

    /// <summary>
    /// Changes the behaviour while serving (an endpoint turning slow, failing or silent, then healing). Only
    /// Latency and the rates may change: the rest is bound at start (socket, dice, capacity meter, queues).
    /// </summary>
    public void Reconfigure(BankSimulatorOptions next)
    {
        next.Validate();
        BankSimulatorOptions now = Options;
        Fixed(nameof(BankSimulatorOptions.Port), next.Port == now.Port);
        Fixed(nameof(BankSimulatorOptions.Seed), next.Seed == now.Seed);
        Fixed(nameof(BankSimulatorOptions.CapacityTps), next.CapacityTps == now.CapacityTps);
        Fixed(nameof(BankSimulatorOptions.MaxQueueingDelayMs), next.MaxQueueingDelayMs == now.MaxQueueingDelayMs);
        Fixed(nameof(BankSimulatorOptions.MaxPendingPerStream), next.MaxPendingPerStream == now.MaxPendingPerStream);
        Fixed(nameof(BankSimulatorOptions.BatchMax), next.BatchMax == now.BatchMax);
        Fixed(nameof(BankSimulatorOptions.MaxLedgerEntries), next.MaxLedgerEntries == now.MaxLedgerEntries);
        Volatile.Write(ref _options, next);

        static void Fixed(string field, bool unchanged)
        {
            if (!unchanged) throw new BankOptionException(field, $"{field} cannot change while the endpoint runs (only Latency and the rates can).");
        }
    }

    public BankLedger Ledger { get; }

    /// <summary>Canceled when the endpoint shuts down: held calls and streams end.</summary>
    public CancellationToken Stopping { get; }

    /// <summary>Why the request is malformed for <paramref name="operation"/>, or null.</summary>
    public static string? Problem(in BankRequestFields request, BankOperation operation)
    {
        if (operation is not (BankOperation.Debit or BankOperation.Credit or BankOperation.Query or BankOperation.Reverse))
            return $"operation must be DEBIT, CREDIT, QUERY or REVERSE, got {operation}.";
        if (request.TransactionId <= 0)
            return $"transaction_id must be positive, got {request.TransactionId}.";
        if (operation is BankOperation.Query or BankOperation.Reverse) return null;
        if (request.AmountFen <= 0)
            return $"amount_fen must be positive for {operation}, got {request.AmountFen}.";
        if (request.Account.IsBlank)
            return $"account is required for {operation}.";
        if (request.Account.Length > MaxAccountChars)
            return $"account must be at most {MaxAccountChars} characters, got {request.Account.Length}.";
        return null;
    }

    /// <summary>
    /// Admits a valid request: false with a BANK_BUSY answer when past twice the capacity (debits and credits
    /// only: a query or reversal answered FAILED could be read as the transaction's outcome, so those wait
    /// the longest queueing delay instead). Otherwise the delay until the request is due, in Stopwatch ticks.
    /// </summary>
    public bool TryAdmit(in BankRequestFields request, BankOperation operation, long nowTicks, out long delayTicks, out BankAnswer? busy)
    {
        busy = null;
        BankSimulatorOptions options = Options;
        long queueingTicks;
        if (!_capacity.TryAdmit(nowTicks, out queueingTicks))
        {
            if (operation is BankOperation.Debit or BankOperation.Credit)
            {
                Ledger.CountBusy();
                delayTicks = 0;
                busy = Failed(request.TransactionId, operation, BankReasons.BankBusy);
                return false;
            }
            queueingTicks = _maxQueueingDelayTicks;
        }
        double latencyMs = _dice.LatencyMs(options.Latency);
        delayTicks = queueingTicks + (long)(latencyMs * Stopwatch.Frequency / 1000);
        return true;
    }

    /// <summary>
    /// Executes a valid, admitted request that is due and within its deadline. Null means the bank stays silent
    /// (NoAnswerRate): the operation was executed or declined and recorded, but no one is told.
    /// </summary>
    public BankAnswer? Execute(in BankRequestFields request, BankOperation operation, DateTime nowUtc)
    {
        long id = request.TransactionId;
        BankSimulatorOptions options = Options;
        switch (operation)
        {
            case BankOperation.Debit or BankOperation.Credit:
            {
                // Only a new id can meet a system failure: one already recorded is answered as recorded, or the
                // switch could be told FAILED about money that moved.
                if (options.SystemErrorRate > 0 && !Ledger.TryGet(id, out _) && _dice.Chance(options.SystemErrorRate))
                {
                    Ledger.CountSystemError();
                    return Failed(id, operation, BankReasons.SystemError);
                }
                string? decline = _dice.Decline(options.FailureRate);
                var kind = Ledger.Execute(id, operation, request.AmountFen, request.Account, decline, nowUtc, out var entry);
                switch (kind)
                {
                    case BankLedger.ExecuteKind.Recorded:
                        Interlocked.Increment(ref _executedHere);
                        if (_dice.Chance(options.NoAnswerRate))
                        {
                            Ledger.CountUnanswered();
                            return null;
                        }
                        return Answer(id, entry, operation);
                    case BankLedger.ExecuteKind.Repeat:
                    case BankLedger.ExecuteKind.Barred:
                        return Answer(id, entry, operation);
                    case BankLedger.ExecuteKind.Mismatch:
                        return Failed(id, operation, BankReasons.TransactionIdReused);
                    case BankLedger.ExecuteKind.Full:
                        return Failed(id, operation, BankReasons.LedgerFull);
                    default:
                        throw new UnreachableException($"Unknown ledger result {kind}.");
                }
            }
            case BankOperation.Query:
                return Ledger.TryGet(id, out var found)
                    ? Answer(found.TransactionId, found.Reversed, found.Outcome, found.Reason, operation)
                    : new BankAnswer(id, operation, BankReply.NotFound, "");
            case BankOperation.Reverse:
                return Ledger.Reverse(id, nowUtc)
                    ? new BankAnswer(id, operation, BankReply.Succeeded, "")
                    : Failed(id, operation, BankReasons.LedgerFull);
            default:
                throw new UnreachableException($"Execute called with unvalidated operation {operation}.");
        }
    }

    /// <summary>The recorded outcome as the bank reports it: a reversal (or bar) wins over everything.</summary>
    private static BankAnswer Answer(long transactionId, in StoredEntry entry, BankOperation operation) =>
        Answer(transactionId, entry.Reversed, entry.Outcome, StoredEntry.ReasonOf(entry.Reason), operation);

    private static BankAnswer Answer(long transactionId, bool reversed, BankOutcome outcome, string reason, BankOperation operation)
    {
        if (reversed) return Failed(transactionId, operation, BankReasons.Reversed);
        return outcome switch
        {
            BankOutcome.Succeeded => new BankAnswer(transactionId, operation, BankReply.Succeeded, ""),
            BankOutcome.Failed => Failed(transactionId, operation, reason),
            _ => throw new UnreachableException($"A barred entry is always reversed (id {transactionId})."),
        };
    }

    public static BankAnswer Failed(long transactionId, BankOperation operation, string reason) =>
        new(transactionId, operation, BankReply.Failed, reason);

    /// <summary>Now in Unix microseconds, the unit of BankRequest.deadline_unix_us.</summary>
    public static long UnixMicros(DateTime utc) => (utc.Ticks - DateTime.UnixEpoch.Ticks) / 10;
}
