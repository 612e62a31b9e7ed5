namespace Switch.Ring;

/// <summary>Handles events of a <see cref="RingBuffer{T}"/> for a <see cref="BatchEventProcessor{T, THandler}"/>.</summary>
public interface IEventHandler<T> where T : struct
{
    /// <summary>
    /// Handles one event, in sequence order. The slot is the ring's own memory: read it here,
    /// do not keep the reference. <paramref name="endOfBatch"/> is true on the last event of the
    /// batch (the place to flush or commit once for the whole batch). Throwing halts the ring.
    /// </summary>
    void OnEvent(ref T evt, long sequence, bool endOfBatch);

    /// <summary>
    /// Before a batch's first <see cref="OnEvent"/>: the batch is <paramref name="firstSequence"/> to
    /// <paramref name="lastSequence"/>, all published, so a handler may read ahead in it (to start its cache misses
    /// early). Throwing halts the ring.
    /// </summary>
    void OnBatchStart(long firstSequence, long lastSequence) { }
}
