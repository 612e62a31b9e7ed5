namespace Switch.BankSim;

/// <summary>The reason codes the simulated bank puts in BankResponse.reason.</summary>
public static class BankReasons
{
    // Declines a real bank gives for a debit or credit it did not execute.
    public const string InsufficientFunds = "INSUFFICIENT_FUNDS";
    public const string AccountClosed = "ACCOUNT_CLOSED";
    public const string LimitExceeded = "LIMIT_EXCEEDED";

    /// <summary>Over twice its capacity: nothing executed, worth retrying later.</summary>
    public const string BankBusy = "BANK_BUSY";

    /// <summary>The bank's own systems failed (SystemErrorRate): nothing executed; the switch's breaker counts it
    /// against the endpoint, unlike a decline.</summary>
    public const string SystemError = "SYSTEM_ERROR";

    /// <summary>The transaction was reversed (or its reversal arrived before it).</summary>
    public const string Reversed = "REVERSED";

    /// <summary>Stream form of INVALID_ARGUMENT: the request was malformed; nothing executed.</summary>
    public const string InvalidRequest = "INVALID_REQUEST";

    /// <summary>The id is already recorded for a different operation, amount or account; nothing executed.</summary>
    public const string TransactionIdReused = "TRANSACTION_ID_REUSED";

    /// <summary>The ledger is at MaxLedgerEntries; nothing executed.</summary>
    public const string LedgerFull = "LEDGER_FULL";

    /// <summary>The declines chosen by FailureRate, with their weights out of 100 (insufficient funds dominate in practice).</summary>
    internal static readonly (string Reason, int Weight)[] Declines =
        [(InsufficientFunds, 70), (LimitExceeded, 20), (AccountClosed, 10)];
}
