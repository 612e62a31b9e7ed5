namespace Switch.Ring;

/// <summary>
/// What one consumer waits on: the ring's published events and, for a consumer behind others,
/// the sequences of those consumers (it never passes the slowest of them).
/// </summary>
/// <remarks>One barrier serves one processor: its alert is that processor's halt.</remarks>
public sealed class SequenceBarrier
{
    private readonly Sequencer _ring;
    private readonly IWaitStrategy _waitStrategy;
    private readonly Sequence[] _dependentSequences;
    private volatile bool _alerted;
    private object? _owner;

    internal SequenceBarrier(Sequencer ring, IWaitStrategy waitStrategy, Sequence[] dependentSequences)
    {
        _ring = ring;
        _waitStrategy = waitStrategy;
        _dependentSequences = dependentSequences;
    }

    /// <summary>The ring's cursor (see <see cref="RingBuffer{T}.Cursor"/>).</summary>
    public long Cursor => _ring.CursorValue;

    /// <summary>True once <see cref="Alert"/> was called.</summary>
    public bool IsAlerted => _alerted;

    /// <summary>
    /// Waits until <paramref name="sequence"/> can be read and returns the highest sequence that
    /// can be read now (at least <paramref name="sequence"/>), or a lower value if the barrier was alerted.
    /// </summary>
    /// <exception cref="RingHaltedException">The ring is or becomes halted.</exception>
    public long WaitFor(long sequence)
    {
        // Checked first so a halted ring stops consumers even when events are still available.
        _ring.ThrowIfHalted();
        long available = HighestAvailable(sequence);
        if (available >= sequence)
        {
            return available;
        }
        return _waitStrategy.WaitFor(sequence, this);
    }

    /// <summary>
    /// The highest sequence this consumer may read now, starting from <paramref name="sequence"/>,
    /// without waiting; less than <paramref name="sequence"/> if that one is not yet available.
    /// </summary>
    public long HighestAvailable(long sequence)
    {
        Sequence[] dependents = _dependentSequences;
        if (dependents.Length == 0)
        {
            long cursor = _ring.CursorValue;
            if (cursor < sequence)
            {
                return cursor;
            }
            // With many producers the cursor is the claim: find what is actually published.
            return _ring.HighestPublished(sequence, cursor);
        }

        // Upstream consumers only ever pass published events, so their minimum needs no scan.
        long minimum = dependents[0].Value;
        for (int i = 1; i < dependents.Length; i++)
        {
            long value = dependents[i].Value;
            if (value < minimum)
            {
                minimum = value;
            }
        }
        return minimum;
    }

    /// <summary>
    /// For wait strategies, on each turn that found nothing: throws <see cref="RingHaltedException"/>
    /// if the ring is halted; returns true if the barrier was alerted and the wait should return.
    /// </summary>
    public bool ShouldStopWaiting()
    {
        _ring.ThrowIfHalted();
        return _alerted;
    }

    /// <summary>Makes the current and every later wait on this barrier return early (used to halt its processor).</summary>
    public void Alert()
    {
        _alerted = true;
        _waitStrategy.Signal();
    }

    internal bool TryClaimOwnership(object owner) =>
        Interlocked.CompareExchange(ref _owner, owner, null) is null;
}
