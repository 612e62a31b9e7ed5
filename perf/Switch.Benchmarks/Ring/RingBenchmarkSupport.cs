using Switch.Ring;

namespace Switch.Benchmarks.Ring;

/// <summary>A small event: the ring cost is what is measured, not copying a payload.</summary>
public struct BenchEvent
{
    public long Value;
    public long ProducerId;
}

/// <summary>A struct handler, so the processor is specialised for it and the call is direct.</summary>
public struct SummingHandler : IEventHandler<BenchEvent>
{
    private long _sum;

    public void OnEvent(ref BenchEvent evt, long sequence, bool endOfBatch) => _sum += evt.Value;
}

internal static class RingBenchmarkSupport
{
    public static IWaitStrategy CreateWaitStrategy(string name) => name switch
    {
        "BusySpin" => new BusySpinWaitStrategy(),
        "Yielding" => new YieldingWaitStrategy(),
        "Blocking" => new BlockingWaitStrategy(),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
    };

    /// <summary>Publishes <paramref name="eventCount"/> events in claims of <paramref name="claimSize"/>; returns the last sequence.</summary>
    public static long Produce(RingBuffer<BenchEvent> ring, long eventCount, int claimSize, long producerId)
    {
        long last = -1;
        if (claimSize == 1)
        {
            for (long i = 0; i < eventCount; i++)
            {
                long sequence = ring.Next();
                ref BenchEvent evt = ref ring[sequence];
                evt.Value = i;
                evt.ProducerId = producerId;
                ring.Publish(sequence);
                last = sequence;
            }
            return last;
        }

        for (long i = 0; i < eventCount; i += claimSize)
        {
            long hi = ring.Next(claimSize);
            long lo = hi - claimSize + 1;
            for (long sequence = lo; sequence <= hi; sequence++)
            {
                ref BenchEvent evt = ref ring[sequence];
                evt.Value = sequence;
                evt.ProducerId = producerId;
            }
            ring.Publish(lo, hi);
            last = hi;
        }
        return last;
    }

    /// <summary>Waits (spinning, then yielding) until the consumer has handled <paramref name="sequence"/>.</summary>
    public static void AwaitConsumer(Sequence consumer, long sequence)
    {
        SpinWait spinner = default;
        while (consumer.Value < sequence)
        {
            spinner.SpinOnce(sleep1Threshold: -1);
        }
    }
}
