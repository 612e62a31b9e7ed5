namespace Switch.Journal;

/// <summary>Receives the journal's records during Replay, in log order.</summary>
public interface IJournalVisitor
{
    /// <summary>
    /// One verified record. <paramref name="record"/> points into the log's buffers and is valid only during the
    /// call: copy what must outlive it. The visitor must not call back into the journal.
    /// </summary>
    void OnRecord(long address, ReadOnlySpan<byte> record);
}
