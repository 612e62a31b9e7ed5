using System.Diagnostics;
using System.Runtime.CompilerServices;
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
/// Entries are stored without object references (the account inline, the reason as an index), so millions of
/// them cost the garbage collector nothing to mark and old tables never point at young objects: with a string
/// per entry, a bank at full load held tens of millions of live objects and every collection paid for them. Entries
/// live in pages of 64 that never move (<see cref="LedgerPages"/>): growing never copies what is stored.
/// </summary>
public sealed class BankLedger
{
    private const int StripeCount = 64; // Power of two: a mask picks the stripe.

    private readonly Stripe[] _stripes = new Stripe[StripeCount];
    private readonly int _maxEntries;
    /// <summary>Pages across the stripes: 4x what <see cref="_maxEntries"/> and the bars' headroom fill densely, so only
    /// ids so sparse that each takes a page of its own meet it (a ledger then refuses as if full).</summary>
    private readonly int _maxPages;
    private int _entryCount;
    private int _pageCount;
    private long _executed, _failed, _busy, _unanswered, _refusedLate, _invalid, _reversals, _abandoned, _systemErrors;

    public BankLedger(int maxEntries = 16 * 1024 * 1024)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxEntries, 1);
        _maxEntries = maxEntries;
        long withBars = MaxBarred(maxEntries);
        _maxPages = (int)Math.Min(int.MaxValue, 4 * ((withBars + LedgerPages.PageEntries - 1) / LedgerPages.PageEntries) + StripeCount);
        for (int i = 0; i < StripeCount; i++) _stripes[i] = new Stripe(i);
    }

    public int Count => Volatile.Read(ref _entryCount);

    public BankLedgerCounts Counts => new(
        Interlocked.Read(ref _executed), Interlocked.Read(ref _failed), Interlocked.Read(ref _busy),
        Interlocked.Read(ref _unanswered), Interlocked.Read(ref _refusedLate), Interlocked.Read(ref _invalid),
        Interlocked.Read(ref _reversals), Interlocked.Read(ref _abandoned), Interlocked.Read(ref _systemErrors));

    public bool TryGet(long transactionId, out BankLedgerEntry entry)
    {
        Stripe stripe = StripeOf(transactionId, out long key);
        lock (stripe)
        {
            ref StoredEntry stored = ref stripe.Entries.Find(key);
            bool found = !Unsafe.IsNullRef(ref stored);
            entry = found ? stripe.ToEntry(key, stored) : default;
            return found;
        }
    }

    /// <summary>Every entry, ordered by transaction id, for comparison with the switch's record.</summary>
    public IReadOnlyList<BankLedgerEntry> Snapshot()
    {
        var all = new List<BankLedgerEntry>(Count);
        foreach (Stripe stripe in _stripes)
            lock (stripe)
                foreach ((long key, StoredEntry stored) in stripe.Entries.Values) all.Add(stripe.ToEntry(key, stored));
        all.Sort(static (a, b) => a.TransactionId.CompareTo(b.TransactionId));
        return all;
    }

    /// <summary>Sum of <see cref="BankLedgerEntry.NetFen"/>: credits minus debits that stand.</summary>
    public long NetFen()
    {
        long net = 0;
        foreach (Stripe stripe in _stripes)
            lock (stripe)
                foreach ((_, StoredEntry stored) in stripe.Entries.Values) net = checked(net + stored.NetFen);
        return net;
    }

    internal enum ExecuteKind { Recorded, Repeat, Barred, Mismatch, Full }

    /// <summary>
    /// Executes (or declines, with <paramref name="declineReason"/>) a debit or credit once. A repeat with the same
    /// operation, amount and account gets the recorded entry back and changes nothing.
    /// </summary>
    internal ExecuteKind Execute(long transactionId, BankOperation operation, long amountFen, in BankAccount account,
        string? declineReason, DateTime nowUtc, out StoredEntry entry)
    {
        Debug.Assert(operation is BankOperation.Debit or BankOperation.Credit);
        Debug.Assert(amountFen > 0 && account.Length > 0);
        byte reason = StoredEntry.ReasonIndex(declineReason ?? "");
        Stripe stripe = StripeOf(transactionId, out long key);
        lock (stripe)
        {
            ref StoredEntry slot = ref stripe.Entries.Find(key);
            if (!Unsafe.IsNullRef(ref slot))
            {
                entry = slot;
                if (entry.Outcome == BankOutcome.Barred) return ExecuteKind.Barred;
                bool same = entry.Operation == operation && entry.AmountFen == amountFen && stripe.AccountEquals(entry, key, account);
                return same ? ExecuteKind.Repeat : ExecuteKind.Mismatch;
            }
            if (!TryCount(stripe, key, _maxEntries))
            {
                entry = default;
                return ExecuteKind.Full;
            }
            entry = new StoredEntry
            {
                Operation = operation,
                AmountFen = amountFen,
                Outcome = declineReason is null ? BankOutcome.Succeeded : BankOutcome.Failed,
                Reason = reason,
                ExecutedAtTicks = nowUtc.Ticks,
            };
            stripe.StoreAccount(ref entry, key, account);
            stripe.Entries.Add(key) = entry;
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
        Stripe stripe = StripeOf(transactionId, out long key);
        lock (stripe)
        {
            ref StoredEntry entry = ref stripe.Entries.Find(key);
            if (!Unsafe.IsNullRef(ref entry))
            {
                entry.Reversed = true;
            }
            else
            {
                // Bars get headroom past the limit: refusing one is safe (the switch retries), but it should be rare.
                if (!TryCount(stripe, key, MaxBarred(_maxEntries))) return false;
                stripe.Entries.Add(key) = new StoredEntry
                {
                    Operation = BankOperation.Reverse,
                    Outcome = BankOutcome.Barred,
                    Reason = StoredEntry.ReasonIndex(BankReasons.Reversed),
                    ExecutedAtTicks = nowUtc.Ticks,
                    Reversed = true,
                };
            }
        }
        Interlocked.Increment(ref _reversals);
        return true;
    }

    private static long MaxBarred(int maxEntries) => maxEntries + maxEntries / 4 + 1;

    /// <summary>Counts a new entry, and its page if it needs one, against the limits; false (nothing counted) if over.</summary>
    private bool TryCount(Stripe stripe, long key, long maxEntries)
    {
        if (Interlocked.Increment(ref _entryCount) > maxEntries)
        {
            Interlocked.Decrement(ref _entryCount);
            return false;
        }
        if (!stripe.Entries.HasPageFor(key) && Interlocked.Increment(ref _pageCount) > _maxPages)
        {
            Interlocked.Decrement(ref _pageCount);
            Interlocked.Decrement(ref _entryCount);
            return false;
        }
        return true;
    }

    internal void CountBusy() => Interlocked.Increment(ref _busy);
    internal void CountUnanswered() => Interlocked.Increment(ref _unanswered);
    internal void CountRefusedLate() => Interlocked.Increment(ref _refusedLate);
    internal void CountInvalid() => Interlocked.Increment(ref _invalid);
    internal void CountAbandoned(int count) => Interlocked.Add(ref _abandoned, count);
    internal void CountSystemError() => Interlocked.Increment(ref _systemErrors);

    /// <summary>Ids in blocks of 2^StripeBlockShift consecutive ones share a stripe.</summary>
    private const int StripeBlockShift = 10;
    private const int StripeBits = 6; // log2 StripeCount
    private const ulong BlockMask = (1UL << StripeBlockShift) - 1;

    /// <summary>
    /// The id's stripe, and its key there: the id without its stripe bits. The switch numbers its transactions in order,
    /// so a stripe's keys come dense and in order, and each new one lands on the page of the last (see
    /// <see cref="LedgerPages"/>). Striped by a hash of the id, each insert missed the cache on a random bucket and again
    /// on the entry it collided with: the simulator's largest cost at 60,000 tx/s (profiled).
    /// Streams still rarely meet: a stripe holds a block of 1,024 consecutive ids, and a batch's ids span a few blocks.
    /// </summary>
    private Stripe StripeOf(long transactionId, out long key)
    {
        ulong id = (ulong)transactionId;
        key = (long)((id >> (StripeBlockShift + StripeBits) << StripeBlockShift) | (id & BlockMask));
        Stripe stripe = _stripes[(int)(id >> StripeBlockShift) & (StripeCount - 1)];
        Debug.Assert(stripe.IdOf(key) == transactionId, "a key and its stripe give the id back");
        return stripe;
    }

    /// <summary>The id whose key in stripe <paramref name="stripeIndex"/> is <paramref name="key"/>: <see cref="StripeOf"/>
    /// undone (an entry does not keep its id: its place does).</summary>
    private static long IdOf(int stripeIndex, long key) =>
        (long)(((ulong)key >> StripeBlockShift << (StripeBlockShift + StripeBits)) | ((ulong)stripeIndex << StripeBlockShift) | ((ulong)key & BlockMask));

    private sealed class Stripe(int index)
    {
        public long IdOf(long key) => BankLedger.IdOf(index, key);

        /// <summary>By key (see <see cref="StripeOf"/>); an entry's id is its key's (<see cref="IdOf"/>).</summary>
        public readonly LedgerPages Entries = new();
        /// <summary>Accounts that do not fit inline (longer than 32 characters or not ASCII), by key: rare, kept apart.</summary>
        private readonly Dictionary<long, string> _longAccounts = new();

        public void StoreAccount(ref StoredEntry entry, long key, in BankAccount account)
        {
            if (account.IsInline)
            {
                account.Inline.CopyTo(entry.Account);
                entry.AccountLength = (byte)account.Inline.Length;
                return;
            }
            entry.AccountLength = StoredEntry.AccountApart;
            _longAccounts[key] = account.Apart!;
        }

        public bool AccountEquals(in StoredEntry entry, long key, in BankAccount account)
        {
            if (entry.AccountLength == StoredEntry.AccountApart)
            {
                return _longAccounts.TryGetValue(key, out string? apart) && apart == account.Apart;
            }
            return account.IsInline && account.Inline.SequenceEqual(((ReadOnlySpan<byte>)entry.Account)[..entry.AccountLength]);
        }

        public BankLedgerEntry ToEntry(long key, in StoredEntry stored)
        {
            string account = stored.AccountLength == StoredEntry.AccountApart ? _longAccounts[key]
                : System.Text.Encoding.ASCII.GetString(((ReadOnlySpan<byte>)stored.Account)[..stored.AccountLength]);
            return new BankLedgerEntry(IdOf(key), stored.Operation, stored.AmountFen, account, stored.Outcome,
                StoredEntry.ReasonOf(stored.Reason), new DateTime(stored.ExecutedAtTicks, DateTimeKind.Utc), stored.Reversed);
        }
    }
}

