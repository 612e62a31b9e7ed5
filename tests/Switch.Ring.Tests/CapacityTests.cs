namespace Switch.Ring.Tests;

/// <summary>Back pressure: a full ring never grows; TryNext fails fast and Next waits.</summary>
public sealed class CapacityTests
{
    public static TheoryData<bool> ProducerKinds => new() { false, true };

    private static RingBuffer<TestEvent> Create(bool multiProducer, int size) => multiProducer
        ? RingBuffer<TestEvent>.CreateMultiProducer(size, new YieldingWaitStrategy())
        : RingBuffer<TestEvent>.CreateSingleProducer(size, new YieldingWaitStrategy());

    [Theory]
    [MemberData(nameof(ProducerKinds))]
    public void TryNext_FalseWhenFull_TrueOnceTheConsumerAdvances(bool multiProducer)
    {
        var ring = Create(multiProducer, 8);
        var consumer = new Sequence();
        ring.AddGatingSequences(consumer);

        for (long expected = 0; expected < 8; expected++)
        {
            Assert.True(ring.TryNext(out long sequence));
            Assert.Equal(expected, sequence);
            ring.Publish(sequence);
        }

        Assert.False(ring.TryNext(out _));
        Assert.False(ring.TryNext(2, out _));

        consumer.SetValue(0);
        Assert.True(ring.TryNext(out long ninth));
        Assert.Equal(8, ninth);
        ring.Publish(ninth);
        Assert.False(ring.TryNext(out _));

        consumer.SetValue(2);
        Assert.False(ring.TryNext(3, out _));
        Assert.True(ring.TryNext(2, out long high));
        Assert.Equal(10, high);
        ring.Publish(9, 10);
        Assert.False(ring.TryNext(out _));
    }

    [Theory]
    [MemberData(nameof(ProducerKinds))]
    public void Next_WaitsWhileFull_UntilTheConsumerMakesEnoughRoom(bool multiProducer)
    {
        var ring = Create(multiProducer, 4);
        var consumer = new Sequence();
        ring.AddGatingSequences(consumer);
        ring.Publish(0, ring.Next(4));

        long claimed = -100;
        TestThread producer = TestThread.Start("producer", () => claimed = ring.Next(2));

        // Correct code never returns here while the ring is full; a bug returns at once.
        Assert.False(producer.FinishesWithin(TimeSpan.FromMilliseconds(100)), "Next returned on a full ring");

        // One free slot is not enough for two.
        consumer.SetValue(0);
        Assert.False(producer.FinishesWithin(TimeSpan.FromMilliseconds(100)), "Next(2) returned with one free slot");

        consumer.SetValue(1);
        producer.Join();
        Assert.Equal(5, claimed);
    }

    [Fact]
    public void NoGatingSequences_ProducersAreNotHeldBack()
    {
        // With no consumers registered, nothing gates: this is what AddGatingSequences is for.
        var ring = RingBuffer<TestEvent>.CreateSingleProducer(4, new YieldingWaitStrategy());
        for (int i = 0; i < 20; i++)
        {
            ring.Publish(ring.Next());
        }
        Assert.Equal(19, ring.Cursor);
    }

    [Fact]
    public void Ring_IsPreallocatedAndIndexedByMask()
    {
        var ring = RingBuffer<TestEvent>.CreateSingleProducer(8, new YieldingWaitStrategy());
        ring[3].Counter = 42;
        Assert.Equal(42, ring[11].Counter);
        Assert.Equal(42, ring[3 + 8 * 1000].Counter);
        Assert.Equal(8, ring.BufferSize);
    }
}
