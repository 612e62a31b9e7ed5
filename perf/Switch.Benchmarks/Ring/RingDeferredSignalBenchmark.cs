using BenchmarkDotNet.Attributes;
using Switch.Ring;

namespace Switch.Benchmarks.Ring;

/// <summary>
/// The logic's shape on the output ring: one producer publishing one event per claim to one consumer sleeping on a
/// blocking strategy, waking it after every publish (1) or once per 64 (<see cref="RingBuffer{T}.PublishDeferred"/>
/// then <see cref="RingBuffer{T}.SignalConsumers"/>, as the logic does per batch). Time per operation is per event.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(RingBenchmarkConfig))]
public class RingDeferredSignalBenchmark
{
    private const int EventsPerInvoke = 1 << 22;
    private const int RingSize = 1 << 16;

    private RingBuffer<BenchEvent> _ring = null!;
    private BlockingWaitStrategy _strategy = null!;
    private BatchEventProcessor<BenchEvent, SummingHandler> _processor = null!;
    private Thread _consumerThread = null!;
    private long _invocations;

    [Params(1, 64)]
    public int PublishesPerSignal { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _strategy = new BlockingWaitStrategy();
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
        // The wakes are the point of the shape: say how many each event cost.
        long events = _invocations * EventsPerInvoke;
        Console.WriteLine($"// {PublishesPerSignal} publishes per signal: {_strategy.Pulses} pulses, {_strategy.Sleeps} sleeps for {events} events " +
            $"({(double)_strategy.Pulses / Math.Max(1, events):F4} wakes per event)");
    }

    [Benchmark(OperationsPerInvoke = EventsPerInvoke)]
    public long OneToOneBlocking()
    {
        long last = -1;
        for (long i = 0; i < EventsPerInvoke; i++)
        {
            long sequence = _ring.Next();
            _ring[sequence].Value = i;
            if (PublishesPerSignal == 1)
            {
                _ring.Publish(sequence);
            }
            else
            {
                _ring.PublishDeferred(sequence, sequence);
                if ((i + 1) % PublishesPerSignal == 0) _ring.SignalConsumers();
            }
            last = sequence;
        }
        _ring.SignalConsumers();
        RingBenchmarkSupport.AwaitConsumer(_processor.Sequence, last);
        _invocations++;
        return last;
    }
}
