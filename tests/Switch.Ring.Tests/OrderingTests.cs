namespace Switch.Ring.Tests;

/// <summary>Every published event reaches the consumer once, in order, with one and with many producers.</summary>
public sealed class OrderingTests
{
    private static void RunProducersAndConsumer(RingBuffer<TestEvent> ring, int producerCount, long eventsPerProducer, int maxClaim)
    {
        var handler = new OrderCheckingHandler(producerCount);
        var processor = new BatchEventProcessor<TestEvent, OrderCheckingHandler>(ring, ring.NewBarrier(), handler, maxBatchSize: 64);
        ring.AddGatingSequences(processor.Sequence);
        Thread consumer = processor.Start("consumer");

        var producers = new TestThread[producerCount];
        for (int id = 0; id < producerCount; id++)
        {
            int producerId = id;
            producers[id] = TestThread.Start($"producer-{id}", () =>
                Producers.Publish(ring, producerId, eventsPerProducer, maxClaim, seed: 17 + producerId));
        }
        foreach (TestThread producer in producers)
        {
            producer.Join();
        }

        long total = producerCount * eventsPerProducer;
        Wait.Until(() => processor.Sequence.Value == total - 1 || processor.Fault is not null, "the consumer has everything");
        processor.Halt();
        Wait.Join(consumer);

        Assert.Null(processor.Fault);
        Assert.Equal(total, handler.EventCount);
        for (int id = 0; id < producerCount; id++)
        {
            Assert.Equal(eventsPerProducer, handler.CounterOf(id));
        }
        Assert.False(ring.IsHalted);
    }

    [Theory]
    [MemberData(nameof(Strategies.All), MemberType = typeof(Strategies))]
    public void OneProducer_SingleClaims_AllEventsInOrder(string strategy)
    {
        var ring = RingBuffer<TestEvent>.CreateSingleProducer(1024, Strategies.Create(strategy));
        RunProducersAndConsumer(ring, producerCount: 1, eventsPerProducer: Strategies.Scaled(strategy, 200_000), maxClaim: 1);
        Assert.Equal(Strategies.Scaled(strategy, 200_000) - 1, ring.Cursor);
    }

    [Theory]
    [MemberData(nameof(Strategies.All), MemberType = typeof(Strategies))]
    public void OneProducer_BatchClaims_AllEventsInOrder(string strategy)
    {
        var ring = RingBuffer<TestEvent>.CreateSingleProducer(256, Strategies.Create(strategy));
        RunProducersAndConsumer(ring, producerCount: 1, eventsPerProducer: Strategies.Scaled(strategy, 200_000), maxClaim: 32);
    }

    [Theory]
    [MemberData(nameof(Strategies.All), MemberType = typeof(Strategies))]
    public void FourProducers_PerProducerOrderNoLossNoDuplicates(string strategy)
    {
        var ring = RingBuffer<TestEvent>.CreateMultiProducer(1024, Strategies.Create(strategy));
        RunProducersAndConsumer(ring, producerCount: 4, eventsPerProducer: Strategies.Scaled(strategy, 50_000), maxClaim: 1);
    }

    [Theory]
    [MemberData(nameof(Strategies.All), MemberType = typeof(Strategies))]
    public void ThreeProducers_BatchClaims_PerProducerOrderNoLossNoDuplicates(string strategy)
    {
        var ring = RingBuffer<TestEvent>.CreateMultiProducer(256, Strategies.Create(strategy));
        RunProducersAndConsumer(ring, producerCount: 3, eventsPerProducer: Strategies.Scaled(strategy, 60_000), maxClaim: 16);
    }

    [Fact]
    public void OneProducer_WrapsASmallRingManyTimes()
    {
        // 100k events through 8 slots: 12,500 laps, each slot reused under back pressure.
        var ring = RingBuffer<TestEvent>.CreateSingleProducer(8, new YieldingWaitStrategy());
        RunProducersAndConsumer(ring, producerCount: 1, eventsPerProducer: 100_000, maxClaim: 3);
    }

    [Fact]
    public void ThreeProducers_WrapASmallRingManyTimes()
    {
        var ring = RingBuffer<TestEvent>.CreateMultiProducer(8, new YieldingWaitStrategy());
        RunProducersAndConsumer(ring, producerCount: 3, eventsPerProducer: 34_000, maxClaim: 3);
    }

    [Fact]
    public void ManyProducers_ClaimedButUnpublishedSlotIsNeverRead()
    {
        var ring = RingBuffer<TestEvent>.CreateMultiProducer(8, new YieldingWaitStrategy());
        SequenceBarrier barrier = ring.NewBarrier();

        long first = ring.Next();
        long second = ring.Next();
        ring.Publish(second);

        // The cursor (the claim) is past both, but sequence 0 is not published, so nothing is readable.
        Assert.Equal(1, ring.Cursor);
        Assert.Equal(-1, barrier.HighestAvailable(first));

        ring.Publish(first);
        Assert.Equal(1, barrier.HighestAvailable(first));
        Assert.Equal(1, barrier.WaitFor(first));
    }

    [Fact]
    public void ManyProducers_ProcessorStopsAtTheUnpublishedGap()
    {
        var ring = RingBuffer<TestEvent>.CreateMultiProducer(8, new BlockingWaitStrategy());
        var seen = new List<long>();
        var processor = new BatchEventProcessor<TestEvent, RecordingHandler>(ring, ring.NewBarrier(), new RecordingHandler(seen), 8);
        ring.AddGatingSequences(processor.Sequence);
        Thread consumer = processor.Start("consumer");

        long gap = ring.Next();
        long after = ring.Next();
        ring.Publish(after);
        long afterThat = ring.Next();
        ring.Publish(afterThat);

        // Nothing can be handled while sequence 0 is unpublished; whatever the timing, the
        // processor's sequence must still be -1.
        Thread.Sleep(50);
        Assert.Equal(-1, processor.Sequence.Value);

        ring.Publish(gap);
        Wait.Until(() => processor.Sequence.Value == afterThat, "the processor reaches the end");
        processor.Halt();
        Wait.Join(consumer);
        Assert.Equal(new long[] { 0, 1, 2 }, seen);
    }

    private sealed class RecordingHandler(List<long> seen) : IEventHandler<TestEvent>
    {
        public void OnEvent(ref TestEvent evt, long sequence, bool endOfBatch) => seen.Add(sequence);
    }
}
