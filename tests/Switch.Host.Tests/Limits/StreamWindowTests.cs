using Switch.Host.Gateway;

namespace Switch.Host.Tests.Limits;

/// <summary>A stream's window: places taken per message, as many as are free; a taker waits only with none free.</summary>
public sealed class StreamWindowTests
{
    [Fact]
    public async Task A_take_gets_as_many_places_as_are_free_up_to_its_ask_and_never_more_than_the_capacity_comes_back()
    {
        var window = new StreamWindow(100);
        Assert.Equal(64, await window.TakeAsync(64, CancellationToken.None));
        Assert.Equal(36, await window.TakeAsync(64, CancellationToken.None)); // what is left
        Assert.Equal(0, window.Free);
        window.Give(10);
        Assert.Equal(10, await window.TakeAsync(64, CancellationToken.None));
        window.Give(100);
        Assert.Equal(100, window.Free);
        Assert.Throws<InvalidOperationException>(() => window.Give(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => window.TakeAsync(0, CancellationToken.None));
    }

    [Fact]
    public async Task With_no_place_free_the_taker_waits_and_gets_the_places_given_back_up_to_its_ask()
    {
        var window = new StreamWindow(8);
        Assert.Equal(8, await window.TakeAsync(8, CancellationToken.None));
        for (int round = 0; round < 3; round++) // the one wait source is reused
        {
            ValueTask<int> waiting = window.TakeAsync(5, CancellationToken.None);
            Assert.False(waiting.IsCompleted);
            Assert.Throws<InvalidOperationException>(() => window.TakeAsync(1, CancellationToken.None)); // one taker
            window.Give(7); // from another thread in the gateway: the writer
            Assert.Equal(5, await waiting);
            Assert.Equal(2, window.Free);
            Assert.Equal(2, await window.TakeAsync(8, CancellationToken.None));
        }
    }

    [Fact]
    public async Task A_cancelled_wait_ends_with_the_cancellation_and_takes_nothing()
    {
        var window = new StreamWindow(4);
        Assert.Equal(4, await window.TakeAsync(4, CancellationToken.None));
        using var cancel = new CancellationTokenSource();
        ValueTask<int> waiting = window.TakeAsync(4, cancel.Token);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await waiting);
        window.Give(4);
        Assert.Equal(4, window.Free); // the cancelled taker got none
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            Assert.Equal(4, await window.TakeAsync(4, CancellationToken.None));
            await window.TakeAsync(1, cancel.Token); // none free and cancelled already
        });
        window.Give(4);
        Assert.Equal(4, window.Free);
    }

    [Fact]
    public async Task Places_given_back_on_another_thread_all_reach_a_taker_that_takes_them_all_in_turn()
    {
        const int capacity = 64, rounds = 20_000;
        var window = new StreamWindow(capacity);
        var given = new System.Collections.Concurrent.BlockingCollection<int>();
        Task giver = Task.Run(() =>
        {
            foreach (int n in given.GetConsumingEnumerable()) window.Give(n);
        });
        long taken = 0;
        for (int i = 0; i < rounds; i++)
        {
            int n = await window.TakeAsync(1 + i % capacity, CancellationToken.None);
            Assert.InRange(n, 1, 1 + i % capacity);
            taken += n;
            given.Add(n);
        }
        given.CompleteAdding();
        await giver;
        Assert.Equal(capacity, window.Free);
        Assert.True(taken >= rounds);
    }
}
