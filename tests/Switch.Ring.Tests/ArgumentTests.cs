namespace Switch.Ring.Tests;

/// <summary>Invariants are checked, not assumed.</summary>
public sealed class ArgumentTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(-8)]
    [InlineData(3)]
    [InlineData(6)]
    [InlineData(1000)]
    public void BufferSize_MustBeAPositivePowerOfTwo(int size)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => RingBuffer<TestEvent>.CreateSingleProducer(size, new YieldingWaitStrategy()));
        Assert.Throws<ArgumentOutOfRangeException>(() => RingBuffer<TestEvent>.CreateMultiProducer(size, new YieldingWaitStrategy()));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ClaimSize_MustBeBetweenOneAndTheRingSize(bool multiProducer)
    {
        var ring = multiProducer
            ? RingBuffer<TestEvent>.CreateMultiProducer(8, new YieldingWaitStrategy())
            : RingBuffer<TestEvent>.CreateSingleProducer(8, new YieldingWaitStrategy());
        Assert.Throws<ArgumentOutOfRangeException>(() => ring.Next(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => ring.Next(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => ring.Next(9));
        Assert.Throws<ArgumentOutOfRangeException>(() => ring.TryNext(0, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => ring.TryNext(9, out _));
        Assert.Equal(7, ring.Next(8));
    }

    [Fact]
    public void PublishRange_MustBeNonEmptyAndAtMostTheRingSize()
    {
        var ring = RingBuffer<TestEvent>.CreateMultiProducer(8, new YieldingWaitStrategy());
        ring.Next(8);
        Assert.Throws<ArgumentOutOfRangeException>(() => ring.Publish(5, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => ring.Publish(0, 8));
    }

    [Fact]
    public void Processor_RejectsBadBatchSizeAndASharedBarrier()
    {
        var ring = RingBuffer<TestEvent>.CreateSingleProducer(8, new YieldingWaitStrategy());
        SequenceBarrier barrier = ring.NewBarrier();
        Assert.Throws<ArgumentOutOfRangeException>(() => new BatchEventProcessor<TestEvent, Handler>(ring, barrier, new Handler(), 0));
        _ = new BatchEventProcessor<TestEvent, Handler>(ring, barrier, new Handler(), 1);
        Assert.Throws<ArgumentException>(() => new BatchEventProcessor<TestEvent, Handler>(ring, barrier, new Handler(), 1));
    }

    [Fact]
    public void BarrierWithItsOwnStrategy_MustFollowAnotherConsumer()
    {
        var ring = RingBuffer<TestEvent>.CreateMultiProducer(8, new BlockingWaitStrategy());
        // Publishes signal only the ring's strategy: a barrier on the cursor with its own would sleep through them.
        Assert.Throws<ArgumentException>(() => ring.NewBarrier(new BlockingWaitStrategy()));
        Assert.Throws<ArgumentNullException>(() => ring.NewBarrier((IWaitStrategy)null!, new Sequence()));
        _ = ring.NewBarrier(new BlockingWaitStrategy(), new Sequence());
    }

    [Fact]
    public void GatingSequence_AlreadyLapped_IsRejected()
    {
        var ring = RingBuffer<TestEvent>.CreateSingleProducer(4, new YieldingWaitStrategy());
        for (int i = 0; i < 10; i++)
        {
            ring.Publish(ring.Next());
        }
        Assert.Throws<ArgumentException>(() => ring.AddGatingSequences(new Sequence()));
        ring.AddGatingSequences(new Sequence(ring.Cursor));
    }

    [Fact]
    public void Sequence_StartsAtMinusOne_AndComparesAndSets()
    {
        var sequence = new Sequence();
        Assert.Equal(-1, sequence.Value);
        Assert.True(sequence.CompareAndSet(-1, 5));
        Assert.False(sequence.CompareAndSet(-1, 6));
        Assert.Equal(5, sequence.Value);
        Assert.Equal(7, sequence.AddAndGet(2));
    }

    // A struct handler: the processor is specialised for it, so the call is direct.
    private struct Handler : IEventHandler<TestEvent>
    {
        public void OnEvent(ref TestEvent evt, long sequence, bool endOfBatch)
        {
        }
    }
}
