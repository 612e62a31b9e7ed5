using System.Diagnostics;
using Switch.Contracts.V1;

namespace Switch.BankSim;

/// <summary>What the bank did with a transaction id.</summary>
public enum BankOutcome
{
    /// <summary>Executed: the money moved (unless <see cref="BankLedgerEntry.Reversed"/>).</summary>
    Succeeded,

    /// <summary>Declined with a reason; nothing moved.</summary>
    Failed,

    /// <summary>The reversal arrived first: the id is barred and will never execute.</summary>
    Barred,
}

/// <summary>The bank's own record of one switch transaction.</summary>
/// <param name="Operation">Debit or Credit; Reverse for an id barred by an early reversal.</param>
/// <param name="ExecutedAtUtc">When the bank executed, declined, or (for Barred) received the reversal.</param>
public readonly record struct BankLedgerEntry(
    long TransactionId,
    BankOperation Operation,
    long AmountFen,
    string Account,
    BankOutcome Outcome,
    string Reason,
    DateTime ExecutedAtUtc,
    bool Reversed)
{
    /// <summary>What this entry moved, seen from the bank's customer: +credit, -debit, 0 if declined, barred or reversed.</summary>
    public long NetFen => Outcome != BankOutcome.Succeeded || Reversed ? 0
        : Operation == BankOperation.Credit ? AmountFen : -AmountFen;
}

/// <summary>How the bank has treated requests so far. Every request lands in at most one bucket.</summary>
/// <param name="Executed">Debits and credits executed (money moved).</param>
/// <param name="Failed">Debits and credits declined with a reason (recorded, not executed).</param>
/// <param name="Busy">Declined with BANK_BUSY over capacity (not recorded, not executed).</param>
/// <param name="Unanswered">Executed or declined, then never answered (NoAnswerRate); also in Executed or Failed.</param>
/// <param name="RefusedLate">Past their deadline when due: neither executed nor answered.</param>
/// <param name="Invalid">Malformed requests refused.</param>
/// <param name="Reversals">Reverse requests executed.</param>
/// <param name="Abandoned">Accepted, then dropped because the caller went away before they were due.</param>
/// <param name="SystemErrors">Answered FAILED/SYSTEM_ERROR by SystemErrorRate (not recorded, not executed).</param>
public readonly record struct BankLedgerCounts(
    long Executed, long Failed, long Busy, long Unanswered, long RefusedLate, long Invalid, long Reversals, long Abandoned,
    long SystemErrors);

/// <summary>
/// The bank's record per switch transaction id. Thread-safe: ids are spread over lock stripes so that
/// streams executing different transactions rarely meet. Idempotent: an id executes at most once. One ledger may
/// serve several endpoints (a bank's data centres in front of one core system, or an endpoint restarted): pass it
/// to each <see cref="BankSimulatorServer.StartAsync"/>, so any of them answers a query about what another executed.
/// </summary>
public sealed class BankLedger
{
    private const int StripeCount = 64; // Power of two: a mask picks the stripe.

    private readonly Stripe[] _stripes = new Stripe[StripeCount];
    private readonly int _maxEntries;
    private int _entryCount;
    private long _executed, _failed, _busy, _unanswered, _refusedLate, _invalid, _reversals, _abandoned, _systemErrors;

