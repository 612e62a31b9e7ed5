using System.Diagnostics;

namespace Switch.Ring;

/// <summary>
/// Runs one consumer: waits on its barrier for the highest available sequence, hands each event
/// up to it (at most maxBatchSize) to the handler, then publishes its own <see cref="Sequence"/>
/// once for the whole batch. Generic over the handler type so the call is devirtualised (and
/// inlinable when the handler is a struct).
/// </summary>
/// <remarks>
/// A handler that throws stops everything loudly rather than skip an event: the processor keeps
/// its sequence at the last event fully handled, records <see cref="Fault"/> and
/// <see cref="FaultSequence"/>, halts the ring (producers and other consumers then throw
/// <see cref="RingHaltedException"/>) and <see cref="Run"/> returns without rethrowing, so a
/// dedicated thread does not take the process down; the owner reads <see cref="Fault"/>.
/// </remarks>
public sealed class BatchEventProcessor<T, THandler>
    where T : struct
    where THandler : IEventHandler<T>
{
    private readonly RingBuffer<T> _ring;
    private readonly SequenceBarrier _barrier;
    private readonly int _maxBatchSize;
    private readonly Sequence _sequence = new();

    // Not readonly: a struct handler keeps its own state across calls.
    private THandler _handler;

    private int _running;
    private volatile bool _haltRequested;
    private volatile Exception? _fault;
    private long _faultSequence = Sequence.InitialValue;

    public BatchEventProcessor(RingBuffer<T> ring, SequenceBarrier barrier, THandler handler, int maxBatchSize)
    {
        ArgumentNullException.ThrowIfNull(ring);
        ArgumentNullException.ThrowIfNull(barrier);
        if (handler is null)
        {
            throw new ArgumentNullException(nameof(handler));
        }
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatchSize, 1);
        if (!barrier.TryClaimOwnership(this))
        {
            // The barrier's alert is how Halt wakes this processor; sharing it would halt both.
            throw new ArgumentException("The barrier already serves another processor; make one barrier per processor.", nameof(barrier));
        }
        _ring = ring;
        _barrier = barrier;
        _handler = handler;
        _maxBatchSize = maxBatchSize;
    }

    /// <summary>The last sequence this processor has fully handled; downstream barriers and gating use it.</summary>
    public Sequence Sequence => _sequence;

    /// <summary>
    /// The exception that stopped <see cref="Run"/>: the handler's own exception, or a
    /// <see cref="RingHaltedException"/> if the ring was halted by someone else. Null if it was
    /// stopped by <see cref="Halt"/> or is still running.
    /// </summary>
    public Exception? Fault => _fault;

    /// <summary>The sequence of the event whose handler threw, or -1 if none did.</summary>
    public long FaultSequence => Volatile.Read(ref _faultSequence);

    /// <summary>True while <see cref="Run"/> is executing.</summary>
    public bool IsRunning => Volatile.Read(ref _running) != 0;

    /// <summary>Starts <see cref="Run"/> on a new dedicated background thread.</summary>
    public Thread Start(string threadName)
    {
        var thread = new Thread(Run) { Name = threadName, IsBackground = true };
        thread.Start();
        return thread;
    }

    /// <summary>Asks the processor to stop after its current batch; <see cref="Run"/> then returns.</summary>
    public void Halt()
    {
        _haltRequested = true;
        _barrier.Alert();
    }

    /// <summary>
    /// The processing loop, on the calling thread, until <see cref="Halt"/>, a handler fault or a
    /// ring halt. Returns immediately if already halted; a processor runs once.
    /// </summary>
    public void Run()
    {
        if (Interlocked.Exchange(ref _running, 1) != 0)
        {
            throw new InvalidOperationException("The processor is already running.");
        }
        try
        {
            ProcessEvents();
        }
        finally
        {
            Volatile.Write(ref _running, 0);
        }
    }

    private void ProcessEvents()
    {
        long nextSequence = _sequence.Value + 1;
        while (!_haltRequested)
        {
            long availableSequence;
            try
            {
                availableSequence = _barrier.WaitFor(nextSequence);
            }
            catch (RingHaltedException halted)
            {
                _fault = halted;
                return;
            }

            if (availableSequence < nextSequence)
            {
                // Alerted with nothing new: the loop condition sees the halt request.
                continue;
            }

            long batchEnd = Math.Min(availableSequence, nextSequence + _maxBatchSize - 1);
            long sequence = nextSequence;
            try
            {
                _handler.OnBatchStart(nextSequence, batchEnd);
                for (; sequence <= batchEnd; sequence++)
                {
                    _handler.OnEvent(ref _ring[sequence], sequence, sequence == batchEnd);
                }
            }
            catch (Exception ex)
            {
                Fail(ex, sequence);
                return;
            }

            Debug.Assert(batchEnd >= _sequence.Value, "A processor's sequence only moves forward.");
            // Once per batch: downstream consumers see the whole batch finished, never half of it.
            _sequence.SetValue(batchEnd);
            _ring.Sequencer.SignalProgress(_sequence);
            nextSequence = batchEnd + 1;
        }
    }

    private void Fail(Exception ex, long sequence)
    {
        Volatile.Write(ref _faultSequence, sequence);
        _fault = ex;
        // Halt before moving the sequence: a producer or consumer released by the move must
        // already see the halt, so nothing proceeds past a fault.
        _ring.Halt(ex);
        // Everything before the failing event was fully handled, and nothing after it was touched.
        _sequence.SetValue(sequence - 1);
        _ring.Sequencer.SignalProgress(_sequence);
    }
}
