using System.Text;
using Switch.Engine.Business;
using Switch.Engine.Events;

namespace Switch.Engine.Tests.Business;

/// <summary>
/// The order index keeps a fingerprint of each key and its transaction's slot, and confirms a hit on the transaction:
/// keys whose hashes agree (forced here by passing the same hash) are still told apart, a full table fits, and churn
/// leaves no debris behind.
/// </summary>
public sealed class OrderIndexTests
{
    private const int Ring = 16;
    private const int ParkedSlots = 4;

    private readonly TransactionTable _table = new(Ring, ParkedSlots);
    private readonly OrderIndex _index;

    public OrderIndexTests() => _index = new OrderIndex(_table);

    private static ScopedKey Key(int scope, string orderNo) => new(scope, Encoding.ASCII.GetBytes(orderNo));

    /// <summary>Issues the next transaction with this order; returns its slot.</summary>
    private int Issue(int scope, string orderNo)
    {
        ref Transaction tx = ref _table.Issue();
        tx.Status = TransactionStatus.Dispatched;
        tx.InstitutionIndex = scope;
        tx.OrderNo.Set(orderNo);
        Assert.True(_table.TryFind(tx.Id, out int slot));
        return slot;
    }

    [Fact]
    public void Keys_whose_hashes_agree_are_told_apart_by_the_transaction()
    {
        const ulong SameHash = 0xDEAD_BEEF_0000_0007UL;
        var slots = new int[10];
        for (int i = 0; i < slots.Length; i++)
        {
            slots[i] = Issue(i % 2, $"ORD-{i}");
            _index.Add(SameHash, slots[i]);
        }
        for (int i = 0; i < slots.Length; i++) Assert.Equal(slots[i], _index.Find(Key(i % 2, $"ORD-{i}"), SameHash));
        Assert.True(_index.FalseHits > 0, "the forced collisions should have been confirmed away on the table");

        // Same hash, another key: no wrong answer. Same number under another institution: not the same order.
        Assert.Equal(-1, _index.Find(Key(0, "ORD-99"), SameHash));
        Assert.Equal(-1, _index.Find(Key(1, "ORD-0"), SameHash));

        // Removing one of a run of colliding keys leaves the others found.
        _index.Remove(SameHash, slots[3]);
        _index.Verify();
        Assert.Equal(-1, _index.Find(Key(1, "ORD-3"), SameHash));
        for (int i = 0; i < slots.Length; i++)
        {
            if (i != 3) Assert.Equal(slots[i], _index.Find(Key(i % 2, $"ORD-{i}"), SameHash));
        }
    }

    [Fact]
    public void Keys_longer_than_the_fingerprint_differing_only_in_their_last_byte_are_two_orders()
    {
        string stem = new('A', 31);
        Assert.Equal(Text32.CapacityBytes, (stem + "1").Length);
        ScopedKey first = Key(3, stem + "1");
        ScopedKey second = Key(3, stem + "2");
        Assert.NotEqual(first.Hash64(), second.Hash64()); // the stable hash sees every byte
        Assert.Equal(-1, _index.Find(first, first.Hash64()));

        int firstSlot = Issue(3, stem + "1");
        _index.Add(first.Hash64(), firstSlot);
        // The second key, even under the first's hash, is not the first's order.
        Assert.Equal(-1, _index.Find(second, first.Hash64()));
        Assert.Equal(-1, _index.Find(second, second.Hash64()));
        Assert.Equal(-1, _index.Find(Key(3, stem), first.Hash64())); // its prefix is another order too

        int secondSlot = Issue(3, stem + "2");
        _index.Add(first.Hash64(), secondSlot);
        Assert.Equal(firstSlot, _index.Find(first, first.Hash64()));
        Assert.Equal(secondSlot, _index.Find(second, first.Hash64()));
    }

