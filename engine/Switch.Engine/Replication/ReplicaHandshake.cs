namespace Switch.Engine.Replication;

/// <summary>Where a standby's journal ends: its record count and the checksum of its last record's frame (which covers
/// the record's number and bytes).</summary>
public readonly record struct ReplicaPosition(long RecordCount, uint LastRecordChecksum);

public enum HandshakeVerdict
{
    /// <summary>The standby's journal is a prefix of the primary's: stream from <see cref="HandshakeAnswer.RecordNo"/>.</summary>
    Resume,
    /// <summary>The standby holds a tail the primary never had: it keeps its first <see cref="HandshakeAnswer.RecordNo"/>
    /// records, provided the last of them has <see cref="HandshakeAnswer.Checksum"/> (<see cref="Pipeline.SwitchEngine.TruncateJournal"/>),
    /// then asks again.</summary>
    Truncate,
    /// <summary>The records the standby needs were retired here: it joins from a snapshot.</summary>
    TooFarBehind,
    /// <summary>No cut makes the standby's journal a prefix of the primary's: rebuild it.</summary>
    Diverged,
}

/// <summary>
/// The primary's answer to a standby's <see cref="ReplicaPosition"/>. The rule (the smallest sound one for one primary
/// per term, terms only growing, and a primary's term record journaled after every record it held when it took office):
/// <list type="number">
/// <item>The standby's last record equals the primary's record of that number: its journal is a prefix; resume after it.</item>
/// <item>Else, if the primary's newest term began at record t within the standby's journal (for a primary promoted in
/// this life, t is where the promotion began: a record of its own, a tick or a bank's reachability, may come before its
/// term record): every record before t
/// came to the primary from the primary before it, as it came to the standby, so a standby whose record t-1 equals
/// the primary's keeps records 0..t-1 and cuts the rest (a tail that old primary journaled and the new one never had:
/// in synchronous mode, one nothing was acknowledged for).</item>
/// <item>Else it diverged (or lags across more than one term change with a tail of its own): rebuilt from a snapshot.</item>
/// </list>
/// </summary>
public readonly record struct HandshakeAnswer(HandshakeVerdict Verdict, long RecordNo, uint Checksum, string Detail)
{
    public static HandshakeAnswer Decide(ReplicaPosition standby, long primaryDurableRecords, long primaryTermStartRecordNo, Func<long, uint> primaryChecksumAt)
    {
        long n = standby.RecordCount;
        if (n < 1) return new(HandshakeVerdict.Diverged, 0, 0, "the standby's journal holds no genesis record");
        if (n <= primaryDurableRecords && primaryChecksumAt(n - 1) == standby.LastRecordChecksum)
            return new(HandshakeVerdict.Resume, n, 0, $"the standby's {n} records are the primary's");
        long t = primaryTermStartRecordNo;
        if (t >= 1 && t <= n && t <= primaryDurableRecords)
            return new(HandshakeVerdict.Truncate, t, primaryChecksumAt(t - 1),
                $"the standby's records from {t} on ({n - t}) are not the primary's, whose term began at record {t}: cut them");
        return new(HandshakeVerdict.Diverged, 0, 0,
            $"the standby's record {n - 1} is not the primary's ({primaryDurableRecords} durable records, its term began at record {t}): rebuild the standby");
    }
}

/// <summary>What <see cref="Pipeline.SwitchEngine.Promote"/> found: where the new primary's callers' correlation ids
/// begin (above <paramref name="LastCorrelationId"/>), the term it held, and the transactions whose outcome it resolves
/// by asking the banks on ticks, as after a recovery.</summary>
public sealed record PromotionReport(long JournalRecords, long Term, long LastCorrelationId, long Unresolved);
