namespace Switch.Journal;

/// <summary>
/// A torn tail Replay cut off: the records from <see cref="Address"/> to <see cref="ResumeAddress"/>
/// (<see cref="ByteCount"/> bytes of committed log) failed verification and no valid record followed them.
/// </summary>
public sealed record JournalTailCut(
    long Address, long ResumeAddress, long ByteCount, long RecordsBefore, JournalCorruptionReason Reason, string Detail);