/// <summary>A ledger entry as stored: no object references (see <see cref="BankLedger"/>).</summary>
internal struct StoredEntry
{
    public const int InlineAccountChars = 32;
    /// <summary><see cref="AccountLength"/> of an account kept in the stripe's side table.</summary>
    public const byte AccountApart = byte.MaxValue;

    /// <summary>Every reason the ledger records: none, the declines, and the reversal's.</summary>
    private static readonly string[] Reasons =
        ["", BankReasons.InsufficientFunds, BankReasons.LimitExceeded, BankReasons.AccountClosed, BankReasons.Reversed];

    public long AmountFen;
    public long ExecutedAtTicks;
    // A byte each, and no id (its place in the stripe's pages gives it): 56 bytes an entry, not 72. An entry is a new one
    // for every transaction a bank executes, so its size is the simulated banks' fresh memory a transaction, and on a
    // virtual machine a fresh page costs the host's fault when first written (README "Bank simulator").
    private byte _operation;
    private byte _outcome;
    public bool Reversed;
    public byte Reason;
    public byte AccountLength;
    public AccountBytes Account;

    /// <summary>The whole size of an entry (the tests hold it).</summary>
    public const int Bytes = 56;

    public BankOperation Operation
    {
        readonly get => (BankOperation)_operation;
        set => _operation = checked((byte)(int)value);
    }

    public BankOutcome Outcome
    {
        readonly get => (BankOutcome)_outcome;
        set => _outcome = checked((byte)(int)value);
    }

    public readonly long NetFen => Outcome != BankOutcome.Succeeded || Reversed ? 0
        : Operation == BankOperation.Credit ? AmountFen : -AmountFen;

    public static byte ReasonIndex(string reason)
    {
        int index = Array.IndexOf(Reasons, reason);
        if (index < 0) throw new ArgumentException($"ledger: '{reason}' is not a reason the bank records", nameof(reason));
        return (byte)index;
    }

    public static string ReasonOf(byte index) => Reasons[index];

    [InlineArray(InlineAccountChars)]
    public struct AccountBytes
    {
        private byte _first;
    }
}
