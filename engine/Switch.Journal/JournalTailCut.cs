namespace Switch.Journal;

/// <summary>
/// A torn tail Replay cut off: the records from <see cref="Address"/> to <see cref="ResumeAddress"/>
/// (<see cref="ByteCount"/> bytes of committed log) failed verification and no valid record followed them. Or one
/// Open found after the newest commit slot (a record begun and not whole where reading on stopped): its bytes and
/// everything after them are cut off the files (<see cref="ByteCount"/>), and appends resume at <see cref="Address"/>.
/// </summary>
public sealed record JournalTailCut(
    long Address, long ResumeAddress, long ByteCount, long RecordsBefore, JournalCorruptionReason Reason, string Detail);
