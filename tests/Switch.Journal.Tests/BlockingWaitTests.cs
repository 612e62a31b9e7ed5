namespace Switch.Journal.Tests;

/// <summary>The journal writer's commit wait: returns exactly when the operation has completed, with its outcome,
/// use after use, and takes one waiter at a time.</summary>
public class BlockingWaitTests
{
    [Fact]
    public void A_wait_returns_only_once_the_operation_completes_on_another_thread_use_after_use()
    {
        var wait = new BlockingWait();
        for (int i = 0; i < 2_000; i++)
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            bool completed = false;
            // Completed at once, soon or after the waiter has blocked: every order of completion and registration.
            Task completer = Task.Run(async () =>
            {
                if (i % 3 == 1) await Task.Yield();
                if (i % 3 == 2) SpinWait.SpinUntil(() => wait.Waiting);
                Volatile.Write(ref completed, true);
                done.SetResult();
            });
            wait.Wait(new ValueTask(done.Task));
            Assert.True(Volatile.Read(ref completed));
            Assert.True(completer.Wait(TimeSpan.FromSeconds(30)));
        }
        Assert.False(wait.Waiting);
    }

    [Fact]
    public void A_wait_rethrows_the_operations_failure_and_the_next_wait_still_works()
    {
        var wait = new BlockingWait();
        var failing = new TaskCompletionSource();
        Task completer = Task.Run(() =>
        {
            SpinWait.SpinUntil(() => wait.Waiting);
            failing.SetException(new IOException("disk gone"));
        });
        IOException e = Assert.Throws<IOException>(() => wait.Wait(new ValueTask(failing.Task)));
        Assert.Equal("disk gone", e.Message);
        Assert.True(completer.Wait(TimeSpan.FromSeconds(30)));
        wait.Wait(ValueTask.CompletedTask);
        var later = new TaskCompletionSource();
        _ = Task.Run(() =>
        {
            SpinWait.SpinUntil(() => wait.Waiting);
            later.SetResult();
        });
        wait.Wait(new ValueTask(later.Task));
        Assert.True(later.Task.IsCompletedSuccessfully);
    }

    [Fact]
    public void A_second_waiter_while_one_is_blocked_is_refused_and_the_first_is_unaffected()
    {
        var wait = new BlockingWait();
        var first = new TaskCompletionSource();
        Task blocked = Task.Factory.StartNew(() => wait.Wait(new ValueTask(first.Task)), TaskCreationOptions.LongRunning);
        Assert.True(SpinWait.SpinUntil(() => wait.Waiting, TimeSpan.FromSeconds(30)));
        var second = new TaskCompletionSource();
        Assert.Throws<InvalidOperationException>(() => wait.Wait(new ValueTask(second.Task)));
        Assert.True(wait.Waiting);
        first.SetResult();
        Assert.True(blocked.Wait(TimeSpan.FromSeconds(30)));
        Assert.False(wait.Waiting);
    }
}
