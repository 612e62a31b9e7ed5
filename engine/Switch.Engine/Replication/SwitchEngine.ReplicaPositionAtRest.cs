using Switch.Engine.Replication;
using Switch.Journal;

namespace Switch.Engine.Pipeline;

public sealed partial class SwitchEngine
{
    /// <summary>
    /// Before a start (no engine on the directory): where the journal ends, read from the journal alone (no state is
    /// rebuilt), for a standby's handshake before it recovers: a tail to cut must be cut before the replay applies it.
    /// An empty or missing journal is (0, 0).
    /// </summary>
    public static ReplicaPosition ReadReplicaPosition(EngineOptions options)
    {
        if (!Directory.Exists(Path.Combine(options.DataDirectory, "journal"))) return new ReplicaPosition(0, 0);
        using EventJournal journal = OpenJournal(options.DataDirectory, options.JournalSegmentBytes);
        journal.Replay(new CountingVisitor());
        long count = journal.DurableRecordCount;
        return count == 0 ? new ReplicaPosition(0, 0) : new ReplicaPosition(count, ChecksumAt(journal, count - 1, hint: null));
    }
}