    public BankLedger(int maxEntries = 16 * 1024 * 1024)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxEntries, 1);
        _maxEntries = maxEntries;
        for (int i = 0; i < StripeCount; i++) _stripes[i] = new Stripe();
    }

    public int Count => Volatile.Read(ref _entryCount);

    public BankLedgerCounts Counts => new(
        Interlocked.Read(ref _executed), Interlocked.Read(ref _failed), Interlocked.Read(ref _busy),
        Interlocked.Read(ref _unanswered), Interlocked.Read(ref _refusedLate), Interlocked.Read(ref _invalid),
        Interlocked.Read(ref _reversals), Interlocked.Read(ref _abandoned), Interlocked.Read(ref _systemErrors));

    public bool TryGet(long transactionId, out BankLedgerEntry entry)
    {
        Stripe stripe = StripeOf(transactionId);
        lock (stripe) return stripe.Entries.TryGetValue(transactionId, out entry);
    }

    /// <summary>Every entry, ordered by transaction id, for comparison with the switch's record.</summary>
    public IReadOnlyList<BankLedgerEntry> Snapshot()
    {
        var all = new List<BankLedgerEntry>(Count);
        foreach (Stripe stripe in _stripes)
            lock (stripe) all.AddRange(stripe.Entries.Values);
        all.Sort(static (a, b) => a.TransactionId.CompareTo(b.TransactionId));
        return all;
    }

    /// <summary>Sum of <see cref="BankLedgerEntry.NetFen"/>: credits minus debits that stand.</summary>
    public long NetFen()
    {
        long net = 0;
        foreach (Stripe stripe in _stripes)
            lock (stripe)
                foreach (var entry in stripe.Entries.Values) net = checked(net + entry.NetFen);
        return net;
    }

    internal enum ExecuteKind { Recorded, Repeat, Barred, Mismatch, Full }

    /// <summary>
    /// Executes (or declines, with <paramref name="declineReason"/>) a debit or credit once. A repeat with the same
    /// operation, amount and account gets the recorded entry back and changes nothing.
    /// </summary>
    internal ExecuteKind Execute(long transactionId, BankOperation operation, long amountFen, string account,
        string? declineReason, DateTime nowUtc, out BankLedgerEntry entry)
    {
        Debug.Assert(operation is BankOperation.Debit or BankOperation.Credit);
        Debug.Assert(amountFen > 0 && account.Length > 0);
        Stripe stripe = StripeOf(transactionId);
        lock (stripe)
        {
            if (stripe.Entries.TryGetValue(transactionId, out entry))
            {
                if (entry.Outcome == BankOutcome.Barred) return ExecuteKind.Barred;
                bool same = entry.Operation == operation && entry.AmountFen == amountFen && entry.Account == account;
                return same ? ExecuteKind.Repeat : ExecuteKind.Mismatch;
            }
            if (Interlocked.Increment(ref _entryCount) > _maxEntries)
            {
                Interlocked.Decrement(ref _entryCount);
                return ExecuteKind.Full;
            }
            entry = declineReason is null
                ? new BankLedgerEntry(transactionId, operation, amountFen, account, BankOutcome.Succeeded, "", nowUtc, false)
                : new BankLedgerEntry(transactionId, operation, amountFen, account, BankOutcome.Failed, declineReason, nowUtc, false);
            stripe.Entries.Add(transactionId, entry);
        }
        Interlocked.Increment(ref declineReason is null ? ref _executed : ref _failed);
        return ExecuteKind.Recorded;
    }

    /// <summary>
    /// Marks the id reversed: undoes an executed debit or credit, or bars the id if it has not arrived yet.
    /// Idempotent. False only when the id is unknown and even the bars' headroom is used up (nothing recorded).
    /// </summary>
    internal bool Reverse(long transactionId, DateTime nowUtc)
    {
        Stripe stripe = StripeOf(transactionId);
        lock (stripe)
        {
            if (stripe.Entries.TryGetValue(transactionId, out var entry))
            {
                if (!entry.Reversed) stripe.Entries[transactionId] = entry with { Reversed = true };
            }
            else
            {
                // Bars get headroom past the limit: refusing one is safe (the switch retries), but it should be rare.
                if (Interlocked.Increment(ref _entryCount) > _maxEntries + _maxEntries / 4 + 1)
                {
                    Interlocked.Decrement(ref _entryCount);
                    return false;
                }
                stripe.Entries.Add(transactionId, new BankLedgerEntry(
                    transactionId, BankOperation.Reverse, 0, "", BankOutcome.Barred, BankReasons.Reversed, nowUtc, true));
            }
        }
        Interlocked.Increment(ref _reversals);
        return true;
    }

    internal void CountBusy() => Interlocked.Increment(ref _busy);
    internal void CountUnanswered() => Interlocked.Increment(ref _unanswered);
    internal void CountRefusedLate() => Interlocked.Increment(ref _refusedLate);
    internal void CountInvalid() => Interlocked.Increment(ref _invalid);
    internal void CountAbandoned(int count) => Interlocked.Add(ref _abandoned, count);
    internal void CountSystemError() => Interlocked.Increment(ref _systemErrors);

    private Stripe StripeOf(long transactionId) => _stripes[(int)((ulong)transactionId * 0x9E3779B97F4A7C15UL >> 58)];

    private sealed class Stripe
    {
        public readonly Dictionary<long, BankLedgerEntry> Entries = new();
    }
}
