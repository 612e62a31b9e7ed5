using System.Collections.Concurrent;
using Switch.Engine.Business;
using Switch.Engine.Clearing;
using Switch.Engine.Events;
using Switch.Engine.Snapshots;
using Switch.Engine.Logging;
using Switch.Journal;
using Microsoft.Win32.SafeHandles;

namespace Switch.Clearing;

/// <summary>What operators list about a closed batch (the positions are in its settlement file).</summary>
public sealed record BatchSummary(long BatchId, long OpenedUs, long ClosedUs, string ClosedBy, long TransactionCount);

/// <summary>
/// Keeps what clearing needs from the logic's outputs, off the writer thread: each final outcome appended to its
/// batch's records.bin (128 bytes on disk, nothing kept in memory), and at each close the batch's files generated on
/// a worker thread from those records. Like the outcome feeds it is a view derived from the journal: feed it the
/// outputs replayed at start (a batch's records file is rewritten from its first replayed outcome), so a crash at
/// any point, between a close and its files too, ends with the same files. Batches whose files are complete are
/// skipped on replay. One caller at a time (the replay, then the output thread). The records file's dirty pages are
/// written back as it grows (<see cref="WriteBehind"/>), not left for the kernel's burst.
/// </summary>
public sealed class ClearingRecorder : IDisposable
{
    /// <summary>Closed batches waiting for their files; a full queue makes the output thread wait (back pressure).</summary>
    public const int MaxQueuedBatches = 16;
    /// <summary>Closed batches remembered for listing (two closes a day: more than five years); older ones are on disk.</summary>
    public const int MaxRememberedBatches = 4096;

    private readonly string _dataDirectory;
    private readonly ClosedBatchAssembler _assembler = new();
    private readonly BlockingCollection<(ClosedBatch Batch, FileStream? Records)> _queue = new(MaxQueuedBatches);
    private readonly Thread _worker;
    private readonly byte[] _record = new byte[BatchRecord.Bytes];
    /// <summary>The records file's buffer: the file holds in the kernel all but at most this much of what was appended.</summary>
    private const int RecordsBufferBytes = 1 << 16;
    private readonly WriteBehind _writeBehind;
    private FileStream? _records;
    private SafeFileHandle? _recordsHandle;
    /// <summary>The records file's bytes whose writeback was started (<see cref="WriteBehind"/>).</summary>
    private long _recordsStartedBytes;
    private long _recordsBatchId;
    private bool _recordsSkipped;
    private long _generatedThrough;
    private long _generatedCount;
    private Exception? _fault;
    // Written by the recording thread, read by operators: guarded by the queue's own lock.
    private readonly Queue<BatchSummary> _closed = new();
    private long _lastClosedBatchId;

    /// <summary>How long a complete batch's records.bin (128 bytes per transaction, the working copy the files were
    /// made from) is kept after a later close: 7 days of event time. The reconciliation and settlement files, the
    /// business record, are never deleted here; a pruned batch's records can be rebuilt from the journal.</summary>
    public const long DefaultRecordsRetentionUs = 7L * 24 * 3600 * 1_000_000;

    private readonly long _recordsRetentionUs;
    private readonly IEventLog _log;
    private long _prunedThrough;

    /// <param name="recordsRetentionUs">See <see cref="DefaultRecordsRetentionUs"/>; measured between batch closes (event time, not the wall clock).</param>
    /// <param name="log">Where an alert goes when file generation fails: the host's log.</param>
    /// <param name="writeBehind">Starts the writeback of what the records file is appended; null: none (<see cref="WriteBehind.Off"/>).</param>
    public ClearingRecorder(string dataDirectory, IEventLog log, long recordsRetentionUs = DefaultRecordsRetentionUs, WriteBehind? writeBehind = null)
    {
        _writeBehind = writeBehind ?? WriteBehind.Off;
        ArgumentOutOfRangeException.ThrowIfNegative(recordsRetentionUs);
        _recordsRetentionUs = recordsRetentionUs;
        _log = log;
        _dataDirectory = dataDirectory;
        DirectorySync.CreateDirectory(Path.Combine(dataDirectory, "clearing"));
        _worker = new Thread(Generate) { Name = "switch-clearing", IsBackground = true };
        _worker.Start();
    }

