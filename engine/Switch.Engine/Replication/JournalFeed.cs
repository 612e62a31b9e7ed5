using Switch.Journal;

namespace Switch.Engine.Replication;

/// <summary>One read for a standby: <see cref="Records"/> journal frames (<see cref="JournalFrames"/>: back to back, each
/// saying its length, number and checksum) from record <see cref="FirstRecordNo"/>, sent under <see cref="Term"/>.
/// <see cref="Frames"/> is the feed's buffer: valid until its next read. <see cref="CommittedRecords"/>: the primary's
/// journal held that many records durable as the read began (a batch that reaches it has caught the standby up).</summary>
public readonly record struct ReplicationBatch(long Term, long FirstRecordNo, int Records, ReadOnlyMemory<byte> Frames, long CommittedRecords = 0)
{
    public long NextRecordNo => FirstRecordNo + Records;
}

/// <summary>
/// The primary's journal as a standby reads it: committed records from the record the standby asked for on, in batches
/// of at most <see cref="ReplicationOptions.MaxBatchBytes"/>, waiting (asynchronously, cancellable) at the end for the
/// next commit. Keeps its cursor (record number and address): it locates its first record once and never scans the
/// history again. Copies records out beside the writer (never holds it). One reader at a time (a transport's stream).
/// </summary>
public sealed class JournalFeed
{
    private readonly EventJournal _journal;
    private readonly Func<long> _term;
    private readonly Action<JournalCursor> _reached;
    private readonly byte[] _buffer;
    private readonly int _maxBatchBytes;
    private JournalCursor _cursor;

    internal JournalFeed(EventJournal journal, JournalCursor from, int maxBatchBytes, int maxRecordBytes, Func<long> term, Action<JournalCursor> reached)
    {
        _journal = journal;
        _cursor = from;
        _maxBatchBytes = maxBatchBytes;
        _buffer = new byte[Math.Max(maxBatchBytes, JournalFrames.HeaderBytes + maxRecordBytes)];
        _term = term;
        _reached = reached;
    }

    /// <summary>The next record this feed will read.</summary>
    public long NextRecordNo => _cursor.RecordNo;

    /// <summary>The next batch: at once when committed records wait, else after the next commit. Throws
    /// <see cref="ReplicationRefusedException"/> (REPLICA_TOO_FAR_BEHIND) once the records were retired to the journal's
    /// archive, <see cref="ObjectDisposedException"/> once the journal closed.</summary>
    public async ValueTask<ReplicationBatch> ReadAsync(CancellationToken cancel)
    {
        while (true)
        {
            cancel.ThrowIfCancellationRequested();
            if (TryRead(out ReplicationBatch batch)) return batch;
            await _journal.WaitForDurableAsync(_cursor.RecordNo + 1, cancel).ConfigureAwait(false);
        }
    }

    /// <summary>The committed records there are now, without waiting; false when there is none.</summary>
    public bool TryRead(out ReplicationBatch batch)
    {
        long term = _term(); // before the read: a term record in the batch is never newer than the term it is sent under
        long first = _cursor.RecordNo;
        long committed = _journal.DurableRecordCount; // before the read: the read returns at least these (unless the batch is full)
        int bytes;
        int records;
        try
        {
            bytes = _journal.ReadFrames(ref _cursor, _buffer, _maxBatchBytes, out records);
        }
        catch (JournalRecordsRetiredException e)
        {
            throw TooFarBehind(e);
        }
        batch = new ReplicationBatch(term, first, records, _buffer.AsMemory(0, bytes), committed);
        if (records == 0) return false;
        _reached(_cursor);
        return true;
    }

    internal static ReplicationRefusedException TooFarBehind(JournalRecordsRetiredException e) =>
        new(ReplicationRefusal.ReplicaTooFarBehind, $"record {e.RecordNo} was retired to the journal's archive (the live journal begins at record " +
            $"{e.FirstLiveRecordNo}): the standby must join from a snapshot");
}
