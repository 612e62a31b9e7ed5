using BenchmarkDotNet.Attributes;
using Switch.Ring;

namespace Switch.Benchmarks.Ring;

/// <summary>
/// Three producer threads (two helpers plus the benchmark thread) to one consumer on a
/// multi-producer ring. The helpers live across invocations, parked on a semaphore, so an
/// invocation allocates nothing. Time per operation is the end-to-end cost per event.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(RingBenchmarkConfig))]
public class RingThreeToOneBenchmark
{
    private const int ProducerCount = 3;
    private const int EventsPerProducer = 1 << 20;
    private const int EventsPerInvoke = ProducerCount * EventsPerProducer;
    private const int RingSize = 1 << 16;

    private RingBuffer<BenchEvent> _ring = null!;
    private BatchEventProcessor<BenchEvent, SummingHandler> _processor = null!;
    private Thread _consumerThread = null!;
    private Thread[] _helpers = [];
    private readonly SemaphoreSlim _start = new(0);
    private readonly CountdownEvent _helpersDone = new(ProducerCount - 1);
    private volatile bool _stopping;
    private long _eventsPublished;

    /// <summary>Slots per claim: 1 is Next()/Publish(s), more is Next(n)/Publish(lo, hi).</summary>
    [Params(1, 64)]
    public int ClaimSize { get; set; }

    // Four busy threads on a small machine: a consumer that yields its core is the sane choice.
    [Params("Yielding")]
    public string WaitStrategy { get; set; } = "Yielding";

    [GlobalSetup]
    public void Setup()
    {
        _ring = RingBuffer<BenchEvent>.CreateMultiProducer(RingSize, RingBenchmarkSupport.CreateWaitStrategy(WaitStrategy));
        _processor = new BatchEventProcessor<BenchEvent, SummingHandler>(_ring, _ring.NewBarrier(), default, maxBatchSize: 4096);
        _ring.AddGatingSequences(_processor.Sequence);
        _consumerThread = _processor.Start("ring-bench-consumer");
        _helpers = new Thread[ProducerCount - 1];
        for (int i = 0; i < _helpers.Length; i++)
        {
            long producerId = i + 1;
            _helpers[i] = new Thread(() => HelperLoop(producerId)) { Name = $"ring-bench-producer-{producerId}", IsBackground = true };
            _helpers[i].Start();
        }
    }

    private void HelperLoop(long producerId)
    {
        while (true)
        {
            _start.Wait();
            if (_stopping)
            {
                return;
            }
            RingBenchmarkSupport.Produce(_ring, EventsPerProducer, ClaimSize, producerId);
            _helpersDone.Signal();
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _stopping = true;
        _start.Release(_helpers.Length);
        foreach (Thread helper in _helpers)
        {
            helper.Join();
        }
        _processor.Halt();
        _consumerThread.Join();
        if (_processor.Fault is not null)
        {
            throw new InvalidOperationException("the consumer failed", _processor.Fault);
        }
    }

    [Benchmark(OperationsPerInvoke = EventsPerInvoke)]
    public long ThreeProducersOneConsumer()
    {
        _helpersDone.Reset();
        _start.Release(_helpers.Length);
        RingBenchmarkSupport.Produce(_ring, EventsPerProducer, ClaimSize, producerId: 0);
        _helpersDone.Wait();
        _eventsPublished += EventsPerInvoke;
        // Every sequence up to the total is claimed and published by now; wait for the consumer.
        RingBenchmarkSupport.AwaitConsumer(_processor.Sequence, _eventsPublished - 1);
        return _eventsPublished;
    }
}