    /// <summary>The highest batch whose files this recorder generated or found complete.</summary>
    public long GeneratedThrough => Interlocked.Read(ref _generatedThrough);
    /// <summary>Batches this process generated files for (not those found complete).</summary>
    public long GeneratedCount => Interlocked.Read(ref _generatedCount);
    /// <summary>Why file generation stopped, if it did (the batch's files are then missing: operators must look).</summary>
    public Exception? Fault => Volatile.Read(ref _fault);

    /// <summary>The last batch closed (0: none yet); the open batch is the next one.</summary>
    public long LastClosedBatchId => Interlocked.Read(ref _lastClosedBatchId);

    /// <summary>Up to <paramref name="limit"/> closed batches, newest first (at most <see cref="MaxRememberedBatches"/>).</summary>
    public List<BatchSummary> RecentBatches(int limit)
    {
        if (limit <= 0) throw new ArgumentOutOfRangeException(nameof(limit));
        lock (_closed)
        {
            var newestFirst = new List<BatchSummary>(Math.Min(limit, _closed.Count));
            // The queue is oldest first: skip to the newest `limit`, then reverse.
            foreach (BatchSummary b in _closed.Skip(Math.Max(0, _closed.Count - limit))) newestFirst.Add(b);
            newestFirst.Reverse();
            return newestFirst;
        }
    }

    public void Record(in OutputEvent o)
    {
        switch (o.Kind)
        {
            case OutputKind.Feed:
                Append(in o);
                break;
            case OutputKind.BatchPosition:
            case OutputKind.BatchClosed:
                ClosedBatch? batch = _assembler.Add(in o);
                if (batch is not null) Closed(batch);
                break;
        }
    }

    private void Append(in OutputEvent feed)
    {
        if (feed.BatchId < _recordsBatchId) throw new InvalidOperationException($"clearing recorder: outcome of batch {feed.BatchId} after batch {_recordsBatchId}");
        if (feed.BatchId != _recordsBatchId)
        {
            CloseRecords();
            _recordsBatchId = feed.BatchId;
            _recordsSkipped = ClearingFiles.IsComplete(_dataDirectory, feed.BatchId);
            if (!_recordsSkipped)
            {
                // Create, not append: the journal replays the batch from its first outcome, so what was there is redone
                // (and a power cut may take it: not made durable until the batch closes, see BatchFileGenerator.Generate).
                string dir = ClearingFiles.BatchDirectory(_dataDirectory, feed.BatchId);
                Directory.CreateDirectory(dir);
                UseRecords(new FileStream(Path.Combine(dir, ClearingFiles.RecordsFile), FileMode.Create, FileAccess.Write, FileShare.Read, RecordsBufferBytes));
            }
        }
        if (_recordsSkipped) return;
        BatchRecord.Write(in feed, _record);
        _records!.Write(_record);
        _writeBehind.Appended(_recordsHandle!, ref _recordsStartedBytes, _records.Position - RecordsBufferBytes);
    }

    /// <summary>Appends go to <paramref name="records"/> from its end on; its writeback is started from the page that holds its end.</summary>
    private void UseRecords(FileStream records)
    {
        _records = records;
        _recordsHandle = records.SafeFileHandle; // once, while nothing is buffered: the getter flushes
        _recordsStartedBytes = records.Position & ~(DirectFile.AlignBytes - 1L);
    }

    private void Closed(ClosedBatch batch)
    {
        if (batch.BatchId <= LastClosedBatchId) throw new InvalidOperationException($"clearing recorder: batch {batch.BatchId} closed after batch {LastClosedBatchId}");
        lock (_closed)
        {
            if (_closed.Count == MaxRememberedBatches) _closed.Dequeue();
            _closed.Enqueue(new BatchSummary(batch.BatchId, batch.OpenedUs, batch.ClosedUs, batch.ClosedBy, batch.TransactionCount));
        }
        Interlocked.Exchange(ref _lastClosedBatchId, batch.BatchId);
        if (ClearingFiles.IsComplete(_dataDirectory, batch.BatchId))
        {
            CloseRecords();
            Advance(batch.BatchId);
            return;
        }
        // The worker syncs the records file to disk: no fsync on the output thread.
        FileStream? records = null;
        if (_recordsBatchId == batch.BatchId)
        {
            records = _records;
            _records = null;
        }
        _queue.Add((batch, records));
    }

