namespace Switch.Ring.Tests;

/// <summary>Every wait strategy wakes promptly on a halt, whether of the processor or of the ring.</summary>
public sealed class HaltTests
{
    private sealed class NoOpHandler : IEventHandler<TestEvent>
    {
        public void OnEvent(ref TestEvent evt, long sequence, bool endOfBatch)
        {
        }
    }

    [Theory]
    [MemberData(nameof(Strategies.All), MemberType = typeof(Strategies))]
    public void ProcessorHalt_WakesAnIdleProcessor_RunReturnsWithoutFault(string strategy)
    {
        var ring = RingBuffer<TestEvent>.CreateMultiProducer(8, Strategies.Create(strategy));
        var processor = new BatchEventProcessor<TestEvent, NoOpHandler>(ring, ring.NewBarrier(), new NoOpHandler(), 8);
        ring.AddGatingSequences(processor.Sequence);
        ring.Publish(ring.Next());
        Thread consumer = processor.Start("consumer");
        Wait.Until(() => processor.Sequence.Value == 0, "the first event is handled");

        // Now it waits for sequence 1, which never comes.
        processor.Halt();
        Wait.Join(consumer);
        Assert.Null(processor.Fault);
        Assert.Equal(-1, processor.FaultSequence);
        Assert.False(ring.IsHalted);
        Assert.False(processor.IsRunning);
    }

    [Theory]
    [MemberData(nameof(Strategies.All), MemberType = typeof(Strategies))]
    public void RingHalt_WakesAnIdleProcessor_FaultCarriesTheReason(string strategy)
    {
        var ring = RingBuffer<TestEvent>.CreateSingleProducer(8, Strategies.Create(strategy));
        var processor = new BatchEventProcessor<TestEvent, NoOpHandler>(ring, ring.NewBarrier(), new NoOpHandler(), 8);
        Thread consumer = processor.Start("consumer");
        Wait.Until(() => processor.IsRunning, "the processor runs");

        var reason = new InvalidOperationException("operator stop");
        ring.Halt(reason);
        Wait.Join(consumer);
        var halted = Assert.IsType<RingHaltedException>(processor.Fault);
        Assert.Same(reason, halted.Reason);
    }

    [Theory]
    [MemberData(nameof(Strategies.All), MemberType = typeof(Strategies))]
    public void RingHalt_WakesABarrierWaiterAndAProducerWaitingForRoom(string strategy)
    {
        var ring = RingBuffer<TestEvent>.CreateMultiProducer(4, Strategies.Create(strategy));
        ring.AddGatingSequences(new Sequence());
        ring.Publish(0, ring.Next(4));
        SequenceBarrier barrier = ring.NewBarrier();

        TestThread waiter = TestThread.Start("waiter", () => barrier.WaitFor(4));
        TestThread producer = TestThread.Start("producer", () => ring.Next());
        Assert.False(waiter.FinishesWithin(TimeSpan.FromMilliseconds(50)), "WaitFor returned for an unpublished sequence");
        Assert.False(producer.IsDone, "Next returned on a full ring");

        var reason = new InvalidOperationException("stop");
        ring.Halt(reason);
        Assert.Same(reason, Assert.IsType<RingHaltedException>(waiter.JoinCapturing()).Reason);
        Assert.Same(reason, Assert.IsType<RingHaltedException>(producer.JoinCapturing()).Reason);
    }

    [Fact]
    public void RingHalt_FirstReasonWins()
    {
        var ring = RingBuffer<TestEvent>.CreateSingleProducer(8, new YieldingWaitStrategy());
        var first = new Exception("first");
        ring.Halt(first);
        ring.Halt(new Exception("second"));
        Assert.Same(first, ring.HaltReason);
        Assert.Same(first, Assert.Throws<RingHaltedException>(() => ring.Next()).Reason);
    }

    [Fact]
    public void ProcessorHalted_BeforeRun_RunReturnsAtOnce()
    {
        var ring = RingBuffer<TestEvent>.CreateSingleProducer(8, new BlockingWaitStrategy());
        var processor = new BatchEventProcessor<TestEvent, NoOpHandler>(ring, ring.NewBarrier(), new NoOpHandler(), 8);
        processor.Halt();
        Wait.Join(processor.Start("consumer"));
        Assert.Null(processor.Fault);
    }

    [Theory]
    [MemberData(nameof(Strategies.All), MemberType = typeof(Strategies))]
    public void Halts_WakeAConsumerSleepingOnItsOwnStrategyBehindAnIdleUpstream(string strategy)
    {
        var ring = RingBuffer<TestEvent>.CreateMultiProducer(8, Strategies.Create(strategy));
        var upstream = new Sequence(); // a consumer that never moves
        var halted = new BatchEventProcessor<TestEvent, NoOpHandler>(ring, ring.NewBarrier(Strategies.Create(strategy), upstream), new NoOpHandler(), 8);
        var stopped = new BatchEventProcessor<TestEvent, NoOpHandler>(ring, ring.NewBarrier(Strategies.Create(strategy), upstream), new NoOpHandler(), 8);
        ring.AddGatingSequences(upstream);
        ring.Publish(ring.Next()); // published, but the upstream consumer never passes it
        Thread first = halted.Start("halted-by-ring");
        Thread second = stopped.Start("stopped-by-processor-halt");
        Wait.Until(() => halted.IsRunning && stopped.IsRunning, "both consumers run");

        stopped.Halt();
        Wait.Join(second);
        Assert.Null(stopped.Fault);
        Assert.Equal(-1, stopped.Sequence.Value);

        var reason = new InvalidOperationException("operator stop");
        ring.Halt(reason);
        Wait.Join(first);
        Assert.Same(reason, Assert.IsType<RingHaltedException>(halted.Fault).Reason);
        Assert.Equal(-1, halted.Sequence.Value);
    }
}
