namespace Switch.Ring.Tests;

/// <summary>
/// The blocking strategy's wakes: none lost (a consumer that sleeps sees every publish, deferred ones once signalled),
/// and none spent where nobody waits for them (a deferred publish, a consumer's progress that nobody follows).
/// </summary>
public sealed class WakeTests
{
    private sealed class SlowHandler(int pauseMs) : IEventHandler<TestEvent>
    {
        public void OnEvent(ref TestEvent evt, long sequence, bool endOfBatch) => Thread.Sleep(pauseMs);
    }

    private sealed class NoOpHandler : IEventHandler<TestEvent>
    {
        public void OnEvent(ref TestEvent evt, long sequence, bool endOfBatch)
        {
        }
    }

    private static (BlockingWaitStrategy, RingBuffer<TestEvent>, OrderCheckingHandler, BatchEventProcessor<TestEvent, OrderCheckingHandler>, Thread)
        StartOneConsumer(bool multiProducer, int ringSize, string threadName)
    {
        var strategy = new BlockingWaitStrategy();
        var ring = multiProducer
            ? RingBuffer<TestEvent>.CreateMultiProducer(ringSize, strategy)
            : RingBuffer<TestEvent>.CreateSingleProducer(ringSize, strategy);
        var handler = new OrderCheckingHandler(1);
        var consumer = new BatchEventProcessor<TestEvent, OrderCheckingHandler>(ring, ring.NewBarrier(), handler, 64);
        ring.AddGatingSequences(consumer.Sequence);
        return (strategy, ring, handler, consumer, consumer.Start(threadName));
    }

    /// <summary>
    /// Many short publishes from several producers, each pausing now and then so the consumer falls asleep over and
    /// over: a lost wake leaves it asleep on a published event, and the wait for it times out. Some producers publish
    /// deferred and signal once per burst, as the engine's logic does.
    /// </summary>
    [Theory]
    [InlineData(1, false)]
    [InlineData(1, true)]
    [InlineData(3, false)]
    [InlineData(3, true)]
    public void ManyShortPublishes_ConsumerSeesEveryOne(int producerCount, bool deferred)
    {
        const long eventsPerProducer = 20_000;
        var strategy = new BlockingWaitStrategy();
        var ring = producerCount == 1
            ? RingBuffer<TestEvent>.CreateSingleProducer(256, strategy)
            : RingBuffer<TestEvent>.CreateMultiProducer(256, strategy);
        var handler = new OrderCheckingHandler(producerCount);
        var consumer = new BatchEventProcessor<TestEvent, OrderCheckingHandler>(ring, ring.NewBarrier(), handler, 64);
        ring.AddGatingSequences(consumer.Sequence);
        Thread consumerThread = consumer.Start("wake-consumer");

        var producers = new TestThread[producerCount];
        for (int p = 0; p < producerCount; p++)
        {
            int producerId = p;
            producers[p] = TestThread.Start($"wake-producer-{p}", () => PublishInBursts(ring, producerId, eventsPerProducer, deferred, seed: 17 + producerId));
        }
        foreach (TestThread producer in producers)
        {
            producer.Join();
        }
        long total = producerCount * eventsPerProducer;
        Wait.Until(() => consumer.Sequence.Value == total - 1 || consumer.Fault is not null, $"the consumer handled all {total} events");
        consumer.Halt();
        Wait.Join(consumerThread);

        Assert.Null(consumer.Fault);
        Assert.Equal(total, handler.EventCount);
        // The test means something only if the consumer did sleep and was woken, many times.
        Assert.True(strategy.Sleeps > 10, $"the consumer slept {strategy.Sleeps} times");
        Assert.True(strategy.Pulses > 10, $"the consumer was pulsed {strategy.Pulses} times");
    }

