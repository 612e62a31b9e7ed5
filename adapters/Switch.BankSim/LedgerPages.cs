using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Switch.BankSim;

/// <summary>
/// One ledger stripe's entries by key, in pages of <see cref="PageEntries"/> consecutive keys, found through a small
/// page directory. The ledger only grows, and a page once made never moves: growing allocates one small page and
/// never copies or rehashes what is stored. A dictionary of entries doubled instead, and every stripe of every bank
/// reached the same size within the same half second under an even load (keys come in order): a bank at 180,000
/// transactions a second allocated gigabytes of large-object arrays at once and rehashed every entry it held, a
/// one-to-three-second stall in each bank's answers. Not thread-safe: the stripe's lock guards it.
/// Pages' entries are carved from native slabs, each twice the last up to <see cref="MaxSlabPages"/>: an entry holds no
/// reference, so the collector need never see them, and a transaction recorded allocates nothing on the managed heap
/// (a page header per 64). On the pinned-object heap the entries were 72 bytes a transaction counted against the
/// collector's budgets (in the load harness, the switch's process). Freed with the stripe (finalizer).
/// </summary>
internal sealed unsafe class LedgerPages
{
    /// <summary>Keys per page: 64 entries (4.6 KB) and a 64-bit map of those present.</summary>
    public const int PageEntries = 64;
    private const int PageShift = 6;

    private const int FirstSlabPages = 4, MaxSlabPages = 256;

    private readonly Dictionary<long, Page> _directory = new();
    private readonly List<IntPtr> _slabs = new();
    private StoredEntry* _free;     // the next page's entries in the newest slab
    private int _freePages;         // pages left there
    private int _nextSlabPages = FirstSlabPages;
    private Page? _lastPage; // the switch numbers its transactions in order: the next key is most often on the last page

    /// <summary>The entry stored under <paramref name="key"/>, or a null reference.</summary>
    public ref StoredEntry Find(long key)
    {
        Page? page = PageOf(key >> PageShift);
        int index = (int)(key & (PageEntries - 1));
        if (page is null || (page.Present & (1UL << index)) == 0) return ref Unsafe.NullRef<StoredEntry>();
        return ref page.Entries[index];
    }

    /// <summary>Whether the page for <paramref name="key"/> exists (else <see cref="Add"/> makes one).</summary>
    public bool HasPageFor(long key) => PageOf(key >> PageShift) is not null;

    /// <summary>The slot for a new key (one not stored yet, asserted), making its page if need be.</summary>
    public ref StoredEntry Add(long key)
    {
        long pageNo = key >> PageShift;
        Page? page = PageOf(pageNo);
        if (page is null)
        {
            page = new Page(pageNo, NewPageEntries());
            _directory.Add(pageNo, page);
            _lastPage = page;
        }
        int index = (int)(key & (PageEntries - 1));
        Debug.Assert((page.Present & (1UL << index)) == 0, "a key is added once");
        page.Present |= 1UL << index;
        return ref page.Entries[index];
    }

    /// <summary>Every stored entry, in no particular order.</summary>
    public IEnumerable<StoredEntry> Values
    {
        get
        {
            foreach (Page page in _directory.Values)
            {
                for (ulong present = page.Present; present != 0; present &= present - 1)
                {
                    yield return At(page, BitOperations.TrailingZeroCount(present));
                }
            }
        }
    }

    private Page? PageOf(long pageNo)
    {
        Page? last = _lastPage;
        if (last is not null && last.Number == pageNo) return last;
        if (!_directory.TryGetValue(pageNo, out Page? page)) return null;
        _lastPage = page;
        return page;
    }

    /// <summary>A copy of a page's entry (an iterator cannot hold a pointer).</summary>
    private static StoredEntry At(Page page, int index) => page.Entries[index];

    private StoredEntry* NewPageEntries()
    {
        if (_freePages == 0)
        {
            _slabs.EnsureCapacity(_slabs.Count + 1);
            _free = (StoredEntry*)NativeMemory.AllocZeroed((nuint)_nextSlabPages * PageEntries, (nuint)sizeof(StoredEntry));
            _slabs.Add((IntPtr)_free);
            _freePages = _nextSlabPages;
            _nextSlabPages = Math.Min(_nextSlabPages * 2, MaxSlabPages);
        }
        StoredEntry* entries = _free;
        _free += PageEntries;
        _freePages--;
        return entries;
    }

    ~LedgerPages()
    {
        foreach (IntPtr slab in _slabs) NativeMemory.Free((void*)slab);
    }

    private sealed class Page(long number, StoredEntry* entries)
    {
        public readonly long Number = number;
        public ulong Present;
        /// <summary><see cref="PageEntries"/> entries in a slab of the stripe's, zeroed, never moved.</summary>
        public readonly StoredEntry* Entries = entries;
    }
}
