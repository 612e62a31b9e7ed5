using Switch.Engine.Business;
using Switch.Engine.Pipeline;
using Switch.Engine.Snapshots;
using Switch.Engine.Tests.Support;
using Switch.Journal;

namespace Switch.Engine.Tests.Snapshots;

/// <summary>
/// Retention: after each snapshot the journal's records before the oldest kept snapshot move to journal-archive/ and
/// their segment files leave the live journal; a start still comes back from a snapshot, a start with none usable says
/// precisely why, and the whole history (archive, then live journal) reproduces every kept snapshot's state hash.
/// </summary>
public sealed class RetentionTests : IDisposable
{
    private const long SegmentBytes = 1L << 20; // small segments, so a test's few megabytes free whole ones
    private readonly TempDirectory _dir = new();
    private readonly ManualClock _clock = new(LogicHarness.StartUs);
    private readonly OutputRecorder _outputs = new();

    public void Dispose() => _dir.Dispose();

    private EngineOptions Options() => EngineTestOptions.For(_dir.Path, _clock) with
    {
        JournalSegmentBytes = SegmentBytes,
        Snapshots = new SnapshotOptions { Enabled = true, EveryEvents = 0, AtBatchClose = false, AtStop = false, Keep = 2, RetireJournal = true },
    };

    private string SegmentDirectory => Path.Combine(_dir.Path, "journal", "log");
    private string ArchiveDirectory => SnapshotStore.JournalArchiveDirectory(_dir.Path);

    [Fact]
    public void Records_behind_the_oldest_kept_snapshot_leave_the_live_journal_and_the_history_still_verifies()
    {
        SwitchConfig config = TestConfigs.Small(transactionCapacity: 64);
        ulong hash;
        var snapshots = new List<SnapshotResult>();
        using (SwitchEngine engine = SwitchEngine.Start(Options(), config, _outputs))
        {
            var work = new RandomWork(engine, _outputs, _clock, seed: 31);
            // Rounds until the journal spans several segments, a snapshot after each.
            for (int round = 0; round < 40 && (snapshots.Count < 4 || snapshots[^2].Position.RecordAddress < 3 * SegmentBytes); round++)
            {
                work.Run(2_000);
                snapshots.Add(engine.RequestSnapshotAsync().WaitOrThrow());
            }
            work.Run(500);
            Assert.True(engine.WaitUntilIdle(30_000));
            hash = engine.Logic.StateHash();
        }
        // Two kept; everything before the older of them is in the archive, in files that chain from record 0.
        IReadOnlyList<(long First, long End, string Path)> archived = JournalArchive.Files(ArchiveDirectory);
        Assert.NotEmpty(archived);
        Assert.Equal(0, archived[0].First);
        Assert.Equal(snapshots[^2].Position.RecordNo, archived[^1].End);
        // Whole segments before it left the live journal (FasterLog frees them once its new start is committed).
        long firstLiveSegment = snapshots[^2].Position.RecordAddress / SegmentBytes;
        Assert.True(firstLiveSegment >= 2, $"the test journal is too short: the oldest kept snapshot is in segment {firstLiveSegment}");
        long[] segments = Directory.GetFiles(SegmentDirectory).Select(f => long.Parse(Path.GetExtension(f).TrimStart('.'))).ToArray();
        Assert.All(segments, s => Assert.True(s >= firstLiveSegment, $"segment {s} is still in the live journal, it holds only retired records"));

        using (SwitchEngine restarted = SwitchEngine.Start(Options(), config, new OutputRecorder()))
        {
            Assert.Equal(snapshots[^1].Path, restarted.Recovery.SnapshotPath);
            Assert.Equal(hash, restarted.Logic.StateHash());
        }

        IReadOnlyList<HistoryVerifier.Result> verified = HistoryVerifier.Verify(_dir.Path, SegmentBytes);
        Assert.Equal(2, verified.Count);
        Assert.All(verified, r => Assert.True(r.Agrees, $"{r.Snapshot} at record {r.RecordNo}: snapshot {r.SnapshotHash:X16}, replay {r.ReplayHash:X16}"));
        Assert.Equal(hash, JournalReplay.Run(_dir.Path, new DiscardingSink(), segmentBytes: SegmentBytes).StateHash());
    }

