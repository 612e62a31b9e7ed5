using Switch.Host.Gateway;

namespace Switch.Host.Tests.Limits;

/// <summary>The handoff of a stream's answers from the output thread to its writer: unseen until published, one wake a
/// batch, the end after what was published.</summary>
public sealed class BatchHandoffTests
{
    [Fact]
    public async Task Items_added_are_unseen_until_published_then_taken_oldest_first_across_the_ring_end()
    {
        var handoff = new BatchHandoff<int>(5); // 8 slots: the indexes wrap
        var into = new int[8];
        for (int round = 0; round < 4; round++)
        {
            for (int i = 0; i < 5; i++) Assert.True(handoff.TryAdd(round * 10 + i));
            Assert.Equal(0, handoff.Take(into));
            ValueTask<bool> waiting = handoff.WaitAsync();
            Assert.False(waiting.IsCompleted);
            Assert.Equal(5, handoff.Publish());
            Assert.True(await waiting);
            Assert.Equal(3, handoff.Take(into.AsSpan(0, 3)));
            Assert.Equal([round * 10, round * 10 + 1, round * 10 + 2], into[..3]);
            Assert.True(await handoff.WaitAsync()); // published and not taken: at once
            Assert.Equal(2, handoff.Take(into));
            Assert.Equal([round * 10 + 3, round * 10 + 4], into[..2]);
            Assert.Equal(0, handoff.Publish()); // nothing added since
        }
    }

    [Fact]
    public void More_outstanding_than_the_capacity_is_refused_and_taking_makes_room()
    {
        var handoff = new BatchHandoff<int>(3);
        for (int i = 0; i < 3; i++) Assert.True(handoff.TryAdd(i));
#if !DEBUG
        Assert.False(handoff.TryAdd(3)); // the owner's bound broken: dropped, never thrown at the producer
#endif
        handoff.Publish();
        Assert.Equal(2, handoff.Take(new int[2]));
        Assert.True(handoff.TryAdd(3));
        Assert.True(handoff.TryAdd(4));
        Assert.Equal(2, handoff.Publish()); // the two added since the last publish
        Assert.Equal(3, handoff.Drop()); // those and the one not taken before
        Assert.Equal(0, handoff.Drop());
    }

    [Fact]
    public async Task Completing_wakes_the_waiter_with_the_end_after_what_was_published_and_drops_what_was_not()
    {
        var handoff = new BatchHandoff<int>(8);
        ValueTask<bool> waiting = handoff.WaitAsync();
        handoff.TryAdd(1);
        handoff.Complete();
        Assert.False(await waiting); // nothing had been published
        Assert.Equal(0, handoff.Publish()); // added before the end, published after it: dropped
        Assert.False(handoff.TryAdd(2));
        Assert.False(await handoff.WaitAsync());

        var other = new BatchHandoff<int>(8);
        other.TryAdd(7);
        other.Publish();
        other.Complete();
        Assert.True(await other.WaitAsync()); // what was published before the end is still taken
        var into = new int[4];
        Assert.Equal(1, other.Take(into));
        Assert.Equal(7, into[0]);
        Assert.False(await other.WaitAsync());
    }

    [Fact]
    public async Task A_producer_thread_and_an_async_consumer_pass_every_item_once_in_order()
    {
        const int capacity = 256, items = 200_000;
        var handoff = new BatchHandoff<long>(capacity);
        var room = new SemaphoreSlim(capacity, capacity); // the owner's bound, as a stream's window is
        var producer = new Thread(() =>
        {
            for (long i = 0; i < items;)
            {
                int batch = (int)(1 + i % 37);
                for (int k = 0; k < batch && i < items; k++, i++)
                {
                    room.Wait();
                    Assert.True(handoff.TryAdd(i));
                }
                handoff.Publish();
            }
            handoff.Complete();
        });
        producer.Start();
        var into = new long[64];
        long next = 0;
        while (await handoff.WaitAsync())
        {
            int n;
            while ((n = handoff.Take(into)) > 0)
            {
                for (int i = 0; i < n; i++) Assert.Equal(next++, into[i]);
                room.Release(n);
            }
        }
        producer.Join();
        Assert.Equal(items, next);
    }
}
