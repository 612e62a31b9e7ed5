using Switch.Engine.Archive;
using Switch.Engine.Business;

namespace Switch.Engine.Tests.Archive;

/// <summary>
/// The filter in front of the archive may say "maybe" for an order it never saw (a store look-up too many), but never
/// "no" for an order the switch still remembers: that would let a repeat execute twice.
/// </summary>
public sealed class ArchivedOrderFilterTests
{
    private const int Generations = ArchiveSizing.FilterGenerations;

    private static ulong Key(long id) => new ScopedKey((int)(id % 3), System.Text.Encoding.ASCII.GetBytes($"ORD-{id}")).Hash64();

    [Fact]
    public void No_remembered_order_is_ever_missed_as_generations_fill_and_are_cleared_behind_the_memory()
    {
        var filter = new ArchivedOrderFilter(Generations * 64 * 16, Generations); // 16 blocks a generation
        long perGeneration = filter.KeysPerGeneration;
        long memory = perGeneration * (Generations - 1); // what the switch remembers: seven generations' worth
        for (long id = 1; id <= 20 * perGeneration; id++)
        {
            filter.Add(Key(id), id);
            filter.ForgetBelow(id + 1 - memory);
            if (id % 97 == 0)
            {
                // Every remembered order, oldest to newest, is still a "maybe".
                for (long back = Math.Max(1, id + 1 - memory); back <= id; back++)
                {
                    Assert.True(filter.MayContain(Key(back)), $"order {back} missed at {id}");
                }
            }
        }
        Assert.Equal(0, filter.Overfills); // seven generations remembered, the eighth free to fill
    }

    [Fact]
    public void New_orders_mostly_pass_with_no_store_look_up_at_design_load()
    {
        var filter = new ArchivedOrderFilter(Generations * 64 * 1024, Generations);
        long added = filter.KeysPerGeneration * Generations;
        for (long id = 1; id <= added; id++) filter.Add(Key(id), id);
        int falsePositives = 0;
        const int probes = 100_000;
        for (long id = added + 1; id <= added + probes; id++)
        {
            if (filter.MayContain(Key(id))) falsePositives++;
        }
        // Eight full generations are eight chances of about 1% each.
        Assert.True(falsePositives < probes * 12 / 100, $"{falsePositives} false positives in {probes}");
        Assert.True(falsePositives > 0, "a filter at design load with no false positive is suspicious");
    }

    [Fact]
    public void Too_small_a_filter_overfills_its_newest_generation_but_still_misses_nothing()
    {
        var filter = new ArchivedOrderFilter(Generations * 64, Generations); // one block a generation: 42 keys
        const long count = 2_000;
        for (long id = 1; id <= count; id++) filter.Add(Key(id), id); // nothing forgotten: no generation may be cleared
        Assert.True(filter.Overfills > 0);
        for (long id = 1; id <= count; id++) Assert.True(filter.MayContain(Key(id)), $"order {id} missed");
    }

    [Fact]
    public void Order_keys_of_three_institutions_hash_apart()
    {
        // The filter, FASTER's index and the order dictionary all use this hash: collisions cost look-ups everywhere.
        Assert.Equal(200_000, Enumerable.Range(1, 200_000).Select(id => Key(id)).Distinct().Count());
    }

    [Fact]
    public void A_bad_size_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ArchivedOrderFilter(Generations * 64 * 3, Generations));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ArchivedOrderFilter(32, Generations));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ArchivedOrderFilter(1 << 20, 1));
        var filter = new ArchivedOrderFilter(Generations * 64, Generations);
        Assert.Throws<ArgumentOutOfRangeException>(() => filter.Add(Key(4), 0));
    }

    [Fact]
    public void An_older_id_archived_late_is_kept_as_long_as_the_newest_of_its_generation()
    {
        // A parked transaction becomes final, and is archived, after newer ones.
        var filter = new ArchivedOrderFilter(Generations * 64, Generations);
        long perGeneration = filter.KeysPerGeneration;
        for (long id = 10; id < 10 + perGeneration - 1; id++) filter.Add(Key(id), id);
        filter.Add(Key(3), 3); // late, older: fills the first generation
        long newest = 10 + perGeneration - 2;
        filter.Add(Key(newest + 1), newest + 1); // the next generation starts
        filter.ForgetBelow(newest);
        Assert.True(filter.MayContain(Key(3)));
        filter.ForgetBelow(newest + 1);
        Assert.False(filter.MayContain(Key(3)) && filter.MayContain(Key(10)));
    }
}
