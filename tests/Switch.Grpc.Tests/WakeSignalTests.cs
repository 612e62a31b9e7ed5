namespace Switch.Grpc.Tests;

/// <summary>The single waiter's signal: where the waiter resumes (inline on the waking thread, or on the pool), a Wake
/// kept for the next wait, and a bounded wait ended by its timer.</summary>
public sealed class WakeSignalTests
{
    /// <summary>Wakes <paramref name="signal"/> from a thread of its own (not a pool thread): its id, and the id of the
    /// thread the waiter resumed on.</summary>
    private static async Task<(int Waker, int Resumed)> WakeFromOwnThreadAsync(WakeSignal signal)
    {
        int resumed = 0;
        ValueTask wait = signal.WaitAsync();
        Assert.False(wait.IsCompleted);
        Task waiter = Task.Run(async () =>
        {
            await wait.ConfigureAwait(false);
            resumed = Environment.CurrentManagedThreadId;
        });
        await Task.Delay(20); // the waiter is parked on the signal
        int waker = 0;
        var thread = new Thread(() =>
        {
            waker = Environment.CurrentManagedThreadId;
            signal.Wake();
        });
        thread.Start();
        thread.Join();
        await waiter.Bounded();
        return (waker, resumed);
    }

    [Fact]
    public async Task An_inline_signal_resumes_its_waiter_on_the_waking_thread()
    {
        using var signal = new WakeSignal(continueInline: true);
        (int waker, int resumed) = await WakeFromOwnThreadAsync(signal);
        Assert.Equal(waker, resumed);
    }

    [Fact]
    public async Task A_pooled_signal_resumes_its_waiter_on_the_thread_pool_never_the_waker()
    {
        using var signal = new WakeSignal();
        (int waker, int resumed) = await WakeFromOwnThreadAsync(signal);
        Assert.NotEqual(waker, resumed);
    }

    [Fact]
    public async Task Wakes_with_nobody_waiting_are_kept_as_one_for_the_next_wait()
    {
        using var signal = new WakeSignal(continueInline: true);
        signal.Wake();
        signal.Wake();
        Assert.True(signal.WaitAsync().IsCompletedSuccessfully);
        ValueTask second = signal.WaitAsync();
        Assert.False(second.IsCompleted);
        signal.Wake();
        Assert.True(second.IsCompletedSuccessfully); // inline: done by the time Wake returns
        await second;
    }

    [Fact]
    public async Task A_bounded_wait_ends_at_its_timeout_without_a_wake_and_the_signal_serves_the_next_wait()
    {
        using var signal = new WakeSignal(continueInline: true);
        ValueTask bounded = signal.WaitAsync(timeoutMs: 30);
        Assert.False(bounded.IsCompleted);
        await bounded.AsTask().Bounded();
        ValueTask next = signal.WaitAsync();
        Assert.False(next.IsCompleted);
        signal.Wake();
        await next.AsTask().Bounded();
    }
}
