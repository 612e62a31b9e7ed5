using System.Diagnostics;
using System.Globalization;
using System.Text;
using Switch.Contracts.V1;

namespace Switch.LoadGen;

/// <summary>What is sent: kinds, institutions, banks, accounts, amounts.</summary>
public enum Kind : byte { Payment, Payout, Refund, Query }

/// <summary>An outcome as the generator counts it.</summary>
public enum Outcome : byte { Succeeded, Failed, Unknown, Rejected, Processing, RpcError }

public sealed record InstitutionKey(string Code, string ApiKey);

public sealed record WorkloadOptions
{
    public const int MaxBanks = 32;
    public const int MaxInstitutions = 64;

    public static readonly IReadOnlyList<InstitutionKey> DemoInstitutions =
    [
        new("ALIPAY", "demo-alipay-key"), new("TENPAY", "demo-tenpay-key"), new("YEEPAY", "demo-yeepay-key"),
    ];

    public IReadOnlyList<InstitutionKey> Institutions { get; init; } = DemoInstitutions;
    public IReadOnlyList<string> Banks { get; init; } = ["102", "103", "105", "308"];
    /// <summary>Relative weights of payment, payout, refund, query.</summary>
    public IReadOnlyList<int> MixWeights { get; init; } = [70, 15, 5, 10];
    /// <summary>Distinct payer/payee accounts per bank: large enough that the per-account daily limit stays out of the
    /// figures (a minute at 180k/s is ~10 payments per account), small enough that the four demo banks' payers
    /// (800,000) stay within the switch's tracked-account bound (1,048,576), which refuses payers past it.</summary>
    public int AccountPool { get; init; } = DefaultAccountPool;
    public const int DefaultAccountPool = 200_000;
    public long MinAmountFen { get; init; } = 100;
    public long MaxAmountFen { get; init; } = 50_000;
    public int Seed { get; init; } = 1;

    public void Validate()
    {
        if (Institutions.Count is 0 or > MaxInstitutions) throw new ArgumentException($"institutions: 1 to {MaxInstitutions}, got {Institutions.Count}");
        if (Banks.Count is 0 or > MaxBanks) throw new ArgumentException($"banks: 1 to {MaxBanks}, got {Banks.Count}");
        foreach (string b in Banks)
        {
            if (!(b.Length is 3 or 12 && b.All(char.IsAsciiDigit))) throw new ArgumentException($"banks: '{b}' is not a 3-digit bank or 12-digit CNAPS code");
        }
        if (MixWeights.Count != 4 || MixWeights.Any(w => w < 0) || MixWeights.Sum() <= 0 || MixWeights[0] + MixWeights[1] <= 0)
        {
            throw new ArgumentException("mix: four non-negative weights (payment, payout, refund, query) with payments or payouts among them");
        }
        if (AccountPool is < 1 or > 100_000_000) throw new ArgumentException($"accounts: 1 to 100000000, got {AccountPool}");
        if (MinAmountFen < 1 || MaxAmountFen < MinAmountFen || MaxAmountFen > 1_000_000_000)
        {
            throw new ArgumentException($"amounts: 1 <= min <= max <= 1000000000 fen, got {MinAmountFen}..{MaxAmountFen}");
        }
    }

    /// <summary>"payment=70,payout=15,refund=5,query=10" (missing kinds weigh 0).</summary>
    public static IReadOnlyList<int> ParseMix(string text)
    {
        var weights = new int[4];
        foreach (string part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            string[] kv = part.Split('=');
            int index = kv[0] switch { "payment" => 0, "payout" => 1, "refund" => 2, "query" => 3, _ => -1 };
            if (kv.Length != 2 || index < 0 || !int.TryParse(kv[1], NumberStyles.None, CultureInfo.InvariantCulture, out int w) || w > 1_000_000)
            {
                throw new ArgumentException($"mix: '{part}' is not KIND=WEIGHT with KIND payment, payout, refund or query");
            }
            weights[index] = w;
        }
        return weights;
    }

