using BenchmarkDotNet.Attributes;
using Switch.Ring;

namespace Switch.Benchmarks.Ring;

/// <summary>
/// One producer to a chain of two consumers (the second behind the first, as the logic follows the journaler), in
/// claims of 64. The second consumer sleeps on its own strategy, woken by the first's progress, as the engine wires
/// it. Time per operation is the end-to-end cost per event through both consumers.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(RingBenchmarkConfig))]
public class RingChainBenchmark
{
    private const int EventsPerInvoke = 1 << 22;
    private const int RingSize = 1 << 16;
    private const int ClaimSize = 64;

    private RingBuffer<BenchEvent> _ring = null!;
    private BatchEventProcessor<BenchEvent, SummingHandler> _first = null!;
    private BatchEventProcessor<BenchEvent, SummingHandler> _second = null!;
    private Thread[] _threads = [];

    [Params("Yielding", "Blocking")]
    public string WaitStrategy { get; set; } = "Yielding";

    [GlobalSetup]
    public void Setup()
    {
        _ring = RingBuffer<BenchEvent>.CreateSingleProducer(RingSize, RingBenchmarkSupport.CreateWaitStrategy(WaitStrategy));
        _first = new BatchEventProcessor<BenchEvent, SummingHandler>(_ring, _ring.NewBarrier(), default, maxBatchSize: 4096);
        _second = new BatchEventProcessor<BenchEvent, SummingHandler>(
            _ring, _ring.NewBarrier(RingBenchmarkSupport.CreateWaitStrategy(WaitStrategy), _first.Sequence), default, maxBatchSize: 4096);
        _ring.AddGatingSequences(_second.Sequence);
        _threads = [_first.Start("ring-bench-first"), _second.Start("ring-bench-second")];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _first.Halt();
        _second.Halt();
        foreach (Thread thread in _threads)
        {
            thread.Join();
        }
        if ((_first.Fault ?? _second.Fault) is { } fault)
        {
            throw new InvalidOperationException("a consumer failed", fault);
        }
    }

    [Benchmark(OperationsPerInvoke = EventsPerInvoke)]
    public long ChainOfTwo()
    {
        long last = RingBenchmarkSupport.Produce(_ring, EventsPerInvoke, ClaimSize, producerId: 0);
        RingBenchmarkSupport.AwaitConsumer(_second.Sequence, last);
        return last;
    }
}
