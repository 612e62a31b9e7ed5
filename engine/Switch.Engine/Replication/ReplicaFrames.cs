using Switch.Journal;

namespace Switch.Engine.Replication;

/// <summary>
/// A following engine's record of what each ring slot must become in its journal: the record number and the frame
/// checksum the primary's record had. Written by ApplyReplicated before it publishes the slot, read by the journaler
/// after (the ring orders them); the journaler checks the record it encodes against it before appending, so a standby
/// that would journal other bytes than its primary stops instead (determinism checked, not assumed).
/// </summary>
internal sealed class ReplicaFrames(int ringSize, Action<long>? durable)
{
    private readonly Pipeline.SlotTable<(long RecordNo, uint Checksum)> _expected = new(ringSize);

    public void Expect(long sequence, long recordNo, uint checksum) => _expected[sequence] = (recordNo, checksum);

    /// <summary>The journaler, before it appends the slot's record as <paramref name="recordNo"/>.</summary>
    public void Check(long sequence, long recordNo, ReadOnlySpan<byte> payload)
    {
        (long expectedNo, uint expectedChecksum) = _expected[sequence];
        if (expectedNo != recordNo)
            throw new ReplicationRefusedException(ReplicationRefusal.RecordMismatch, $"the primary's record {expectedNo} would be journaled here as record {recordNo}");
        uint checksum = JournalFrames.ChecksumOf(recordNo, payload);
        if (checksum != expectedChecksum)
            throw new ReplicationRefusedException(ReplicationRefusal.RecordMismatch,
                $"record {recordNo} re-encoded here has checksum 0x{checksum:X8}, the primary's 0x{expectedChecksum:X8}: the event did not survive decode and encode unchanged");
    }

    /// <summary>After each local commit: the durable record count goes back to the primary as the acknowledgement.</summary>
    public void Committed(long durableRecordCount) => durable?.Invoke(durableRecordCount);
}
