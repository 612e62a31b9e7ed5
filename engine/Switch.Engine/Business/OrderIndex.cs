using Switch.Engine.Snapshots;
using System.Numerics;
using Switch.Engine.Hashing;

namespace Switch.Engine.Business;

/// <summary>
/// (institution, order number) → the slot of its retained transaction, for <see cref="OrderMemory"/>. Open addressing
/// with linear probing over 8-byte entries: the low 32 bits of the key's stable 64-bit hash (its fingerprint) and the
/// transaction's slot in the <see cref="TransactionTable"/>. The key itself is not stored: a fingerprint hit is
/// confirmed against the transaction in that slot (its institution and order number), so two keys whose fingerprints
/// agree are still told apart and a collision is never a wrong answer, only one more read.
/// <para>
/// Why not a dictionary: a <c>Dictionary&lt;ScopedKey, long&gt;</c> entry is 56 bytes plus a 4-byte bucket, scattered,
/// and each look-up hashes and compares the 40-byte key; here a new order (the common case) costs one cache line of
/// eight entries, and memory is 8 bytes a slot. Pre-allocated for every retained transaction (the ring and the parked
/// table) with at most half the slots in use while nothing is parked, three quarters with every parked slot in use:
/// no allocation per insert or remove, and deletion by backward shift (<see cref="BackwardShift"/>), so churn builds
/// no tombstones.
/// </para>
/// <para>
/// Derived state: not in snapshots (<see cref="OrderMemory.RebuildIndex"/> rebuilds it from the table) nor in the state
/// hash. Its layout may differ after a rebuild; its answers cannot, since every look-up is confirmed on the table.
/// The caller passes the hash (<see cref="ScopedKey.Hash64"/>, the same in every process), once per key per event.
/// </para>
/// </summary>
public sealed class OrderIndex
{
    /// <summary>Fingerprint in the low half, table slot + 1 in the high half; 0 is an empty entry.</summary>
    private readonly ulong[] _entries;
    private readonly int _mask;
    private readonly TransactionTable _transactions;
    private readonly int _maxCount;

    public OrderIndex(TransactionTable transactions)
    {
        _transactions = transactions;
        long retained = (long)transactions.Capacity + transactions.ParkedCapacity;
        if (retained >= int.MaxValue) throw new ArgumentOutOfRangeException(nameof(transactions), "more retained slots than an index entry can name");
        // Half full with the ring full and nothing parked (the steady state), at most three quarters with every parked
        // slot in use: probes stay short and always end at an empty entry.
        long slots = Math.Max(2L * transactions.Capacity, (retained * 4 + 2) / 3);
        slots = (long)BitOperations.RoundUpToPowerOf2((ulong)slots);
        if (slots > 1L << 30) throw new ArgumentOutOfRangeException(nameof(transactions), "an order index above 2^30 entries");
        _entries = HugePages.Allocate<ulong>(slots);
        _mask = (int)slots - 1;
        _maxCount = (int)retained;
    }

    /// <summary>A restore rebuilds the index whole: its memory faulted in ahead (see <see cref="Prefaulter"/>).</summary>
    public void PrefaultForRestore(Prefaulter prefault) => prefault.AddToWrite(_entries, _entries.Length);

    public int Count { get; private set; }
    /// <summary>Entries (slots) of the index; memory is 8 bytes each.</summary>
    public int Slots => _entries.Length;
    /// <summary>Fingerprint hits whose transaction held another key (two keys' fingerprints agreed).</summary>
    public long FalseHits { get; private set; }

    private static uint Fingerprint(ulong hash) => (uint)hash;
    private int Home(uint fingerprint) => (int)fingerprint & _mask;
    private static ulong Entry(uint fingerprint, int tableSlot) => fingerprint | (ulong)(uint)(tableSlot + 1) << 32;
    private static int TableSlot(ulong entry) => (int)(entry >> 32) - 1;

    /// <summary>The table slot of the transaction with this order, or -1.</summary>
    public int Find(in ScopedKey order, ulong hash)
    {
        uint fingerprint = Fingerprint(hash);
        ulong[] entries = _entries;
        for (int i = Home(fingerprint); ; i = (i + 1) & _mask)
        {
            ulong entry = entries[i];
            if (entry == 0) return -1;
            if ((uint)entry != fingerprint) continue;
            int tableSlot = TableSlot(entry);
            ref readonly Transaction tx = ref _transactions.Read(tableSlot);
            if (order.Is(tx.InstitutionIndex, tx.OrderNo.Span)) return tableSlot;
            FalseHits++;
        }
    }