    private void CloseRecords()
    {
        if (_records is null) return;
        _records.Flush(flushToDisk: true);
        _records.Dispose();
        _records = null;
    }

    private void Advance(long batchId)
    {
        long seen;
        while ((seen = Interlocked.Read(ref _generatedThrough)) < batchId && Interlocked.CompareExchange(ref _generatedThrough, batchId, seen) != seen) { }
    }

    private void Generate()
    {
        foreach ((ClosedBatch batch, FileStream? records) in _queue.GetConsumingEnumerable())
        {
            try
            {
                if (records is not null)
                {
                    records.Flush(flushToDisk: true);
                    records.Dispose();
                }
                else
                {
                    // No outcome in the batch: an empty records file, so generation sees zero transactions, not a missing file.
                    string dir = ClearingFiles.BatchDirectory(_dataDirectory, batch.BatchId);
                    Directory.CreateDirectory(dir);
                    using var empty = new FileStream(Path.Combine(dir, ClearingFiles.RecordsFile), FileMode.Create, FileAccess.Write);
                    empty.Flush(flushToDisk: true);
                }
                if (Fault is not null) continue; // batches after a failed one wait for the operators (and a restart)
                BatchFileGenerator.Generate(_dataDirectory, batch);
                Interlocked.Increment(ref _generatedCount);
                Advance(batch.BatchId);
                PruneRecords(batch.ClosedUs);
            }
            catch (Exception e)
            {
                if (Fault is null)
                {
                    _log.Write(LogSeverity.Alert, "clearing_files_failed",
                        "a batch's clearing files could not be written; file generation is stopped until the cause is fixed and the switch restarted",
                        ("batch", batch.BatchId), ("error", $"{e.GetType().Name}: {e.Message}"));
                }
                Volatile.Write(ref _fault, e);
            }
        }
    }

    /// <summary>Deletes records.bin of complete batches closed more than the retention before <paramref name="nowUs"/>
    /// (a close's time). Runs on the worker; batches are visited once, in order.</summary>
    private void PruneRecords(long nowUs)
    {
        foreach (BatchSummary b in RecentBatches(MaxRememberedBatches).AsEnumerable().Reverse())
        {
            if (b.BatchId <= _prunedThrough) continue;
            if (b.ClosedUs > nowUs - _recordsRetentionUs || !ClearingFiles.IsComplete(_dataDirectory, b.BatchId)) return;
            File.Delete(Path.Combine(ClearingFiles.BatchDirectory(_dataDirectory, b.BatchId), ClearingFiles.RecordsFile));
            _prunedThrough = b.BatchId;
        }
    }

    /// <summary>
    /// At a snapshot's mark (the recording thread): the closed batches remembered, the last one closed (its files must
    /// be complete before the snapshot is published: <see cref="WaitForFiles"/>, so no generation is left to resume),
    /// and the open batch's records file, flushed, with its length. Returns that file's path (to fsync before the
    /// snapshot is published), or null.
    /// </summary>
    public string? WriteMark(StateWriter w)
    {
        if (_assembler.Pending) throw new InvalidOperationException("clearing recorder: a snapshot mark amid a batch's positions");
        w.Section("clearing");
        w.Long(LastClosedBatchId);
        lock (_closed)
        {
            w.Int(_closed.Count);
            foreach (BatchSummary b in _closed)
            {
                w.Long(b.BatchId);
                w.Long(b.OpenedUs);
                w.Long(b.ClosedUs);
                w.String(b.ClosedBy);
                w.Long(b.TransactionCount);
            }
        }
        w.Long(_recordsBatchId);
        if (_records is null)
        {
            w.Long(-1);
            return null;
        }
        _records.Flush();
        w.Long(_records.Length);
        return _records.Name;
    }

