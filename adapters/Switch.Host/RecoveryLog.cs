using Switch.Engine.Pipeline;

namespace Switch.Host;

/// <summary>What a start found in its data directory, said once: a single switch's start and each life of a cluster's
/// node (a standby that rejoins says here which snapshot it started from and how much journal it replayed).</summary>
internal static class RecoveryLog
{
    public static void Write(Log log, RecoveryReport recovery, string dataDirectory, long startMs)
    {
        string journal = Path.GetFullPath(dataDirectory);
        if (recovery.ConfigFromJournal)
        {
            log.Info("journal_recovered", "journal recovered; unresolved transactions are resolved by asking their banks",
                ("journal", journal), ("events", recovery.EventsReplayed), ("transactions", recovery.LastTransactionId),
                ("unresolved", recovery.Unresolved), ("records_adopted", recovery.RecordsAdopted), ("start_ms", startMs));
        }
        else
        {
            log.Info("journal_new", "new journal", ("journal", journal), ("start_ms", startMs));
        }
        foreach (string skipped in recovery.SnapshotsSkipped)
        {
            // "<file>: <why>"; the file was renamed .skipped, kept for a person to look at.
            string[] parts = skipped.Split(": ", 2);
            log.Warn("snapshot_skipped", $"snapshot {parts[0]} skipped (renamed .skipped): {(parts.Length > 1 ? parts[1] : "")}",
                ("snapshot", parts[0]), ("reason", parts.Length > 1 ? parts[1] : ""));
        }
        if (recovery.Snapshot is { } from)
        {
            // The records after the snapshot's were replayed locally; its age says how much older a state it gave.
            long ageS = (long)(DateTime.UtcNow - File.GetLastWriteTimeUtc(recovery.SnapshotPath!)).TotalSeconds;
            // Then what the restore read and waited on (the file's read rate, faults, the machine's compaction and
            // reclaim): a slow start names its cause.
            (string Key, object? Value)[] fields =
            [
                ("snapshot", Path.GetFileName(recovery.SnapshotPath)), ("position", from.RecordNo), ("snapshot_age_s", ageS),
                ("records_replayed", recovery.JournalRecords - 1 - from.RecordNo), ("events_replayed", recovery.EventsReplayed),
                ("journal_records", recovery.JournalRecords), ("recovery_ms", recovery.RecoveryMs), ("journal_open_ms", recovery.Phases.JournalOpenMs),
                ("archive_open_ms", recovery.Phases.ArchiveOpenMs), ("state_restore_ms", recovery.Phases.StateRestoreMs), ("archive_wait_ms", recovery.Phases.ArchiveWaitMs), ("replay_ms", recovery.Phases.ReplayMs),
                .. (recovery.SnapshotRestore?.Fields() ?? []).Select(f => (f.Key, (object?)f.Value)),
            ];
            log.Info("recovery_snapshot", $"started from the snapshot at record {from.RecordNo} ({ageS} s old), then replayed the {recovery.JournalRecords - 1 - from.RecordNo} journal records after it", fields);
        }
        else if (recovery.ConfigFromJournal)
        {
            log.Info("recovery_snapshot", $"no usable snapshot: replayed the whole journal ({recovery.JournalRecords} records)", ("snapshot", "none"),
                ("records_replayed", recovery.JournalRecords), ("events_replayed", recovery.EventsReplayed), ("journal_records", recovery.JournalRecords),
                ("recovery_ms", recovery.RecoveryMs), ("journal_open_ms", recovery.Phases.JournalOpenMs), ("replay_ms", recovery.Phases.ReplayMs));
        }
        if (recovery.TornTail is { } torn)
        {
            log.Warn("journal_torn_tail_cut", $"torn tail cut at address {torn.Address}; the records before it are intact",
                ("address", torn.Address), ("bytes", torn.ByteCount), ("reason", torn.Reason), ("detail", torn.Detail),
                ("records_before", torn.RecordsBefore));
        }
        if (recovery.ConfigDiffers)
        {
            log.Warn("config_differs", "the configuration differs from the journal's; the journal's participants and rules stay in force");
        }
    }
}
