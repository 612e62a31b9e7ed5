namespace Switch.Engine.Replication;

/// <summary>Why replication refused something; the message starts with the code (upper snake case).</summary>
public enum ReplicationRefusal
{
    /// <summary>The sender's term is older than the newest this node journaled or accepted.</summary>
    TermStale,
    /// <summary>The batch begins after the next record this node expects: records are missing.</summary>
    RecordGap,
    /// <summary>The batch begins before the next record this node expects: it holds (or was sent) those already.</summary>
    RecordOverlap,
    /// <summary>A frame fails its checks (length, format, checksum, numbering) or its event does not decode.</summary>
    RecordCorrupt,
    /// <summary>Records that cannot follow this node's journal (a genesis past record 0, a term out of order or above the
    /// sender's), or the record this node journaled differs from the one received.</summary>
    RecordMismatch,
    /// <summary>The engine is not following (not started by Follow, or promoted).</summary>
    NotFollowing,
    /// <summary>The engine follows a primary: it takes no inputs of its own.</summary>
    NotPrimary,
    /// <summary>The engine is fenced: it takes nothing more.</summary>
    Fenced,
    /// <summary>The records a standby needs were retired to the journal's archive: it must join from a snapshot.</summary>
    ReplicaTooFarBehind,
    /// <summary>The standby's journal is not a prefix of the primary's and no cut makes it one: rebuild the standby.</summary>
    ReplicaDiverged,
    /// <summary>The standby acknowledged records the primary has not journaled.</summary>
    ReplicaAhead,
    /// <summary>The standby's journal began with another configuration than the primary's.</summary>
    GenesisMismatch,
}

public sealed class ReplicationRefusedException(ReplicationRefusal refusal, string detail, long expectedRecordNo = -1)
    : Exception($"{Code(refusal)}: {detail}")
{
    public ReplicationRefusal Refusal { get; } = refusal;
    /// <summary>RecordGap, RecordOverlap: the record number the batch should have begun with; else -1.</summary>
    public long ExpectedRecordNo { get; } = expectedRecordNo;
    public string CodeText => Code(Refusal);

    public static string Code(ReplicationRefusal refusal) => refusal switch
    {
        ReplicationRefusal.TermStale => "TERM_STALE",
        ReplicationRefusal.RecordGap => "RECORD_GAP",
        ReplicationRefusal.RecordOverlap => "RECORD_OVERLAP",
        ReplicationRefusal.RecordCorrupt => "RECORD_CORRUPT",
        ReplicationRefusal.RecordMismatch => "RECORD_MISMATCH",
        ReplicationRefusal.NotFollowing => "NOT_FOLLOWING",
        ReplicationRefusal.NotPrimary => "NOT_PRIMARY",
        ReplicationRefusal.Fenced => "FENCED",
        ReplicationRefusal.ReplicaTooFarBehind => "REPLICA_TOO_FAR_BEHIND",
        ReplicationRefusal.ReplicaDiverged => "REPLICA_DIVERGED",
        ReplicationRefusal.ReplicaAhead => "REPLICA_AHEAD",
        ReplicationRefusal.GenesisMismatch => "GENESIS_MISMATCH",
        _ => throw new ArgumentOutOfRangeException(nameof(refusal)),
    };
}

/// <summary>The engine stopped (disposed) while the replication gate held a batch: it was journaled, never applied.</summary>
public sealed class ReplicationStoppedException() : Exception("REPLICATION_STOPPED: the engine stopped while a batch waited at the replication gate");
