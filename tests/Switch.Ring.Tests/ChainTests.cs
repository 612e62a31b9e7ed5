namespace Switch.Ring.Tests;

/// <summary>Consumers chained by dependency: a later stage never passes an earlier one.</summary>
public sealed class ChainTests
{
    private sealed class StageA : IEventHandler<TestEvent>
    {
        private long _handled;

        public void OnEvent(ref TestEvent evt, long sequence, bool endOfBatch)
        {
            evt.StageA = sequence + 1;
            // Uneven pace, so the next stage really has to wait for this one now and then.
            if (++_handled % 97 == 0)
            {
                Thread.Yield();
            }
        }
    }

    private sealed class StageB(Sequence upstream) : IEventHandler<TestEvent>
    {
        public void OnEvent(ref TestEvent evt, long sequence, bool endOfBatch)
        {
            if (evt.StageA != sequence + 1)
            {
                throw new InvalidOperationException($"stage B reached {sequence} before stage A handled it");
            }
            if (upstream.Value < sequence)
            {
                throw new InvalidOperationException($"stage B at {sequence} is past stage A's sequence {upstream.Value}");
            }
            evt.StageB = sequence + 1;
        }
    }

    private sealed class StageC(Sequence upstreamA, Sequence upstreamB) : IEventHandler<TestEvent>
    {
        public long Handled;

        public void OnEvent(ref TestEvent evt, long sequence, bool endOfBatch)
        {
            if (evt.StageA != sequence + 1 || evt.StageB != sequence + 1)
            {
                throw new InvalidOperationException($"stage C reached {sequence} before stages A and B handled it");
            }
            if (upstreamA.Value < sequence || upstreamB.Value < sequence)
            {
                throw new InvalidOperationException($"stage C at {sequence} is past an upstream sequence");
            }
            Handled++;
        }
    }

    [Theory]
    [MemberData(nameof(Strategies.Sharing), MemberType = typeof(Strategies))]
    public void ChainedConsumers_NeverOvertake(string strategy)
    {
        const long eventCount = 100_000;
        var ring = RingBuffer<TestEvent>.CreateMultiProducer(64, Strategies.Create(strategy));
        var a = new BatchEventProcessor<TestEvent, StageA>(ring, ring.NewBarrier(), new StageA(), 16);
        var b = new BatchEventProcessor<TestEvent, StageB>(ring, ring.NewBarrier(a.Sequence), new StageB(a.Sequence), 16);
        var stageC = new StageC(a.Sequence, b.Sequence);
        var c = new BatchEventProcessor<TestEvent, StageC>(ring, ring.NewBarrier(a.Sequence, b.Sequence), stageC, 16);
        // Only the end of the chain gates the producers: it is behind everything else.
        ring.AddGatingSequences(c.Sequence);

        Thread[] consumers = [a.Start("a"), b.Start("b"), c.Start("c")];
        PublishFromTwoProducers(ring, eventCount);
        Wait.Until(() => c.Sequence.Value == eventCount - 1 || ring.IsHalted, "stage C has everything");

        HaltJoinAndAssertNoFault(consumers, (a.Halt, () => a.Fault), (b.Halt, () => b.Fault), (c.Halt, () => c.Fault));
        Assert.Equal(eventCount, stageC.Handled);
    }

    [Theory]
    [MemberData(nameof(Strategies.All), MemberType = typeof(Strategies))]
    public void ConsumerOnItsOwnStrategy_IsWokenByUpstreamProgress_AndNeverOvertakes(string strategy)
    {
        long eventCount = Strategies.Scaled(strategy, 100_000);
        var ring = RingBuffer<TestEvent>.CreateMultiProducer(64, Strategies.Create(strategy));
        var a = new BatchEventProcessor<TestEvent, StageA>(ring, ring.NewBarrier(), new StageA(), 16);
        // Publishes do not signal B's strategy: only A's progress (and halts) do.
        var b = new BatchEventProcessor<TestEvent, StageB>(ring, ring.NewBarrier(Strategies.Create(strategy), a.Sequence), new StageB(a.Sequence), 16);
        ring.AddGatingSequences(b.Sequence);

        Thread[] consumers = [a.Start("a"), b.Start("b")];
        PublishFromTwoProducers(ring, eventCount);
        Wait.Until(() => b.Sequence.Value == eventCount - 1 || ring.IsHalted, "stage B has everything");

        HaltJoinAndAssertNoFault(consumers, (a.Halt, () => a.Fault), (b.Halt, () => b.Fault));
    }

    private static void PublishFromTwoProducers(RingBuffer<TestEvent> ring, long eventCount)
    {
        TestThread[] producers = Enumerable.Range(0, 2)
            .Select(id => TestThread.Start($"producer-{id}", () => Producers.Publish(ring, id, eventCount / 2, maxClaim: 4, seed: id)))
            .ToArray();
        foreach (TestThread producer in producers)
        {
            producer.Join();
        }
    }

    private static void HaltJoinAndAssertNoFault(Thread[] consumers, params (Action Halt, Func<Exception?> Fault)[] processors)
    {
        foreach (var processor in processors)
        {
            processor.Halt();
        }
        foreach (Thread consumer in consumers)
        {
            Wait.Join(consumer);
        }
        foreach (var processor in processors)
        {
            Assert.Null(processor.Fault());
        }
    }
}
