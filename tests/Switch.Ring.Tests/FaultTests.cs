namespace Switch.Ring.Tests;

/// <summary>A throwing handler stops everything loudly: no event is skipped, nobody waits forever.</summary>
public sealed class FaultTests
{
    private sealed class BoomException(long sequence) : Exception($"boom at {sequence}");

    private sealed class ThrowingHandler(long throwAt) : IEventHandler<TestEvent>
    {
        public readonly List<long> Seen = new();

        public void OnEvent(ref TestEvent evt, long sequence, bool endOfBatch)
        {
            Seen.Add(sequence);
            if (sequence == throwAt)
            {
                throw new BoomException(sequence);
            }
        }
    }

    private sealed class CountingHandler : IEventHandler<TestEvent>
    {
        public long Highest = -1;

        public void OnEvent(ref TestEvent evt, long sequence, bool endOfBatch) => Highest = sequence;
    }

    [Theory]
    [MemberData(nameof(Strategies.All), MemberType = typeof(Strategies))]
    public void ThrowingHandler_StopsHaltsTheRingAndReleasesAWaitingProducer(string strategy)
    {
        var ring = RingBuffer<TestEvent>.CreateSingleProducer(8, Strategies.Create(strategy));
        var handler = new ThrowingHandler(throwAt: 3);
        var processor = new BatchEventProcessor<TestEvent, ThrowingHandler>(ring, ring.NewBarrier(), handler, maxBatchSize: 8);
        ring.AddGatingSequences(processor.Sequence);

        // Fill the ring, then a producer waits in Next for room that a stopped consumer never makes.
        ring.Publish(0, ring.Next(8));
        TestThread producer = TestThread.Start("producer", () => ring.Next());
        Assert.False(producer.FinishesWithin(TimeSpan.FromMilliseconds(50)), "Next returned on a full ring");

        Thread consumer = processor.Start("consumer");
        Wait.Join(consumer);

        var boom = Assert.IsType<BoomException>(processor.Fault);
        Assert.Equal(3, processor.FaultSequence);
        Assert.Equal(2, processor.Sequence.Value);
        Assert.Equal(new long[] { 0, 1, 2, 3 }, handler.Seen);
        Assert.True(ring.IsHalted);
        Assert.Same(boom, ring.HaltReason);

        var halted = Assert.IsType<RingHaltedException>(producer.JoinCapturing());
        Assert.Same(boom, halted.Reason);
        Assert.Same(boom, halted.InnerException);

        // And every later claim or wait, too.
        Assert.Same(boom, Assert.Throws<RingHaltedException>(() => ring.Next()).Reason);
        Assert.Same(boom, Assert.Throws<RingHaltedException>(() => ring.Next(2)).Reason);
        Assert.Same(boom, Assert.Throws<RingHaltedException>(() => ring.TryNext(out _)).Reason);
        Assert.Same(boom, Assert.Throws<RingHaltedException>(() => ring.TryNext(2, out _)).Reason);
        Assert.Same(boom, Assert.Throws<RingHaltedException>(() => ring.NewBarrier().WaitFor(0)).Reason);
    }

    [Theory]
    [MemberData(nameof(Strategies.Sharing), MemberType = typeof(Strategies))]
    public void ThrowingHandler_UnderLoad_NoLaterEventHandled_ProducersAndDownstreamStop(string strategy)
    {
        const long throwAt = 5_000;
        var ring = RingBuffer<TestEvent>.CreateMultiProducer(16, Strategies.Create(strategy));
        var handler = new ThrowingHandler(throwAt);
        var upstream = new BatchEventProcessor<TestEvent, ThrowingHandler>(ring, ring.NewBarrier(), handler, maxBatchSize: 4);
        var downstreamHandler = new CountingHandler();
        var downstream = new BatchEventProcessor<TestEvent, CountingHandler>(ring, ring.NewBarrier(upstream.Sequence), downstreamHandler, 4);
        ring.AddGatingSequences(downstream.Sequence);

        Thread upstreamThread = upstream.Start("upstream");
        Thread downstreamThread = downstream.Start("downstream");
        // Far more events than the ring holds: the producers must end up waiting, then be released by the halt.
        TestThread[] producers = Enumerable.Range(0, 3)
            .Select(id => TestThread.Start($"producer-{id}", () => Producers.Publish(ring, id, 1_000_000, maxClaim: 3, seed: id)))
            .ToArray();

        Wait.Join(upstreamThread);
        Wait.Join(downstreamThread);
        foreach (TestThread producer in producers)
        {
            var halted = Assert.IsType<RingHaltedException>(producer.JoinCapturing());
            Assert.Same(upstream.Fault, halted.Reason);
        }

        Assert.IsType<BoomException>(upstream.Fault);
        Assert.Equal(throwAt, upstream.FaultSequence);
        Assert.Equal(throwAt - 1, upstream.Sequence.Value);
        Assert.Equal(Enumerable.Range(0, (int)throwAt + 1).Select(i => (long)i), handler.Seen);

        // The downstream consumer stopped on the halt, never past what upstream finished.
        var downstreamHalt = Assert.IsType<RingHaltedException>(downstream.Fault);
        Assert.Same(upstream.Fault, downstreamHalt.Reason);
        Assert.Equal(-1, downstream.FaultSequence);
        Assert.True(downstream.Sequence.Value <= throwAt - 1);
        Assert.Equal(downstream.Sequence.Value, downstreamHandler.Highest);
    }
}