    private static void PublishInBursts(RingBuffer<TestEvent> ring, int producerId, long count, bool deferred, int seed)
    {
        var random = new Random(seed);
        long counter = 0;
        while (counter < count)
        {
            int burst = (int)Math.Min(count - counter, random.Next(1, 40));
            for (int i = 0; i < burst; i++)
            {
                long sequence = ring.Next();
                ref TestEvent evt = ref ring[sequence];
                evt.ProducerId = producerId;
                evt.Counter = counter++;
                evt.WrittenForSequence = sequence;
                if (deferred) ring.PublishDeferred(sequence, sequence);
                else ring.Publish(sequence);
            }
            if (deferred) ring.SignalConsumers();
            // A pause long enough, now and then, for the consumer to drain and sleep.
            if (random.Next(8) == 0) Thread.Sleep(random.Next(2));
            else Thread.SpinWait(random.Next(1, 400));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DeferredPublish_WakesASleepingConsumerOnlyWhenSignalled(bool multiProducer)
    {
        var (strategy, ring, handler, consumer, consumerThread) = StartOneConsumer(multiProducer, ringSize: 64, "deferred-consumer");
        Wait.Until(() => strategy.Sleeps == 1, "the consumer sleeps on the empty ring");

        for (int i = 0; i < 3; i++)
        {
            long sequence = ring.Next();
            ref TestEvent evt = ref ring[sequence];
            evt.Counter = i;
            evt.WrittenForSequence = sequence;
            ring.PublishDeferred(sequence, sequence);
        }
        // Nothing wakes it: it would sleep on these forever without the signal below.
        Thread.Sleep(200);
        Assert.Equal(Sequence.InitialValue, consumer.Sequence.Value);
        Assert.Equal(0, strategy.Pulses);

        ring.SignalConsumers();
        Wait.Until(() => consumer.Sequence.Value == 2, "the signalled consumer handled the three events");
        Assert.Equal(1, strategy.Pulses);
        consumer.Halt();
        Wait.Join(consumerThread);
        Assert.Null(consumer.Fault);
    }

    /// <summary>A producer that only ever defers, on a ring far smaller than what it publishes: each claim that finds
    /// the ring full wakes the consumer, so the ring never stalls on a sleeping consumer.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DeferredPublishes_FillingTheRing_NeverStall(bool multiProducer)
    {
        const long eventCount = 50_000;
        var (strategy, ring, handler, consumer, consumerThread) = StartOneConsumer(multiProducer, ringSize: 8, "full-consumer");

        TestThread producer = TestThread.Start("full-producer", () =>
        {
            for (long i = 0; i < eventCount; i++)
            {
                long sequence = ring.Next();
                ref TestEvent evt = ref ring[sequence];
                evt.Counter = i;
                evt.WrittenForSequence = sequence;
                ring.PublishDeferred(sequence, sequence);
            }
        });
        producer.Join();
        // The last few (less than a ring) wait for the producer's signal, as its contract says.
        ring.SignalConsumers();
        Wait.Until(() => consumer.Sequence.Value == eventCount - 1 || consumer.Fault is not null, "the consumer handled every event");
        consumer.Halt();
        Wait.Join(consumerThread);
        Assert.Null(consumer.Fault);
        Assert.Equal(eventCount, handler.EventCount);
    }

    /// <summary>
    /// A consumer's progress wakes only the barriers that follow it: the upstream consumer (asleep on the ring) is
    /// pulsed once per publish, never by the downstream one finishing. Before, every batch's progress signalled the
    /// ring's strategy too, pulsing a sleeping journaler for nothing after each batch the logic finished.
    /// </summary>
    [Fact]
    public void Progress_WakesOnlyTheConsumersThatFollowIt()
    {
        const int rounds = 5;
        var ringStrategy = new BlockingWaitStrategy();
        var followerStrategy = new BlockingWaitStrategy();
        var ring = RingBuffer<TestEvent>.CreateSingleProducer(64, ringStrategy);
        var first = new BatchEventProcessor<TestEvent, NoOpHandler>(ring, ring.NewBarrier(), new NoOpHandler(), 64);
        // Slow, so the first consumer is asleep again long before this one's progress.
        var second = new BatchEventProcessor<TestEvent, SlowHandler>(ring, ring.NewBarrier(followerStrategy, first.Sequence), new SlowHandler(50), 64);
        ring.AddGatingSequences(second.Sequence);
        Thread firstThread = first.Start("progress-first");
        Thread secondThread = second.Start("progress-second");
        Wait.Until(() => ringStrategy.Sleeps == 1 && followerStrategy.Sleeps == 1, "both consumers sleep on the empty ring");

        for (int round = 0; round < rounds; round++)
        {
            long sequence = ring.Next();
            ring[sequence].WrittenForSequence = sequence;
            ring.Publish(sequence);
            // Both handled it and sleep again: the second one only after its progress signal.
            Wait.Until(() => ringStrategy.Sleeps >= round + 2 && followerStrategy.Sleeps >= round + 2, $"round {round} handled by both");
        }

        Assert.Equal(rounds, ringStrategy.Pulses);
        Assert.Equal(rounds + 1, ringStrategy.Sleeps);
        Assert.Equal(rounds, followerStrategy.Pulses);
        first.Halt();
        second.Halt();
        Wait.Join(firstThread);
        Wait.Join(secondThread);
        Assert.Null(first.Fault);
        Assert.Null(second.Fault);
    }
}