    /// <summary>"CODE=KEY,CODE=KEY".</summary>
    public static IReadOnlyList<InstitutionKey> ParseInstitutions(string text) =>
        text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(p =>
        {
            string[] kv = p.Split('=');
            if (kv.Length != 2 || kv[0].Length == 0 || kv[1].Length == 0) throw new ArgumentException($"institutions: '{p}' is not CODE=API_KEY");
            return new InstitutionKey(kv[0], kv[1]);
        }).ToArray();
}

/// <summary>
/// Every request sent, by sequence number: what it was, when it was meant to go, and how many answers came back.
/// Pages are allocated as sequence numbers reach them, so memory follows what was sent, bounded by the capacity.
/// </summary>
public sealed class OrderBook
{
    public const long MaxCapacity = 1L << 28;
    private const int PageBits = 16;
    private const int PageSize = 1 << PageBits;

    public struct Entry
    {
        public long IntendedTicks;
        public long AmountFen;
        /// <summary>Refund: the original payment; query: the order queried; else -1.</summary>
        public long Target;
        /// <summary>A transfer's outstanding query (its sequence number), else -1; at most one at a time.</summary>
        public long PendingQuery;
        public int Answers;
        public Kind Kind;
        public byte Bank;
        public byte Institution;
        /// <summary>The lane that sent it: a lane whose stream broke in a switch-over settles what it left unanswered.</summary>
        public ushort Lane;
        public bool Sent;
    }

    private readonly Entry[]?[] _pages;
    private readonly object _grow = new();
    private long _nextSeq = -1;

    /// <param name="preallocate">Every page made and written before the run (an open loop knows its count): a page made
    /// during the run was fresh memory faulted in on the sending path, 3 MiB each 65,536 requests (the generator's
    /// largest cost in page faults at the design peak), and on a virtual machine each 4 KiB of it costs the host's fault.
    /// Off for the closed loop, whose capacity is a bound, not a count.</param>
    public OrderBook(long capacity, bool preallocate = false)
    {
        if (capacity is < 1 or > MaxCapacity) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, $"1 to {MaxCapacity} requests");
        Capacity = capacity;
        _pages = new Entry[]?[(capacity + PageSize - 1) >> PageBits];
        RunTag = Guid.NewGuid().ToString("N")[..8] + "-";
        if (!preallocate) return;
        for (int i = 0; i < _pages.Length; i++)
        {
            var page = new Entry[PageSize];
            page.AsSpan().Clear(); // written, so its memory is faulted in now, not by the first request on it
            _pages[i] = page;
        }
    }

    /// <summary>Pages made so far (each holds 65,536 requests): all of them from the start when preallocated.</summary>
    public int PagesMade => _pages.Count(page => page is not null);

    public long Capacity { get; }
    /// <summary>Prefix of every order number of this run: order numbers never collide with an earlier run's.</summary>
    public string RunTag
    {
        get => _runTag;
        init
        {
            _runTag = value;
            _runTagUtf8 = Encoding.UTF8.GetBytes(value);
        }
    }

    private readonly string _runTag = "";
    private readonly byte[] _runTagUtf8 = [];
    public long Issued => Math.Min(Volatile.Read(ref _nextSeq) + 1, Capacity);

    /// <summary>The next sequence number for the closed loop, or -1 when the capacity is used up.</summary>
    public long NextSeq()
    {
        long seq = Interlocked.Increment(ref _nextSeq);
        return seq < Capacity ? seq : -1;
    }

    /// <summary>The open loop issues schedule indexes itself; keeps Issued right.</summary>
    public void NoteIssued(long seq)
    {
        long seen;
        while ((seen = Volatile.Read(ref _nextSeq)) < seq && Interlocked.CompareExchange(ref _nextSeq, seq, seen) != seen) { }
    }

    public ref Entry At(long seq)
    {
        if ((ulong)seq >= (ulong)Capacity) throw new ArgumentOutOfRangeException(nameof(seq), seq, "outside the order book");
        Entry[]? page = Volatile.Read(ref _pages[seq >> PageBits]);
        if (page is null) page = Grow(seq >> PageBits);
        return ref page[seq & (PageSize - 1)];
    }

    /// <summary>An answer's entry, or false when the sequence number was never issued (an answer nobody asked for).</summary>
    public bool TryAt(long seq, out Entry[] page, out int index)
    {
        page = null!;
        index = 0;
        if ((ulong)seq >= (ulong)Capacity) return false;
        Entry[]? p = Volatile.Read(ref _pages[seq >> PageBits]);
        if (p is null) return false;
        page = p;
        index = (int)(seq & (PageSize - 1));
        return page[index].Sent;
    }

    private Entry[] Grow(long pageIndex)
    {
        lock (_grow)
        {
            Entry[]? page = _pages[pageIndex];
            if (page is null)
            {
                page = new Entry[PageSize];
                Volatile.Write(ref _pages[pageIndex], page);
            }
            return page;
        }
    }

    public string OrderNo(long seq) => RunTag + seq.ToString(CultureInfo.InvariantCulture);

    /// <summary>The sequence number in an order number of this run (UTF-8, as a result carries it), or -1.</summary>
    public long SeqOf(ReadOnlySpan<byte> orderNo)
    {
        if (!orderNo.StartsWith(_runTagUtf8)) return -1;
        return long.TryParse(orderNo[_runTagUtf8.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out long seq) ? seq : -1;
    }

    /// <summary>After the run: every issued request that got no answer (lost) and every extra answer (duplicated).</summary>
    public (long Lost, long Duplicated) Audit()
    {
        long lost = 0, duplicated = 0;
        long issued = Issued;
        for (long seq = 0; seq < issued; seq++)
        {
            Entry[]? page = _pages[seq >> PageBits];
            if (page is null) continue;
            ref Entry e = ref page[seq & (PageSize - 1)];
            if (!e.Sent) continue;
            if (e.Answers == 0) lost++;
            else if (e.Answers > 1) duplicated += e.Answers - 1;
        }
        return (lost, duplicated);
    }
}

