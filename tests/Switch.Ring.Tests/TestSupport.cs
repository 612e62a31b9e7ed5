using System.Diagnostics;

// These tests pit spinning threads against each other on small machines: run them one class at a
// time so a busy-spin consumer in one test does not starve the producers of another.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Switch.Ring.Tests;

/// <summary>What the tests publish: who wrote it, that producer's counter, and the sequence it was written for.</summary>
public struct TestEvent
{
    public int ProducerId;
    public long Counter;
    public long WrittenForSequence;
    public long StageA;
    public long StageB;
}

internal static class Strategies
{
    public static TheoryData<string> All => new() { "BusySpin", "Yielding", "Blocking", "Sleeping" };

    // Busy spin burns a core per consumer; chains of several consumers use the sharing strategies.
    public static TheoryData<string> Sharing => new() { "Yielding", "Blocking", "Sleeping" };

    /// <summary>
    /// Event count for a test under <paramref name="strategy"/>: a busy-spinning consumer on a
    /// loaded two-core machine holds a core the producers need, so it gets a smaller share.
    /// </summary>
    public static long Scaled(string strategy, long events) => strategy == "BusySpin" ? events / 5 : events;

    public static IWaitStrategy Create(string name) => name switch
    {
        "BusySpin" => new BusySpinWaitStrategy(),
        "Yielding" => new YieldingWaitStrategy(),
        "Blocking" => new BlockingWaitStrategy(),
        "Sleeping" => new SleepingWaitStrategy(),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
    };
}

/// <summary>A thread whose exception is kept and rethrown on join, and whose join fails rather than hangs.</summary>
internal sealed class TestThread
{
    // Only to turn a hang into a failure: a passing run finishes far sooner, but spinning threads on a 2-core machine
    // shared with the whole suite (and other work) once took more than 30 s for 100,000 events through 8 slots.
    public static readonly TimeSpan HangTimeout = TimeSpan.FromSeconds(120);

    private readonly Thread _thread;
    private readonly ManualResetEventSlim _done = new();
    public Exception? Error { get; private set; }

    private TestThread(string name, Action body)
    {
        _thread = new Thread(() =>
        {
            try
            {
                body();
            }
            catch (Exception ex)
            {
                Error = ex;
            }
            finally
            {
                _done.Set();
            }
        }) { Name = name, IsBackground = true };
    }

    public static TestThread Start(string name, Action body)
    {
        var thread = new TestThread(name, body);
        thread._thread.Start();
        return thread;
    }

    public bool IsDone => _done.IsSet;

    /// <summary>True if the thread finished within <paramref name="wait"/>; used only to show something is still blocked.</summary>
    public bool FinishesWithin(TimeSpan wait) => _done.Wait(wait);

    /// <summary>Joins, failing on a hang; returns the exception the body threw, if any.</summary>
    public Exception? JoinCapturing()
    {
        Assert.True(_thread.Join(HangTimeout), $"thread {_thread.Name} did not finish in {HangTimeout}");
        return Error;
    }

    /// <summary>Joins, failing on a hang or if the body threw.</summary>
    public void Join()
    {
        Exception? error = JoinCapturing();
        if (error is not null)
        {
            throw new Xunit.Sdk.XunitException($"thread {_thread.Name} failed: {error}");
        }
    }
}

internal static class Wait
{
    /// <summary>Waits until <paramref name="condition"/> holds; fails the test on a hang.</summary>
    public static void Until(Func<bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        SpinWait spinner = default;
        while (!condition())
        {
            if (clock.Elapsed > TestThread.HangTimeout)
            {
                Assert.Fail($"timed out waiting until {what}");
            }
            spinner.SpinOnce();
        }
    }

    /// <summary>Joins a processor thread, failing on a hang.</summary>
    public static void Join(Thread thread)
    {
        Assert.True(thread.Join(TestThread.HangTimeout), $"thread {thread.Name} did not finish in {TestThread.HangTimeout}");
    }
}

/// <summary>
/// Checks, per event: the slot was written for this sequence (not stale, not overwritten), sequences
/// arrive without gaps, and each producer's counter arrives in order with none lost or repeated.
/// A violation throws, which halts the ring and shows up as the processor's Fault.
/// </summary>
internal sealed class OrderCheckingHandler : IEventHandler<TestEvent>
{
    private readonly long[] _nextCounterByProducer;
    private long _expectedSequence;

    public OrderCheckingHandler(int producerCount)
    {
        _nextCounterByProducer = new long[producerCount];
    }

    public long EventCount => Volatile.Read(ref _expectedSequence);

    public long CounterOf(int producerId) => _nextCounterByProducer[producerId];

    public void OnEvent(ref TestEvent evt, long sequence, bool endOfBatch)
    {
        if (sequence != _expectedSequence)
        {
            throw new InvalidOperationException($"expected sequence {_expectedSequence}, got {sequence}");
        }
        if (evt.WrittenForSequence != sequence)
        {
            throw new InvalidOperationException($"slot for {sequence} holds the event written for {evt.WrittenForSequence}");
        }
        long expectedCounter = _nextCounterByProducer[evt.ProducerId];
        if (evt.Counter != expectedCounter)
        {
            throw new InvalidOperationException(
                $"producer {evt.ProducerId}: expected counter {expectedCounter}, got {evt.Counter} at sequence {sequence}");
        }
        _nextCounterByProducer[evt.ProducerId] = expectedCounter + 1;
        Volatile.Write(ref _expectedSequence, sequence + 1);
    }
}

internal static class Producers
{
    /// <summary>Publishes <paramref name="count"/> events one claim at a time, or in claims of 1..maxClaim.</summary>
    public static void Publish(RingBuffer<TestEvent> ring, int producerId, long count, int maxClaim, int seed)
    {
        var random = new Random(seed);
        long counter = 0;
        while (counter < count)
        {
            int n = (int)Math.Min(count - counter, random.Next(1, maxClaim + 1));
            long hi = n == 1 ? ring.Next() : ring.Next(n);
            long lo = hi - n + 1;
            for (long sequence = lo; sequence <= hi; sequence++)
            {
                ref TestEvent evt = ref ring[sequence];
                evt.ProducerId = producerId;
                evt.Counter = counter++;
                evt.WrittenForSequence = sequence;
            }
            if (n == 1)
            {
                ring.Publish(hi);
            }
            else
            {
                ring.Publish(lo, hi);
            }
        }
    }
}
