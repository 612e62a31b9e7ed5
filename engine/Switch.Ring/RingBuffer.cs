using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Switch.Ring;

/// <summary>
/// A bounded ring of pre-allocated struct slots on the LMAX Disruptor design. Producers claim
/// sequences (<see cref="Next()"/>), fill the slots in place (<c>ring[sequence]</c>) and publish
/// them; consumers follow behind through <see cref="SequenceBarrier"/>s. The ring never grows:
/// a producer that would lap the slowest gating consumer waits (<see cref="Next()"/>) or fails
/// (<see cref="TryNext(out long)"/>).
/// </summary>
public sealed class RingBuffer<T> where T : struct
{
    // Empty slots on both sides of the real ones keep the first and last slots off cache lines
    // shared with the array header or a neighbouring object.
    private static readonly int s_paddingSlots = Math.Max(1, 128 / Math.Max(1, Unsafe.SizeOf<T>()));

    private readonly T[] _slots;
    private readonly long _indexMask;
    private readonly Sequencer _sequencer;

    private RingBuffer(int bufferSize, IWaitStrategy waitStrategy, bool multiProducer)
    {
        _sequencer = new Sequencer(bufferSize, waitStrategy, multiProducer);
        _indexMask = bufferSize - 1;
        _slots = new T[bufferSize + 2 * s_paddingSlots];
    }

    /// <summary>A ring any number of threads may claim and publish on (claims are a CAS).</summary>
    public static RingBuffer<T> CreateMultiProducer(int bufferSize, IWaitStrategy waitStrategy) =>
        new(bufferSize, waitStrategy, multiProducer: true);

    /// <summary>A ring only one thread ever claims and publishes on: no CAS, cheaper.</summary>
    public static RingBuffer<T> CreateSingleProducer(int bufferSize, IWaitStrategy waitStrategy) =>
        new(bufferSize, waitStrategy, multiProducer: false);

    /// <summary>The number of slots, a power of two.</summary>
    public int BufferSize => _sequencer.BufferSize;

    /// <summary>True if made by <see cref="CreateMultiProducer"/>.</summary>
    public bool IsMultiProducer => _sequencer.IsMultiProducer;

