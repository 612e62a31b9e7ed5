using Switch.Clearing;
using Switch.Engine.Snapshots;
using Switch.Host.Admin;
using Switch.Host.Gateway;

namespace Switch.Host;

/// <summary>
/// The host's derived views in the engine's snapshots: the outcome feeds (each institution's last outcome, files
/// fsynced), the clearing recorder (closed batches, their files complete, the open batch's records length), the
/// audit log and routing view, the member statistics. Without them a start from a snapshot would have to replay the
/// whole journal to rebuild what the views hold before it.
/// <para>At the mark (<see cref="Engine.Events.OutputKind.SnapshotMark"/>, the output thread, in output order) the
/// cheap part is taken at once: feeds and the records file flushed to the operating system, the feeds', clearing's and
/// statistics' state written, the audit view's immutable entries referenced. The rest runs on its own thread: fsync of
/// every file the snapshot counts on, the clearing worker's files of the batches closed before the mark, the audit
/// entries serialized; then the engine gets the bytes (its writer waits for them before it publishes the file).
/// The bytes depend only on the outputs before the mark: the same position gives the same bytes.</para>
/// </summary>
public sealed class SnapshotViews(OutcomeFeeds feeds, ClearingRecorder clearing, AuditLog audit, MemberStats members)
{
    private const uint FormatVersion = 1;
    private const int MaxWaitForFilesMs = 3_600_000;
    private Action<long, byte[]>? _captured;
    private Action<long, Exception>? _failed;
    private int _waitForFilesMs = 60_000;

    /// <summary>Where the views go once recorded (the engine's <c>SnapshotViewsCaptured</c>/<c>SnapshotViewsFailed</c>).</summary>
    public void Attach(Action<long, byte[]> captured, Action<long, Exception> failed, int waitForFilesMs)
    {
        if (waitForFilesMs is < 1 or > MaxWaitForFilesMs) throw new ArgumentOutOfRangeException(nameof(waitForFilesMs));
        _captured = captured;
        _failed = failed;
        _waitForFilesMs = waitForFilesMs;
    }

    /// <summary>The output thread, at the mark of snapshot <paramref name="recordNo"/>: never waits on the disk.</summary>
    public void Mark(long recordNo)
    {
        Action<long, byte[]> captured = _captured ?? throw new InvalidOperationException("snapshot views: a mark before the engine was attached");
        Action<long, Exception> failed = _failed!;
        try
        {
            var w = new StateWriter();
            w.Section("views");
            w.Value(FormatVersion);
            var toSync = new List<string>();
            feeds.WriteMark(w, toSync);
            if (clearing.WriteMark(w) is { } records) toSync.Add(records);
            long lastClosed = clearing.LastClosedBatchId;
            members.WriteMark(w);
            AuditLog.Marked marked = audit.Mark();
            byte[] head = w.Written.ToArray();
            var finish = new Thread(() => Finish(recordNo, head, marked, toSync, lastClosed, captured, failed))
            {
                Name = "switch-snapshot-views",
                IsBackground = true,
            };
            finish.Start();
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or UnauthorizedAccessException)
        {
            failed(recordNo, e);
        }
    }

    private void Finish(long recordNo, byte[] head, AuditLog.Marked marked, List<string> toSync, long lastClosed,
        Action<long, byte[]> captured, Action<long, Exception> failed)
    {
        try
        {
            // The batches closed before the mark have their files (so a start from this snapshot has none to make) ...
            if (lastClosed > 0 && !clearing.WaitForFiles(lastClosed, _waitForFilesMs))
            {
                throw new IOException(clearing.Fault is { } fault
                    ? $"snapshot views: the files of clearing batch {lastClosed} failed ({fault.Message})"
                    : $"snapshot views: the files of clearing batch {lastClosed} took more than {_waitForFilesMs} ms");
            }
            // ... and what the views count on is on disk before the snapshot that says so is published.
            foreach (string path in toSync) Fsync(path);
            var w = new StateWriter();
            AuditLog.WriteMark(w, marked);
            w.Section("end");
            byte[] views = new byte[head.Length + w.WrittenBytes];
            head.CopyTo(views, 0);
            w.Written.CopyTo(views.AsSpan(head.Length));
            captured(recordNo, views);
        }
        catch (Exception e)
        {
            failed(recordNo, e);
        }
    }

    /// <summary>At a start from a snapshot (the engine's <c>RestoreViews</c>), before the replay after it. Views that do
    /// not fit the files on disk (lost since), or an empty array (a snapshot taken without views), are an
    /// <see cref="InvalidDataException"/> with every view as it was before: the engine then tries an older snapshot.</summary>
    public void Restore(byte[] views)
    {
        if (views.Length == 0)
            throw new InvalidDataException("snapshot views: the snapshot holds no derived views (taken by a tool?)");
        try
        {
            var r = new StateReader(views);
            r.Section("views");
            uint version = r.Value<uint>();
            if (version != FormatVersion) throw new InvalidDataException($"snapshot views: format version {version}, this build reads {FormatVersion}");
            // The files first: they are what may have been lost since the snapshot was taken.
            feeds.RestoreMark(ref r);
            clearing.RestoreMark(ref r);
            members.RestoreMark(ref r);
            audit.RestoreMark(ref r);
            r.Section("end");
            if (r.Remaining != 0) throw new InvalidDataException($"snapshot views: {r.Remaining} bytes after the end");
        }
        catch (InvalidDataException)
        {
            // The engine tries an older snapshot (or the whole journal): every view starts again from nothing. What was
            // cut (an open batch's records) is rewritten by that replay, from an earlier point.
            feeds.ForgetMark();
            clearing.ForgetMark();
            members.ForgetMark();
            audit.ForgetMark();
            throw;
        }
    }

    /// <summary>Makes a file's written data (or a directory's entries) durable; a file deleted since (a feed segment past
    /// its retention) has nothing left to keep.</summary>
    public static void Fsync(string path)
    {
        if (Directory.Exists(path))
        {
            Journal.DirectorySync.Flush(path);
            return;
        }
        try
        {
            Journal.WriteBack.SyncFile(path); // a chunk at a time: the journal's commits never queue behind a burst
        }
        catch (FileNotFoundException)
        {
        }
    }
}