    [Fact]
    public void Every_retained_slot_fits_the_ring_and_the_parked_table_and_one_more_is_refused()
    {
        var slots = new Dictionary<string, int>();
        for (int i = 0; i < Ring; i++)
        {
            string order = $"R{i}";
            slots[order] = Issue(0, order);
            _index.Add(Key(0, order).Hash64(), slots[order]);
        }
        // Park the oldest ones (not final) as the logic does for a slow bank, and issue new ones in their slots.
        for (int i = 0; i < ParkedSlots; i++)
        {
            string parkedOrder = $"R{i}";
            int from = _table.NextIndex;
            Assert.Equal(slots[parkedOrder], from);
            int to = _table.ParkNext();
            _index.Move(Key(0, parkedOrder).Hash64(), from, to);
            slots[parkedOrder] = to;
            string order = $"N{i}";
            slots[order] = Issue(0, order);
            _index.Add(Key(0, order).Hash64(), slots[order]);
        }
        Assert.Equal(Ring + ParkedSlots, _index.Count);
        Assert.True(_index.Count <= _index.Slots * 3 / 4, $"{_index.Count} entries in {_index.Slots} slots");
        _index.Verify();
        foreach ((string order, int slot) in slots) Assert.Equal(slot, _index.Find(Key(0, order), Key(0, order).Hash64()));

        Assert.Throws<InvalidOperationException>(() => _index.Add(Key(0, "ONE-MORE").Hash64(), 0));
    }

    /// <summary>Random inserts and removes against a reference map, with hashes narrowed to 3 bits so runs are long
    /// and every removal shifts entries back; after it all, an empty index is empty everywhere (no tombstones).</summary>
    [Theory]
    [InlineData(64)]
    [InlineData(0x7)]
    public void Churn_of_removes_and_reinserts_keeps_every_order_found_and_leaves_no_debris(int hashBits)
    {
        var table = new TransactionTable(256, 1);
        var index = new OrderIndex(table);
        var live = new Dictionary<long, (ScopedKey Key, ulong Hash)>();
        var random = new Random(17);
        ulong HashOf(ScopedKey key) => hashBits == 64 ? key.Hash64() : key.Hash64() & (ulong)hashBits;

        for (int step = 0; step < 20_000; step++)
        {
            // The ring's next slot is freed first when it holds a transaction, as eviction does.
            ref Transaction next = ref table.NextSlot;
            if (next.Id != 0 && live.Remove(next.Id, out var evicted))
            {
                index.Remove(evicted.Hash, table.NextIndex);
                next.Status = TransactionStatus.Succeeded;
            }
            if (live.Count > 0 && random.Next(3) == 0)
            {
                // A removal from the middle of the table.
                long id = live.Keys.ElementAt(random.Next(live.Count));
                Assert.True(table.TryFind(id, out int slot));
                index.Remove(live[id].Hash, slot);
                table[slot].Status = TransactionStatus.Failed; // final: its slot may be reused
                live.Remove(id);
            }
            string orderNo = $"O{step % 1000}-{random.Next(1_000_000)}";
            var key = new ScopedKey(step % 5, Encoding.ASCII.GetBytes(orderNo));
            if (index.Find(key, HashOf(key)) >= 0) continue; // a repeat: not added twice
            ref Transaction tx = ref table.Issue();
            tx.InstitutionIndex = step % 5;
            tx.OrderNo.Set(orderNo);
            tx.Status = TransactionStatus.Dispatched;
            Assert.True(table.TryFind(tx.Id, out int newSlot));
            index.Add(HashOf(key), newSlot);
            live[tx.Id] = (key, HashOf(key));

            if (step % 997 == 0)
            {
                index.Verify();
                foreach ((long id, (ScopedKey k, ulong h)) in live)
                {
                    Assert.True(table.TryFind(id, out int slot));
                    Assert.Equal(slot, index.Find(k, h));
                }
            }
        }
        Assert.Equal(live.Count, index.Count);
        foreach ((long id, (ScopedKey k, ulong h)) in live)
        {
            Assert.True(table.TryFind(id, out int slot));
            index.Remove(h, slot);
        }
        Assert.Equal(0, index.Count);
        index.Verify();
        // Nothing left behind: a look-up of any hash ends at once, at an empty home.
        for (ulong h = 0; h < 64; h++) Assert.Equal(-1, index.Find(Key(0, "GONE"), h));
    }
}
