namespace Switch.Journal;

/// <summary>
/// Blocks one thread until a pending operation completes, without spinning first. A task's own wait spins and yields
/// before it sleeps, which is right for a wait of microseconds; a journal commit waits for a write and a flush (a
/// millisecond or so), and on a 2-core machine every spin takes the CPU the gRPC, logic and output threads need.
/// One waiter at a time (the journal's one writer); nothing allocated per wait beyond what the operation itself needs.
/// Never disposed: the event holds no kernel handle (its wait handle is never asked for), and an operation still pending
/// when the journal closes may signal it afterwards.
/// </summary>
internal sealed class BlockingWait
{
    private readonly ManualResetEventSlim _done = new(initialState: false, spinCount: 0);
    private readonly Action _signal;
    private int _waiting;

    public BlockingWait() => _signal = _done.Set;

    /// <summary>A thread is blocked in <see cref="Wait"/> (for tests).</summary>
    internal bool Waiting => Volatile.Read(ref _waiting) != 0;

    /// <summary>Returns once <paramref name="pending"/> has completed; rethrows its exception. Consumes it (await it nowhere else).</summary>
    public void Wait(ValueTask pending)
    {
        if (!pending.IsCompleted)
        {
            if (Interlocked.Exchange(ref _waiting, 1) != 0) throw new InvalidOperationException("blocking wait: one waiter at a time");
            try
            {
                _done.Reset();
                pending.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_signal);
                _done.Wait();
            }
            finally
            {
                Volatile.Write(ref _waiting, 0);
            }
        }
        pending.GetAwaiter().GetResult();
    }
}