    [Fact]
    public void With_history_retired_and_no_usable_snapshot_the_start_replays_the_archive_or_refuses_precisely()
    {
        SwitchConfig config = TestConfigs.Small(transactionCapacity: 64);
        ulong hash;
        using (SwitchEngine engine = SwitchEngine.Start(Options(), config, _outputs))
        {
            var work = new RandomWork(engine, _outputs, _clock, seed: 8);
            work.Run(400);
            engine.RequestSnapshotAsync().WaitOrThrow();
            work.Run(400);
            engine.RequestSnapshotAsync().WaitOrThrow();
            work.Run(100);
            Assert.True(engine.WaitUntilIdle(30_000));
            hash = engine.Logic.StateHash();
        }
        Assert.NotEmpty(JournalArchive.Files(ArchiveDirectory));
        string copy = _dir.Sub("copy");
        TempDirectory.CopyTree(_dir.Path, copy);

        // Every snapshot unusable: the whole history comes from the archive, then the live journal.
        foreach ((long _, string path) in new SnapshotStore(_dir.Path).List()) File.WriteAllBytes(path, [1, 2, 3]);
        using (SwitchEngine restarted = SwitchEngine.Start(Options(), config, new OutputRecorder()))
        {
            Assert.Null(restarted.Recovery.SnapshotPath);
            Assert.Equal(2, restarted.Recovery.SnapshotsSkipped.Count);
            Assert.Equal(hash, restarted.Logic.StateHash());
        }

        // And with the archive's files gone too, nothing can rebuild the start of the history: refused, saying why.
        foreach ((long _, string path) in new SnapshotStore(copy).List()) File.WriteAllBytes(path, [1, 2, 3]);
        foreach (var file in JournalArchive.Files(SnapshotStore.JournalArchiveDirectory(copy))) File.Delete(file.Path);
        var error = Assert.Throws<InvalidDataException>(() => SwitchEngine.Start(Options() with { DataDirectory = copy }, config, new OutputRecorder()));
        Assert.Contains("were retired to", error.Message);
        Assert.Contains("which holds 0", error.Message);
        Assert.Contains("ends early", error.Message);
    }

    [Theory]
    [InlineData(30)]
    [InlineData(0)] // the default: kept forever
    public void Archive_files_written_before_the_retention_are_deleted_oldest_first_after_a_snapshot(int retentionDays)
    {
        SwitchConfig config = TestConfigs.Small(transactionCapacity: 64);
        EngineOptions options = Options() with { Snapshots = Options().Snapshots with { JournalArchiveRetentionDays = retentionDays } };
        ulong hash;
        SnapshotResult last;
        IReadOnlyList<(long First, long End, string Path)> before;
        using (SwitchEngine engine = SwitchEngine.Start(options, config, _outputs))
        {
            var work = new RandomWork(engine, _outputs, _clock, seed: 12);
            for (int i = 0; i < 4; i++)
            {
                work.Run(300);
                engine.RequestSnapshotAsync().WaitOrThrow();
            }
            before = JournalArchive.Files(ArchiveDirectory);
            Assert.Equal(3, before.Count); // one a snapshot after the first two
            // The oldest written 31 days ago, the next 29: only the first is past 30 days. The third, written 40 days ago,
            // is not deleted all the same: what is left must still chain, so deletion stops at the first newer file.
            File.SetLastWriteTimeUtc(before[0].Path, DateTime.UtcNow.AddDays(-31));
            File.SetLastWriteTimeUtc(before[1].Path, DateTime.UtcNow.AddDays(-29));
            File.SetLastWriteTimeUtc(before[2].Path, DateTime.UtcNow.AddDays(-40));
            work.Run(300);
            last = engine.RequestSnapshotAsync().WaitOrThrow();
            work.Run(100);
            Assert.True(engine.WaitUntilIdle(30_000));
            hash = engine.Logic.StateHash();
        }
        IReadOnlyList<(long First, long End, string Path)> after = JournalArchive.Files(ArchiveDirectory, fromGenesis: false);
        if (retentionDays == 0)
        {
            Assert.Equal(0, last.JournalArchiveFilesDeleted);
            Assert.Equal(before.Select(f => f.Path), after.Take(3).Select(f => f.Path));
            return;
        }
        Assert.Equal(1, last.JournalArchiveFilesDeleted);
        Assert.False(File.Exists(before[0].Path));
        Assert.Equal(before[1].First, after[0].First);
        Assert.Equal(3, after.Count); // the two older files left, and this snapshot's retirement

        // A start from the snapshot does not need the deleted records ...
        using (SwitchEngine restarted = SwitchEngine.Start(options, config, new OutputRecorder()))
        {
            Assert.Equal(last.Path, restarted.Recovery.SnapshotPath);
            Assert.Equal(hash, restarted.Logic.StateHash());
        }
        // ... the whole history does: with no usable snapshot the start refuses, naming where the archive now begins.
        foreach ((long _, string path) in new SnapshotStore(_dir.Path).List()) File.WriteAllBytes(path, [1, 2, 3]);
        var error = Assert.Throws<InvalidDataException>(() => SwitchEngine.Start(options, config, new OutputRecorder()));
        Assert.Contains($"begins at record {before[1].First}, the history before it ends at 0", error.Message);
    }

    [Fact]
    public void A_journal_opened_with_another_segment_size_is_refused()
    {
        using (SwitchEngine.Start(Options(), TestConfigs.Small(), _outputs)) { }
        var error = Assert.Throws<JournalCorruptException>(() => SwitchEngine.Start(Options() with { JournalSegmentBytes = 1L << 22 }, TestConfigs.Small(), _outputs));
        Assert.Contains("made with segments of 1048576 bytes", error.Message);
    }
}
