using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Switch.BankSim;

/// <summary>
/// One ledger stripe's entries by key, in pages of <see cref="PageEntries"/> consecutive keys, found through a small
/// page directory. The ledger only grows: growing makes one small page and never rehashes what is stored. A dictionary
/// of entries doubled instead, and every stripe of every bank reached the same size within the same half second under
/// an even load (keys come in order): a bank at 180,000 transactions a second allocated gigabytes of large-object
/// arrays at once and rehashed every entry it held, a one-to-three-second stall in each bank's answers. Not
/// thread-safe: the stripe's lock guards it.
/// <para>A page holds only the entries present, packed in key order (an entry's place: the keys present before it,
/// a popcount of the page's 64-bit map), in a block of 1, 2, 4 ... 64 entries that doubles when full. A bank sees
/// only its own share of the switch's transaction ids: with four banks a page of 64 slots held about 16 entries, and the
/// simulated banks' fresh memory (256 bytes a transaction, 48 MB/s at the design peak) was their largest cost after
/// the decoding, page faults 5% of the switch's CPU; with a hundred banks it would be 7 KB a transaction.</para>
/// Blocks are carved from native slabs, each twice the last up to <see cref="MaxSlabEntries"/> entries; a block
/// outgrown goes to a free list of its size and is used again. An entry holds no reference, so the collector need
/// never see them, and a transaction recorded allocates nothing on the managed heap (a page header per 64 keys).
/// Freed with the stripe (finalizer).
/// </summary>
internal sealed unsafe class LedgerPages
{
    /// <summary>Keys per page, and a 64-bit map of those present.</summary>
    public const int PageEntries = 64;
    private const int PageShift = 6;
    /// <summary>A new page's block: a bank among many gets one of each 64 consecutive ids, or none.</summary>
    private const int FirstBlockEntries = 1;
    private const int BlockSizes = 7; // 1, 2, 4, 8, 16, 32, 64
    private const int FirstSlabEntries = 256, MaxSlabEntries = 16384; // 18 KB to 1.2 MB

    private readonly Dictionary<long, Page> _directory = new();
    private readonly List<IntPtr> _slabs = new();
    private readonly StoredEntry*[] _freeBlocks = new StoredEntry*[BlockSizes]; // by size class, linked through each block's first word
    private StoredEntry* _slabFree;  // the rest of the newest slab
    private int _slabFreeEntries;
    private int _nextSlabEntries = FirstSlabEntries;
    private Page? _lastPage; // the switch numbers its transactions in order: the next key is most often on the last page

    /// <summary>Entries the slabs hold room for (what the stripe's memory is): the tests bound it.</summary>
    public long SlabEntries { get; private set; }

    /// <summary>The entry stored under <paramref name="key"/>, or a null reference (valid until the next <see cref="Add"/>).</summary>
    public ref StoredEntry Find(long key)
    {
        Page? page = PageOf(key >> PageShift);
        ulong bit = 1UL << (int)(key & (PageEntries - 1));
        if (page is null || (page.Present & bit) == 0) return ref Unsafe.NullRef<StoredEntry>();
        return ref page.Entries[BitOperations.PopCount(page.Present & (bit - 1))];
    }

    /// <summary>Whether the page for <paramref name="key"/> exists (else <see cref="Add"/> makes one).</summary>
    public bool HasPageFor(long key) => PageOf(key >> PageShift) is not null;

    /// <summary>The slot for a new key (one not stored yet, asserted), zeroed, making its page if need be; valid until
    /// the next <see cref="Add"/> (the page's entries after it move up one).</summary>
    public ref StoredEntry Add(long key)
    {
        long pageNo = key >> PageShift;
        Page? page = PageOf(pageNo);
        if (page is null)
        {
            page = new Page(pageNo, NewBlock(0), FirstBlockEntries);
            _directory.Add(pageNo, page);
            _lastPage = page;
        }
        ulong bit = 1UL << (int)(key & (PageEntries - 1));
        Debug.Assert((page.Present & bit) == 0, "a key is added once");
        int count = BitOperations.PopCount(page.Present);
        int at = BitOperations.PopCount(page.Present & (bit - 1));
        if (count == page.Capacity) Grow(page, count);
        Debug.Assert(count < page.Capacity && page.Capacity <= PageEntries);
        var entries = new Span<StoredEntry>(page.Entries, page.Capacity);
        if (at < count) entries[at..count].CopyTo(entries[(at + 1)..]); // keys mostly come in order: at == count
        entries[at] = default;
        page.Present |= bit;
        return ref page.Entries[at];
    }

    /// <summary>Every stored entry with its key, in no particular order.</summary>
    public IEnumerable<(long Key, StoredEntry Entry)> Values
    {
        get
        {
            foreach (Page page in _directory.Values)
            {
                // The i-th entry is the page's i-th key present: its bit, lowest first.
                ulong present = page.Present;
                for (int i = 0; present != 0; i++, present &= present - 1)
                {
                    yield return ((page.Number << PageShift) | (long)BitOperations.TrailingZeroCount(present), At(page, i));
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

    /// <summary>Moves a full page's entries into a block twice its size; its old block goes to the free list.</summary>
    private void Grow(Page page, int count)
    {
        int sizeClass = BitOperations.Log2((uint)(page.Capacity / FirstBlockEntries));
        StoredEntry* bigger = NewBlock(sizeClass + 1);
        new Span<StoredEntry>(page.Entries, count).CopyTo(new Span<StoredEntry>(bigger, count));
        *(StoredEntry**)page.Entries = _freeBlocks[sizeClass];
        _freeBlocks[sizeClass] = page.Entries;
        page.Entries = bigger;
        page.Capacity *= 2;
    }

    private StoredEntry* NewBlock(int sizeClass)
    {
        Debug.Assert(sizeClass is >= 0 and < BlockSizes);
        StoredEntry* block = _freeBlocks[sizeClass];
        if (block is not null)
        {
            _freeBlocks[sizeClass] = *(StoredEntry**)block;
            return block;
        }
        int entries = FirstBlockEntries << sizeClass;
        if (_slabFreeEntries < entries)
        {
            // The old slab's rest (under 64 entries) is left unused: at most a fraction of a percent of a slab.
            _slabs.EnsureCapacity(_slabs.Count + 1);
            _slabFree = (StoredEntry*)NativeMemory.AllocZeroed((nuint)_nextSlabEntries, (nuint)sizeof(StoredEntry));
            _slabs.Add((IntPtr)_slabFree);
            _slabFreeEntries = _nextSlabEntries;
            SlabEntries += _nextSlabEntries;
            _nextSlabEntries = Math.Min(_nextSlabEntries * 2, MaxSlabEntries);
        }
        block = _slabFree;
        _slabFree += entries;
        _slabFreeEntries -= entries;
        return block;
    }

    ~LedgerPages()
    {
        foreach (IntPtr slab in _slabs) NativeMemory.Free((void*)slab);
    }

    private sealed class Page(long number, StoredEntry* entries, int capacity)
    {
        public readonly long Number = number;
        public ulong Present;
        /// <summary>The entries present, in key order, in a block of <see cref="Capacity"/> from a slab of the stripe's.</summary>
        public StoredEntry* Entries = entries;
        public int Capacity = capacity;
    }
}
