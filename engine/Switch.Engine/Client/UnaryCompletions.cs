using System.Diagnostics;

namespace Switch.Engine.Client;

/// <summary>
/// The unary calls answered in one output batch, completed together on the thread pool. Queueing one work item per call
/// (as before) made the pool wake a sleeping worker for nearly every answer: each worker that takes an item asks for
/// another while items are left, so a batch of 64 answers woke every idle worker, and most went back to sleep after one
/// call. Here the output thread queues at most <see cref="Environment.ProcessorCount"/> work items per batch (never more
/// than its calls), and each takes the batch's calls one after the other until none is left: as many wake-ups as cores,
/// however many calls, and the cores still share the calls' responses.
/// <para>Filled by the output thread only (<see cref="Add"/>), then <see cref="Dispatch"/>ed and never touched by it again;
/// the last work item to finish gives it back to its pool.</para>
/// </summary>
internal sealed class UnaryCompletions : IThreadPoolWorkItem
{
    private readonly UnaryAnswer?[] _calls;
    private readonly UnaryCompletionsPool _pool;
    private int _count;
    /// <summary>The next call a work item takes (Interlocked): every index below <see cref="_count"/> is taken exactly once.</summary>
    private int _next;
    /// <summary>Work items queued and not yet finished.</summary>
    private int _workers;

    internal UnaryCompletions(int capacity, UnaryCompletionsPool pool)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _calls = new UnaryAnswer?[capacity];
        _pool = pool;
    }

    public int Count => _count;

    /// <summary>On the output thread, before <see cref="Dispatch"/>: the router flushes before the batch is full.</summary>
    internal void Add(UnaryAnswer call)
    {
        if (_count == _calls.Length) throw new InvalidOperationException($"unary completions: more than {_calls.Length} answers in one flush");
        _calls[_count++] = call;
    }

    /// <summary>On the output thread: hands the calls to the pool. This object is the pool's from here on.</summary>
    internal void Dispatch()
    {
        Debug.Assert(_count > 0 && _next == 0 && _workers == 0);
        int workers = Math.Min(_count, Environment.ProcessorCount);
        _workers = workers;
        _pool.WorkItemsQueued += workers;
        for (int i = 0; i < workers; i++) ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
    }

    void IThreadPoolWorkItem.Execute()
    {
        int count = _count;
        int taken;
        while ((taken = Interlocked.Increment(ref _next) - 1) < count)
        {
            UnaryAnswer call = _calls[taken]!;
            _calls[taken] = null;
            call.Complete(); // The caller's continuation runs here; it never throws (an async method keeps its exception).
        }
        if (Interlocked.Decrement(ref _workers) != 0) return;
        // The last one out: every call was taken and completed, no work item reads this object any more.
        _count = 0;
        _next = 0;
        _pool.Return(this);
    }
}

/// <summary>The router's <see cref="UnaryCompletions"/>: one is being filled by the output thread, the others are on the
/// thread pool or free. At most <see cref="MaxRetained"/> free ones are kept (more are in flight only while the pool runs
/// behind the output thread by that many batches; the collector takes the extra back).</summary>
internal sealed class UnaryCompletionsPool(int capacity)
{
    public const int MaxRetained = 64;

    private readonly FreeList<UnaryCompletions> _free = new(MaxRetained);

    /// <summary>Work items queued to the thread pool so far (written on the output thread; a figure for tests).</summary>
    public long WorkItemsQueued { get; set; }

    /// <summary>On the output thread.</summary>
    public UnaryCompletions Rent() => _free.TryTake(out UnaryCompletions? completions) ? completions : new UnaryCompletions(capacity, this);

    public void Return(UnaryCompletions completions)
    {
        Debug.Assert(completions.Count == 0);
        _free.Give(completions);
    }
}