    /// <summary>At a start from a snapshot, before the replay after it: what <see cref="WriteMark"/> wrote. The open
    /// batch's records file is cut back to its length then (the replay appends from there).</summary>
    public void RestoreMark(ref StateReader r)
    {
        r.Section("clearing");
        if (LastClosedBatchId != 0 || _recordsBatchId != 0) throw new InvalidOperationException("clearing recorder: restored after recording began");
        long lastClosed = r.Long();
        int count = r.Int();
        if (count < 0 || count > MaxRememberedBatches) throw new InvalidDataException($"snapshot views: {count} closed batches");
        lock (_closed)
        {
            for (int i = 0; i < count; i++)
            {
                var b = new BatchSummary(r.Long(), r.Long(), r.Long(), r.String(), r.Long());
                if (b.BatchId <= (_closed.Count == 0 ? 0 : _closed.Last().BatchId) || b.BatchId > lastClosed)
                    throw new InvalidDataException($"snapshot views: closed batch {b.BatchId} out of order");
                _closed.Enqueue(b);
                if (ClearingFiles.IsComplete(_dataDirectory, b.BatchId)) Advance(b.BatchId);
            }
        }
        if (lastClosed > 0 && !ClearingFiles.IsComplete(_dataDirectory, lastClosed))
        {
            throw new InvalidDataException($"clearing: the files of batch {lastClosed}, complete when the snapshot was taken, are not in " +
                $"{ClearingFiles.BatchDirectory(_dataDirectory, lastClosed)} now (an older snapshot or the whole journal rebuilds them)");
        }
        Interlocked.Exchange(ref _lastClosedBatchId, lastClosed);
        _recordsBatchId = r.Long();
        long length = r.Long();
        // No file open at the mark: the batch had closed (its outcomes are all in), or had none.
        _recordsSkipped = length < 0 || ClearingFiles.IsComplete(_dataDirectory, _recordsBatchId);
        if (_recordsSkipped) return;
        string path = Path.Combine(ClearingFiles.BatchDirectory(_dataDirectory, _recordsBatchId), ClearingFiles.RecordsFile);
        if (!File.Exists(path) || new FileInfo(path).Length < length)
        {
            throw new InvalidDataException($"clearing: {path} holds {(File.Exists(path) ? new FileInfo(path).Length : 0)} bytes, the snapshot's views " +
                $"{length} (an older snapshot or the whole journal rebuilds it)");
        }
        var records = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.Read, RecordsBufferBytes);
        records.SetLength(length);
        records.Seek(0, SeekOrigin.End);
        UseRecords(records);
    }

    /// <summary>Undoes <see cref="RestoreMark"/> (the engine tries an older snapshot, or the whole journal).</summary>
    public void ForgetMark()
    {
        _records?.Dispose();
        _records = null;
        _recordsBatchId = 0;
        _recordsSkipped = false;
        lock (_closed) _closed.Clear();
        Interlocked.Exchange(ref _lastClosedBatchId, 0);
        Interlocked.Exchange(ref _generatedThrough, 0);
    }

    /// <summary>For the engine's replay at start: records what is replayed, then passes it on (e.g. to the outcome feeds).</summary>
    public IOutputSink ReplaySink(IOutputSink? next = null) => new RecordingSink(this, next);

    private sealed class RecordingSink(ClearingRecorder recorder, IOutputSink? next) : IOutputSink
    {
        private OutputEvent _scratch;

        public ref OutputEvent Begin()
        {
            _scratch.Reset();
            return ref _scratch;
        }

        public void End()
        {
            recorder.Record(in _scratch);
            if (next is null) return;
            ref OutputEvent o = ref next.Begin();
            o = _scratch;
            next.End();
        }
    }

    /// <summary>Waits until the files of <paramref name="batchId"/> exist (or fail). False on timeout.</summary>
    public bool WaitForFiles(long batchId, int timeoutMs)
    {
        long deadline = Environment.TickCount64 + timeoutMs;
        while (GeneratedThrough < batchId && Fault is null)
        {
            if (Environment.TickCount64 > deadline) return false;
            Thread.Sleep(2);
        }
        return Fault is null;
    }

    /// <summary>Finishes the queued batches (their files are written), then stops the worker.</summary>
    public void Dispose()
    {
        _queue.CompleteAdding();
        _worker.Join();
        CloseRecords();
        _queue.Dispose();
    }
}
