using BenchmarkDotNet.Attributes;
using Switch.Ring;

namespace Switch.Benchmarks.Ring;

/// <summary>
/// One producer thread (the benchmark thread) to one consumer thread on a single-producer ring.
/// Each invocation publishes <see cref="EventsPerInvoke"/> events and waits until the consumer has
/// handled them all, so the time per operation is the end-to-end cost per event (events/s = 1e9 / ns).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(RingBenchmarkConfig))]
public class RingOneToOneBenchmark
{
    private const int EventsPerInvoke = 1 << 22;
    private const int RingSize = 1 << 16;

    private RingBuffer<BenchEvent> _ring = null!;
    private IWaitStrategy _strategy = null!;
    private BatchEventProcessor<BenchEvent, SummingHandler> _processor = null!;
    private Thread _consumerThread = null!;

    /// <summary>Slots per claim: 1 is Next()/Publish(s), more is Next(n)/Publish(lo, hi).</summary>
    [Params(1, 64)]
    public int ClaimSize { get; set; }

    // BusySpin is left out: on the 2 shared cores it measures the scheduler, not the ring.
    [Params("Yielding", "Blocking")]
    public string WaitStrategy { get; set; } = "Yielding";

    [GlobalSetup]
    public void Setup()
    {
        _strategy = RingBenchmarkSupport.CreateWaitStrategy(WaitStrategy);
        _ring = RingBuffer<BenchEvent>.CreateSingleProducer(RingSize, _strategy);
        _processor = new BatchEventProcessor<BenchEvent, SummingHandler>(_ring, _ring.NewBarrier(), default, maxBatchSize: 4096);
        _ring.AddGatingSequences(_processor.Sequence);
        _consumerThread = _processor.Start("ring-bench-consumer");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _processor.Halt();
        _consumerThread.Join();
        if (_processor.Fault is not null)
        {
            throw new InvalidOperationException("the consumer failed", _processor.Fault);
        }
        // new ring only: begin
        if (_strategy is BlockingWaitStrategy blocking)
        {
            // What each shape costs in wakes: printed into the run's log.
            Console.WriteLine($"// {WaitStrategy}, claims of {ClaimSize}: consumer slept {blocking.Sleeps} times, pulsed {blocking.Pulses} times " +
                $"for {_processor.Sequence.Value + 1} events");
        }
        // new ring only: end
    }

    [Benchmark(OperationsPerInvoke = EventsPerInvoke)]
    public long OneProducerOneConsumer()
    {
        long last = RingBenchmarkSupport.Produce(_ring, EventsPerInvoke, ClaimSize, producerId: 0);
        RingBenchmarkSupport.AwaitConsumer(_processor.Sequence, last);
        return last;
    }

    // new ring only: begin (perf/ring-before-after.sh leaves it out of the base's copy)
    /// <summary>The logic's shape on the output ring: a claim per event, published deferred, one signal per
    /// <see cref="ClaimSize"/> events (per batch). With a blocking consumer the wakes are the point.</summary>
    [Benchmark(OperationsPerInvoke = EventsPerInvoke)]
    public long OneProducerOneConsumerDeferred()
    {
        long last = -1;
        for (long i = 0; i < EventsPerInvoke; i++)
        {
            last = _ring.Next();
            _ring[last].Value = i;
            _ring.PublishDeferred(last, last);
            if ((i + 1) % ClaimSize == 0) _ring.SignalConsumers();
        }
        _ring.SignalConsumers();
        RingBenchmarkSupport.AwaitConsumer(_processor.Sequence, last);
        return last;
    }
    // new ring only: end
}
