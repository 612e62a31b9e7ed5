namespace Switch.Ring.Tests;

/// <summary>Batches: endOfBatch marks exactly each batch's last event, batches respect maxBatchSize,
/// and the processor publishes its sequence once per batch, after it.</summary>
public sealed class BatchTests
{
    private readonly record struct Call(long Sequence, bool EndOfBatch, long ProcessorSequenceDuringCall);

    private sealed class CallRecorder : IEventHandler<TestEvent>
    {
        public readonly List<Call> Calls = new();
        public readonly List<(long First, long Last, int CallsBefore)> BatchStarts = new();
        public Sequence? ProcessorSequence;

        public void OnEvent(ref TestEvent evt, long sequence, bool endOfBatch) =>
            Calls.Add(new Call(sequence, endOfBatch, ProcessorSequence!.Value));

        public void OnBatchStart(long firstSequence, long lastSequence) => BatchStarts.Add((firstSequence, lastSequence, Calls.Count));
    }

    [Fact]
    public void EndOfBatch_OnExactlyTheLastEventOfEachBatch_CappedByMaxBatchSize()
    {
        var ring = RingBuffer<TestEvent>.CreateSingleProducer(16, new BlockingWaitStrategy());
        var recorder = new CallRecorder();
        var processor = new BatchEventProcessor<TestEvent, CallRecorder>(ring, ring.NewBarrier(), recorder, maxBatchSize: 4);
        recorder.ProcessorSequence = processor.Sequence;
        ring.AddGatingSequences(processor.Sequence);

        // Ten events are available before the processor starts: batches of 4, 4 and 2.
        ring.Publish(0, ring.Next(10));
        Thread consumer = processor.Start("consumer");
        Wait.Until(() => processor.Sequence.Value == 9, "the first ten are handled");

        // One more, alone: a batch of one.
        ring.Publish(ring.Next());
        Wait.Until(() => processor.Sequence.Value == 10, "the eleventh is handled");
        processor.Halt();
        Wait.Join(consumer);
        Assert.Null(processor.Fault);

        long[] batchEnds = recorder.Calls.Where(c => c.EndOfBatch).Select(c => c.Sequence).ToArray();
        Assert.Equal(new long[] { 3, 7, 9, 10 }, batchEnds);
        // Each batch is announced, bounds and all, before its first event (the logic reads ahead in it).
        Assert.Equal(new[] { (0L, 3L, 0), (4L, 7L, 4), (8L, 9L, 8), (10L, 10L, 10) }, recorder.BatchStarts);
        Assert.Equal(Enumerable.Range(0, 11).Select(i => (long)i), recorder.Calls.Select(c => c.Sequence));

        // During a batch the processor's sequence still shows the previous batch's end.
        long[] sequenceDuringCall = recorder.Calls.Select(c => c.ProcessorSequenceDuringCall).ToArray();
        Assert.Equal(new long[] { -1, -1, -1, -1, 3, 3, 3, 3, 7, 7, 9 }, sequenceDuringCall);
    }

    /// <summary>Under concurrent publishing: batch lengths, endOfBatch and the processor's sequence agree.</summary>
    private sealed class BatchShapeChecker(int maxBatchSize) : IEventHandler<TestEvent>
    {
        public Sequence? ProcessorSequence;
        private long _batchStart;
        private long _batchLength;
        public long BatchCount;
        public long LongestBatch;

        public void OnEvent(ref TestEvent evt, long sequence, bool endOfBatch)
        {
            if (_batchLength == 0)
            {
                _batchStart = sequence;
            }
            _batchLength++;
            if (_batchLength > maxBatchSize)
            {
                throw new InvalidOperationException($"batch from {_batchStart} has {_batchLength} events, more than {maxBatchSize}");
            }
            long published = ProcessorSequence!.Value;
            if (published != _batchStart - 1)
            {
                throw new InvalidOperationException($"during the batch from {_batchStart} the processor's sequence is {published}");
            }
            if (endOfBatch)
            {
                LongestBatch = Math.Max(LongestBatch, _batchLength);
                BatchCount++;
                _batchLength = 0;
            }
        }
    }

    [Theory]
    [MemberData(nameof(Strategies.All), MemberType = typeof(Strategies))]
    public void MaxBatchSize_RespectedUnderConcurrentProducers(string strategy)
    {
        const int maxBatchSize = 5;
        long eventsPerProducer = Strategies.Scaled(strategy, 30_000);
        var ring = RingBuffer<TestEvent>.CreateMultiProducer(256, Strategies.Create(strategy));
        var checker = new BatchShapeChecker(maxBatchSize);
        var processor = new BatchEventProcessor<TestEvent, BatchShapeChecker>(ring, ring.NewBarrier(), checker, maxBatchSize);
        checker.ProcessorSequence = processor.Sequence;
        ring.AddGatingSequences(processor.Sequence);

        // Build a backlog first so long batches are certainly available.
        ring.Publish(0, ring.Next(200));
        Thread consumer = processor.Start("consumer");
        TestThread[] producers = Enumerable.Range(0, 2)
            .Select(id => TestThread.Start($"producer-{id}", () => Producers.Publish(ring, id, eventsPerProducer, maxClaim: 16, seed: id)))
            .ToArray();
        foreach (TestThread producer in producers)
        {
            producer.Join();
        }

        long last = 200 + 2 * eventsPerProducer - 1;
        Wait.Until(() => processor.Sequence.Value == last || processor.Fault is not null, "all handled");
        processor.Halt();
        Wait.Join(consumer);

        Assert.Null(processor.Fault);
        Assert.Equal(last, processor.Sequence.Value);
        Assert.Equal(maxBatchSize, checker.LongestBatch);
        Assert.True(checker.BatchCount >= (last + 1) / maxBatchSize);
    }
}