    /// <summary>Starts loading the entries a look-up of <paramref name="hash"/> reads first (see <see cref="CacheLine"/>).</summary>
    public void Prefetch(ulong hash) => CacheLine.Prefetch(ref _entries[Home(Fingerprint(hash))]);

    /// <summary>A new order, in <paramref name="tableSlot"/>; the caller has checked it is not there already.</summary>
    public void Add(ulong hash, int tableSlot)
    {
        if (Count >= _maxCount) throw new InvalidOperationException($"order index: more than {_maxCount} retained orders");
        if ((uint)tableSlot >= (uint)_maxCount) throw new ArgumentOutOfRangeException(nameof(tableSlot));
        uint fingerprint = Fingerprint(hash);
        int i = Home(fingerprint);
        while (_entries[i] != 0) i = (i + 1) & _mask;
        _entries[i] = Entry(fingerprint, tableSlot);
        Count++;
    }

    /// <summary>The order whose transaction sits in <paramref name="tableSlot"/> moved to <paramref name="newTableSlot"/>
    /// (it was parked).</summary>
    public void Move(ulong hash, int tableSlot, int newTableSlot)
    {
        if ((uint)newTableSlot >= (uint)_maxCount) throw new ArgumentOutOfRangeException(nameof(newTableSlot));
        int i = IndexOf(hash, tableSlot);
        _entries[i] = Entry(Fingerprint(hash), newTableSlot);
    }

    /// <summary>The order whose transaction sits in <paramref name="tableSlot"/> leaves the index.</summary>
    public void Remove(ulong hash, int tableSlot)
    {
        BackwardShift.Delete(new Probe(this), IndexOf(hash, tableSlot));
        Count--;
    }

    /// <summary>The entry of the transaction in <paramref name="tableSlot"/>: slots name one transaction each, so the
    /// slot alone confirms it (no read of the table).</summary>
    private int IndexOf(ulong hash, int tableSlot)
    {
        ulong wanted = Entry(Fingerprint(hash), tableSlot);
        for (int i = Home(Fingerprint(hash)); ; i = (i + 1) & _mask)
        {
            ulong entry = _entries[i];
            if (entry == wanted) return i;
            if (entry == 0) throw new InvalidOperationException($"order index: no entry for table slot {tableSlot}");
        }
    }

    /// <summary>Empties the index (before a rebuild).</summary>
    public void Clear()
    {
        Array.Clear(_entries);
        Count = 0;
    }

    /// <summary>
    /// Checks the index against itself (tests, tools): the count, no table slot named twice, and every entry reachable
    /// from its home with no empty entry between (what a look-up and the backward shift rely on). O(slots).
    /// </summary>
    public void Verify()
    {
        var named = new bool[_maxCount];
        int count = 0;
        for (int i = 0; i < _entries.Length; i++)
        {
            ulong entry = _entries[i];
            if (entry == 0) continue;
            count++;
            int tableSlot = TableSlot(entry);
            if ((uint)tableSlot >= (uint)_maxCount || named[tableSlot]) throw new InvalidOperationException($"order index: entry {i} names table slot {tableSlot} out of range or twice");
            named[tableSlot] = true;
            for (int j = Home((uint)entry); j != i; j = (j + 1) & _mask)
            {
                if (_entries[j] == 0) throw new InvalidOperationException($"order index: entry {i} is cut off from its home by an empty entry {j}");
            }
        }
        if (count != Count) throw new InvalidOperationException($"order index: {count} entries, its count says {Count}");
    }

    private readonly struct Probe(OrderIndex index) : IProbeSlots
    {
        public int Mask => index._mask;
        public bool Occupied(int slot) => index._entries[slot] != 0;
        public int Home(int slot) => index.Home((uint)index._entries[slot]);
        public void Move(int from, int to) => index._entries[to] = index._entries[from];
        public void Clear(int slot) => index._entries[slot] = 0;
    }
}
