using Switch.Engine.Events;

namespace Switch.Engine.Clearing;

/// <summary>
/// Builds <see cref="ClosedBatch"/> objects from the logic's outputs: the BatchPosition outputs of a batch, then its
/// BatchClosed marker. Used by whatever consumes outputs (the clearing recorder, tests). Not thread-safe: one consumer.
/// </summary>
public sealed class ClosedBatchAssembler
{
    private readonly List<ParticipantPosition> _pending = new();
    private long _pendingBatchId;

    /// <summary>Positions of a batch whose BatchClosed marker has not come yet.</summary>
    public bool Pending => _pending.Count > 0;

    /// <summary>Feeds one output; returns the batch when <paramref name="o"/> is its BatchClosed marker.</summary>
    public ClosedBatch? Add(in OutputEvent o)
    {
        switch (o.Kind)
        {
            case OutputKind.BatchPosition:
                if (_pending.Count > 0 && _pendingBatchId != o.BatchId)
                {
                    throw new InvalidOperationException($"closed batch: position of batch {o.BatchId} amid batch {_pendingBatchId}");
                }
                _pendingBatchId = o.BatchId;
                _pending.Add(new ParticipantPosition(o.Participant, ClosedBatch.IdOf(o), o.DebitsFen, o.CreditsFen, o.FeeFen, o.NetFen, o.Count));
                return null;
            case OutputKind.BatchClosed:
                if (_pending.Count != o.ParticipantCount || (_pending.Count > 0 && _pendingBatchId != o.BatchId))
                {
                    throw new InvalidOperationException($"closed batch: {o.BatchId} announced {o.ParticipantCount} positions, got {_pending.Count}");
                }
                var batch = new ClosedBatch(o.BatchId, o.BatchOpenedUs, o.BatchClosedUs, o.Reason.ToString(), o.Count, _pending.ToArray());
                _pending.Clear();
                return batch;
            default:
                return null;
        }
    }
}