    /// <summary>
    /// The slot for <paramref name="sequence"/>, in place. A producer writes it between claim and
    /// publish; a consumer reads it once its barrier says the sequence is available.
    /// </summary>
    public ref T this[long sequence]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_slots), (nint)(sequence & _indexMask) + s_paddingSlots);
    }

    /// <summary>Claims the next sequence, waiting while the ring is full.</summary>
    /// <exception cref="RingHaltedException">The ring is or becomes halted.</exception>
    public long Next() => _sequencer.Next(1);

    /// <summary>
    /// Claims the next <paramref name="n"/> sequences (1 to <see cref="BufferSize"/>), waiting while
    /// the ring is full, and returns the highest; the lowest is that minus n - 1.
    /// </summary>
    /// <exception cref="RingHaltedException">The ring is or becomes halted.</exception>
    public long Next(int n) => _sequencer.Next(n);

    /// <summary>Claims the next sequence, or returns false at once if the ring is full.</summary>
    /// <exception cref="RingHaltedException">The ring is halted.</exception>
    public bool TryNext(out long sequence) => _sequencer.TryNext(1, out sequence);

    /// <summary>Claims the next <paramref name="n"/> sequences, or returns false at once if they do not fit.</summary>
    /// <exception cref="RingHaltedException">The ring is halted.</exception>
    public bool TryNext(int n, out long highSequence) => _sequencer.TryNext(n, out highSequence);

    /// <summary>Makes a claimed sequence visible to consumers and wakes any that sleep.</summary>
    public void Publish(long sequence) => _sequencer.Publish(sequence, sequence, signal: true);

    /// <summary>
    /// Makes the claimed sequences <paramref name="lo"/> to <paramref name="hi"/> (inclusive) visible to consumers and
    /// wakes any that sleep: one signal for the whole range.
    /// </summary>
    public void Publish(long lo, long hi) => _sequencer.Publish(lo, hi, signal: true);

    /// <summary>
    /// Makes the claimed sequences <paramref name="lo"/> to <paramref name="hi"/> visible to consumers that are awake
    /// or look, without waking one that sleeps on a blocking strategy: for a producer that publishes many events in a
    /// turn and signals once at its end with <see cref="SignalConsumers"/> (each signal that finds a consumer asleep
    /// costs a lock, a futex wake and the consumer's context switch). The producer must signal before it stops to wait
    /// for anything else; a claim that finds the ring full signals by itself, so deferral cannot stall the ring.
    /// </summary>
    public void PublishDeferred(long lo, long hi) => _sequencer.Publish(lo, hi, signal: false);

    /// <summary>Wakes consumers sleeping on the ring (after <see cref="PublishDeferred"/>); one fence when none sleeps.</summary>
    public void SignalConsumers() => _sequencer.SignalPublished();

    /// <summary>
    /// Single producer: the highest published sequence. Many producers: the highest claimed one
    /// (published or not; consumers learn what is published through their barrier).
    /// </summary>
    public long Cursor => _sequencer.CursorValue;

    /// <summary>
    /// A barrier for one consumer. With no <paramref name="dependentSequences"/> it follows the
    /// ring's published events; otherwise it never passes the slowest of those consumers'
    /// sequences (which must be sequences of consumers of this ring).
    /// </summary>
    public SequenceBarrier NewBarrier(params Sequence[] dependentSequences)
    {
        ArgumentNullException.ThrowIfNull(dependentSequences);
        foreach (Sequence sequence in dependentSequences)
        {
            ArgumentNullException.ThrowIfNull(sequence, nameof(dependentSequences));
        }
        Sequence[] followed = (Sequence[])dependentSequences.Clone();
        _sequencer.AddProgressWaiter(_sequencer.WaitStrategy, followed);
        return new SequenceBarrier(_sequencer, _sequencer.WaitStrategy, followed);
    }

    /// <summary>
    /// A barrier for a consumer behind other consumers that sleeps on its own <paramref name="waitStrategy"/>: woken
    /// by consumers' progress, an alert or a halt, but not by every publish. With one shared strategy each publish
    /// while such a consumer sleeps wakes it only to find its upstream consumer has not moved (on the switch's
    /// input ring: the logic thread, woken by every request while the journaler is inside an fsync).
    /// </summary>
    public SequenceBarrier NewBarrier(IWaitStrategy waitStrategy, params Sequence[] dependentSequences)
    {
        ArgumentNullException.ThrowIfNull(waitStrategy);
        ArgumentNullException.ThrowIfNull(dependentSequences);
        if (dependentSequences.Length == 0)
        {
            throw new ArgumentException("A barrier with its own wait strategy must follow other consumers: publishes do not signal it.", nameof(dependentSequences));
        }
        foreach (Sequence sequence in dependentSequences)
        {
            ArgumentNullException.ThrowIfNull(sequence, nameof(dependentSequences));
        }
        Sequence[] followed = (Sequence[])dependentSequences.Clone();
        _sequencer.AddProgressWaiter(waitStrategy, followed);
        return new SequenceBarrier(_sequencer, waitStrategy, followed);
    }

    /// <summary>
    /// Adds consumers the producers must never lap (normally the last consumer of each chain).
    /// Add them before producers start; a sequence already a whole ring behind is rejected.
    /// </summary>
    public void AddGatingSequences(params Sequence[] sequences) => _sequencer.AddGatingSequences(sequences);

    /// <summary>
    /// Poisons the ring: every waiting and every later claim or barrier wait throws
    /// <see cref="RingHaltedException"/> carrying <paramref name="reason"/> (the first reason given wins).
    /// </summary>
    public void Halt(Exception reason) => _sequencer.Halt(reason);

    /// <summary>True once <see cref="Halt"/> was called.</summary>
    public bool IsHalted => _sequencer.IsHalted;

    /// <summary>The reason given to the first <see cref="Halt"/>, or null.</summary>
    public Exception? HaltReason => _sequencer.HaltReason;

    internal Sequencer Sequencer => _sequencer;
}