/// <summary>A bounded ring of recent sequence numbers (successful payments to refund, finished orders to query).</summary>
internal sealed class RecentOrders
{
    private readonly long[] _ring;
    private long _written;
    private long _taken;

    public RecentOrders(int capacity) => _ring = new long[capacity];

    public void Add(long seq)
    {
        lock (_ring)
        {
            _ring[_written++ % _ring.Length] = seq;
            _taken = Math.Max(_taken, _written - _ring.Length);
        }
    }

    /// <summary>The oldest not yet taken, removed (a refund takes each payment once).</summary>
    public long Take()
    {
        lock (_ring)
        {
            return _taken < _written ? _ring[_taken++ % _ring.Length] : -1;
        }
    }

    /// <summary>Any held one, picked by the caller's random draw, left in place.</summary>
    public long Peek(int draw)
    {
        lock (_ring)
        {
            long held = _written - _taken;
            return held == 0 ? -1 : _ring[(_taken + (uint)draw % held) % _ring.Length];
        }
    }
}

/// <summary>Builds the requests of one lane (one institution), from a seeded random source.</summary>
internal sealed class RequestFactory
{
    private readonly WorkloadOptions _options;
    private readonly OrderBook _book;
    private readonly RunWire _wire;
    private readonly Random _random;
    private readonly int _institution;
    private readonly RecentOrders _refundable;
    private readonly RecentOrders _queryable;
    private readonly int _mixTotal;
    private readonly ushort _lane;

    public RequestFactory(WorkloadOptions options, RunWire wire, int institution, int lane, RecentOrders refundable, RecentOrders queryable)
    {
        Debug.Assert(lane is >= 0 and <= ushort.MaxValue);
        _options = options;
        _book = wire.Book;
        _wire = wire;
        _institution = institution;
        _lane = (ushort)lane;
        _random = new Random(HashCode.Combine(options.Seed, lane));
        _refundable = refundable;
        _queryable = queryable;
        _mixTotal = options.MixWeights.Sum();
    }

    /// <summary>Account number of an account index at a bank: 16 digits, the same for the same seed.</summary>
    public static string Account(int seed, int bank, int index) =>
        TransferFields.AccountPrefix + AccountDigits(seed, bank, index).ToString("D14", CultureInfo.InvariantCulture);

