using System.Runtime.CompilerServices;
using Switch.BankSim;

namespace Switch.Host.Tests.BankSim;

/// <summary>The ledger's pages: every key added is found with its own entry and no other key is, in any order of
/// arrival (in order, reversed, shuffled; dense, a bank's share of four, one in a hundred); what they hold stays
/// within about twice the entries present, however sparse the keys.</summary>
public sealed class LedgerPagesTests
{
    [Theory]
    [InlineData("in order", 1)]
    [InlineData("in order", 4)]
    [InlineData("in order", 100)]
    [InlineData("reversed", 1)]
    [InlineData("reversed", 4)]
    [InlineData("shuffled", 1)]
    [InlineData("shuffled", 4)]
    [InlineData("shuffled", 100)]
    public void Every_key_added_is_found_with_its_entry_and_memory_follows_the_entries_present(string order, int oneIn)
    {
        const int Count = 20_000;
        var random = new Random(oneIn * 31 + order.Length);
        long[] keys = Enumerable.Range(0, Count).Select(i => (long)i * oneIn + random.Next(oneIn)).ToArray();
        if (order == "reversed") Array.Reverse(keys);
        if (order == "shuffled") random.Shuffle(keys);
        var pages = new LedgerPages();
        var stored = new HashSet<long>();

        foreach (long key in keys)
        {
            Assert.True(Unsafe.IsNullRef(ref pages.Find(key)));
            ref StoredEntry slot = ref pages.Add(key);
            Assert.Equal((0, 0), (slot.AmountFen, slot.ExecutedAtTicks)); // handed zeroed
            slot.ExecutedAtTicks = key;
            slot.AmountFen = key * 3 + 1;
            stored.Add(key);
            if (stored.Count % 997 == 0) AssertAllFound(pages, stored, keys[0] + 1);
        }

        AssertAllFound(pages, stored, -1);
        // Each entry comes back with its key: the ledger rebuilds the transaction id from it (an entry keeps none).
        Assert.All(pages.Values, v => Assert.Equal(v.Key, v.Entry.ExecutedAtTicks));
        Assert.Equal(stored.Order(), pages.Values.Select(v => v.Key).Order());
        // Blocks double as a page fills (4 to 64 entries): at most twice the entries a page holds, and the slabs' growth.
        Assert.True(pages.SlabEntries <= 2 * Count + 16_384, $"{pages.SlabEntries} entries of room for {Count}");
    }

    private static void AssertAllFound(LedgerPages pages, HashSet<long> stored, long probe)
    {
        foreach (long key in stored)
        {
            ref StoredEntry entry = ref pages.Find(key);
            Assert.False(Unsafe.IsNullRef(ref entry), $"key {key} lost");
            Assert.Equal((key, key * 3 + 1), (entry.ExecutedAtTicks, entry.AmountFen));
        }
        if (probe >= 0 && !stored.Contains(probe)) Assert.True(Unsafe.IsNullRef(ref pages.Find(probe)));
    }

    /// <summary>An entry is the simulated bank's fresh memory for each transaction it executes: 56 bytes, its id not in it
    /// (its key is its place), its operation and outcome a byte each.</summary>
    [Fact]
    public void An_entry_is_56_bytes_and_keeps_its_operation_and_outcome()
    {
        Assert.Equal(StoredEntry.Bytes, Unsafe.SizeOf<StoredEntry>());
        var entry = new StoredEntry { Operation = Switch.Contracts.V1.BankOperation.Reverse, Outcome = BankOutcome.Barred };
        Assert.Equal((Switch.Contracts.V1.BankOperation.Reverse, BankOutcome.Barred), (entry.Operation, entry.Outcome));
        Assert.Throws<OverflowException>(() => entry.Operation = (Switch.Contracts.V1.BankOperation)256);
    }
}