    /// <summary>The 14 digits of <see cref="Account"/> after its "62".</summary>
    private static ulong AccountDigits(int seed, int bank, int index)
    {
        ulong z = (ulong)(uint)seed * 0x9E3779B97F4A7C15UL ^ ((ulong)bank << 40) ^ (uint)index;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return z % 100_000_000_000_000UL;
    }

    /// <summary>The account of a payment or payout: drawn from the pool by its sequence number, so the request can be
    /// built again from its book entry alone.</summary>
    private static int AccountIndex(int seed, long seq, int pool)
    {
        ulong z = (ulong)seq * 0x9E3779B97F4A7C15UL ^ (uint)seed;
        z = (z ^ (z >> 31)) * 0xBF58476D1CE4E5B9UL;
        return (int)((z ^ (z >> 29)) % (ulong)pool);
    }

    /// <summary>The request of seq as it goes on the wire, from its book entry (as <see cref="Build"/> filled it): what a
    /// switch-over left untaken is sent again as it was.</summary>
    public static TransferFields Fields(WorkloadOptions options, RunWire wire, long seq)
    {
        ref OrderBook.Entry e = ref wire.Book.At(seq);
        Debug.Assert(e.Sent);
        var request = new TransferFields { Wire = wire, OrderSeq = seq, OriginalSeq = -1, Bank = -1 };
        switch (e.Kind)
        {
            case Kind.Refund:
                request.Kind = RequestKind.Refund;
                request.OriginalSeq = e.Target;
                request.AmountFen = e.AmountFen;
                break;
            case Kind.Query:
                request.Kind = RequestKind.Query;
                request.OrderSeq = e.Target;
                break;
            default:
                request.Kind = e.Kind == Kind.Payout ? RequestKind.Payout : RequestKind.AgreementPayment;
                request.AmountFen = e.AmountFen;
                request.Bank = e.Bank;
                request.AccountDigits = AccountDigits(options.Seed, e.Bank, AccountIndex(options.Seed, seq, options.AccountPool));
                break;
        }
        return request;
    }

    /// <summary>The message of seq (unary calls, and settling after a switch-over).</summary>
    public static TransferRequest Rebuild(WorkloadOptions options, RunWire wire, long seq) => Fields(options, wire, seq).ToMessage();

    /// <summary>Fills the book's entry for seq and returns the wire request. A refund or query with nothing to
    /// refer to yet is sent as a payment.</summary>
    public TransferFields Build(long seq, long intendedTicks)
    {
        ref OrderBook.Entry e = ref _book.At(seq);
        int draw = _random.Next(_mixTotal);
        Kind kind = Kind.Payment;
        for (int k = 0, acc = 0; k < 4; k++)
        {
            acc += _options.MixWeights[k];
            if (draw < acc) { kind = (Kind)k; break; }
        }
        if (_options.MixWeights[0] == 0 && kind is Kind.Refund or Kind.Query) kind = Kind.Payout;
        e.IntendedTicks = intendedTicks;
        e.Institution = (byte)_institution;
        e.Target = -1;
        e.PendingQuery = -1;
        e.Lane = _lane;
        if (kind == Kind.Refund && _refundable.Take() is var original and >= 0)
        {
            ref OrderBook.Entry o = ref _book.At(original);
            e.Kind = Kind.Refund;
            e.Bank = o.Bank;
            e.Target = original;
            e.AmountFen = Math.Max(1, o.AmountFen / 2);
        }
        else if (kind == Kind.Query && _queryable.Peek(_random.Next()) is var queried and >= 0
                 && Interlocked.CompareExchange(ref _book.At(queried).PendingQuery, seq, -1) == -1)
        {
            e.Kind = Kind.Query;
            e.Bank = _book.At(queried).Bank;
            e.Target = queried;
        }
        else
        {
            e.Kind = kind == Kind.Payout ? Kind.Payout : Kind.Payment;
            e.Bank = (byte)_random.Next(_options.Banks.Count);
            e.AmountFen = _options.MinAmountFen + (long)(_random.NextDouble() * (_options.MaxAmountFen - _options.MinAmountFen + 1));
            e.AmountFen = Math.Min(e.AmountFen, _options.MaxAmountFen);
        }
        e.Sent = true;
        return Fields(_options, _wire, seq);
    }
}
