using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Engine.Snapshots;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Snapshots;

/// <summary>
/// Snapshots of the real engine on disk: a start from one equals a start that replays the whole journal; the same
/// position gives the same bytes; a damaged, torn or foreign snapshot is reported, set aside and an older one (or the
/// whole journal) used instead.
/// </summary>
public sealed class SnapshotTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly ManualClock _clock = new(LogicHarness.StartUs);
    private OutputRecorder _outputs = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>A table of 64: most transactions leave for the archive on disk, some park while their bank is slow.</summary>
    private static SwitchConfig Config() => TestConfigs.Small(transactionCapacity: 64);

    private EngineOptions Options(string directory, bool snapshots = true) => EngineTestOptions.For(directory, _clock) with
    {
        Snapshots = new SnapshotOptions { Enabled = snapshots, EveryEvents = 0, AtBatchClose = false, AtStop = false, Keep = 3 },
    };

    [Fact]
    public void The_first_snapshot_finds_the_state_buffer_sized_by_the_start_and_does_not_grow_it_in_its_pause()
    {
        // A parked table of 65,536 slots: its free list alone (4 bytes a slot) is four times the writer's first 64 KiB.
        SwitchConfig config = Config() with { Rules = Config().Rules with { MaxUnresolvedPerBank = 65_536 / Config().Banks.Count } };
        using SwitchEngine engine = SwitchEngine.Start(Options(_dir.Path), config, _outputs);
        new RandomWork(engine, _outputs, _clock, seed: 20261207).Run(200);
        SnapshotResult first = engine.RequestSnapshotAsync().WaitOrThrow();
        using (SnapshotFile.Opened opened = SnapshotFile.Open(first.Path))
            Assert.True(opened.State.Length > 4 * 64 << 10, $"a state of {opened.State.Length} bytes: too small to need a larger buffer");
        Assert.Equal(0, engine.SnapshotStateBufferGrowths);
    }

    [Fact]
    public void A_start_from_a_snapshot_equals_a_whole_replay_of_the_same_journal()
    {
        ulong hash;
        SnapshotResult first, second;
        using (SwitchEngine engine = SwitchEngine.Start(Options(_dir.Path), Config(), _outputs))
        {
            var work = new RandomWork(engine, _outputs, _clock, seed: 20261206);
            work.Run(600);
            first = engine.RequestSnapshotAsync().WaitOrThrow();
            work.Run(600);
            second = engine.RequestSnapshotAsync().WaitOrThrow();
            work.Run(400); // after the last snapshot: the start replays these
            Assert.True(engine.WaitUntilIdle(30_000));
            hash = engine.Logic.StateHash();
            Assert.True(engine.Logic.Transactions.LastId > 3 * 64, $"only {engine.Logic.Transactions.LastId} transactions: the archive is barely used");
        }
        Assert.True(second.Position.RecordNo > first.Position.RecordNo);
        Assert.True(File.Exists(second.Path) && File.Exists(second.Path + SnapshotFile.ArchiveExtension));

        using (SwitchEngine restarted = SwitchEngine.Start(Options(_dir.Path), Config(), _outputs = new OutputRecorder()))
        {
            Assert.Equal(second.Path, restarted.Recovery.SnapshotPath);
            Assert.Empty(restarted.Recovery.SnapshotsSkipped);
            Assert.True(restarted.Recovery.EventsReplayed < restarted.Recovery.JournalRecords - second.Position.RecordNo + 1,
                $"replayed {restarted.Recovery.EventsReplayed} of {restarted.Recovery.JournalRecords} records");
            Assert.Equal(hash, restarted.Logic.StateHash());

            // The restored engine goes on like the original: repeats of archived orders are still answered from the archive.
            var more = new RandomWork(restarted, _outputs, _clock, seed: 7);
            more.Run(300);
            Assert.True(restarted.WaitUntilIdle(30_000));
            Assert.Null(restarted.Fault);
            hash = restarted.Logic.StateHash();
        }
        // And the journal as a whole still replays to the same state (the snapshot changed nothing in it).
        Assert.Equal(hash, JournalReplay.Run(_dir.Path, new DiscardingSink()).StateHash());
    }

    [Fact]
    public void The_same_position_gives_the_same_bytes()
    {
        string copy = _dir.Sub("copy");
        SnapshotResult original;
        using (SwitchEngine engine = SwitchEngine.Start(Options(_dir.Sub("a")), Config(), _outputs = new OutputRecorder()))
        {
            new RandomWork(engine, _outputs, _clock, seed: 11).Run(800);
            Assert.True(engine.WaitUntilIdle(30_000));
            TempDirectory.CopyTree(_dir.Sub("a"), copy); // the journal as it is, before any snapshot
            original = engine.RequestSnapshotAsync().WaitOrThrow();
        }
        // Another process, another history of its memory (a whole replay), the same journal position: the same bytes.
        using (SwitchEngine engine = SwitchEngine.Start(Options(copy), Config(), _outputs = new OutputRecorder()))
        {
            SnapshotResult again = engine.RequestSnapshotAsync().WaitOrThrow();
            Assert.Equal(original.Position, again.Position);
            Assert.Equal(File.ReadAllBytes(original.Path), File.ReadAllBytes(again.Path));
        }
    }

    public enum Damage { FlippedByte, FlippedChecksum, Truncated, OtherVersion, NotInThisJournal, RingTransactionRemoved, SparsePageInFormat2 }

    [Theory]
    [InlineData(Damage.FlippedByte)]
    [InlineData(Damage.FlippedChecksum)]
    [InlineData(Damage.Truncated)]
    [InlineData(Damage.OtherVersion)]
    [InlineData(Damage.NotInThisJournal)]
    [InlineData(Damage.RingTransactionRemoved)]
    [InlineData(Damage.SparsePageInFormat2)]
    public void A_damaged_newest_snapshot_is_set_aside_for_the_older_one(Damage damage)
    {
        SnapshotResult older, newer;
        ulong hash;
        using (SwitchEngine engine = SwitchEngine.Start(Options(_dir.Path), Config(), _outputs = new OutputRecorder()))
        {
            var work = new RandomWork(engine, _outputs, _clock, seed: 5);
            work.Run(400);
            older = engine.RequestSnapshotAsync().WaitOrThrow();
            work.Run(400);
            newer = engine.RequestSnapshotAsync().WaitOrThrow();
            work.Run(100);
            Assert.True(engine.WaitUntilIdle(30_000));
            hash = engine.Logic.StateHash();
        }
        byte[] bytes = File.ReadAllBytes(newer.Path);
        switch (damage)
        {
            case Damage.FlippedByte:
                bytes[bytes.Length / 2] ^= 0x40;
                break;
            case Damage.FlippedChecksum:
                bytes[^1] ^= 0x40; // the stored checksum itself: nothing but the checksum can notice it
                break;
            case Damage.Truncated:
                bytes = bytes[..(bytes.Length * 2 / 3)];
                break;
            case Damage.OtherVersion:
                bytes[8] = 99; // the format version follows the 8-byte magic
                break;
            case Damage.NotInThisJournal:
                BitConverter.GetBytes(older.Position.RecordAddress).CopyTo(bytes, 24); // the record address, after the record number
                break;
            case Damage.RingTransactionRemoved:
                RemoveARingTransaction(ref bytes); // a file whose checksum holds (a writer's fault): the restore's own checks refuse it
                break;
            case Damage.SparsePageInFormat2:
                bytes[8] = 2; // format 2 had no sparse pages: one in it is a fault, however well checksummed
                BitConverter.GetBytes(Switch.Journal.Crc32C.Compute(bytes.AsSpan(0, bytes.Length - 4))).CopyTo(bytes, bytes.Length - 4);
                break;
        }
        File.WriteAllBytes(newer.Path, bytes);

        using SwitchEngine restarted = SwitchEngine.Start(Options(_dir.Path), Config(), _outputs = new OutputRecorder());
        Assert.Equal(older.Path, restarted.Recovery.SnapshotPath);
        string why = Assert.Single(restarted.Recovery.SnapshotsSkipped);
        Assert.StartsWith(Path.GetFileName(newer.Path), why);
        string expected = damage switch
        {
            // Caught by the checksum at the end, or before it by a check of what the byte is part of (where the middle
            // byte lands depends on the layout): refused either way.
            Damage.FlippedByte => "",
            Damage.FlippedChecksum => "checksum",
            Damage.Truncated => "torn",
            Damage.OtherVersion => "format version 99",
            Damage.RingTransactionRemoved => "the table's ring holds",
            Damage.SparsePageInFormat2 => "page flag 2",
            _ => "the journal holds no record",
        };
        Assert.True(why.Contains(expected), why);
        Assert.True(File.Exists(newer.Path + ".skipped"));
        Assert.False(File.Exists(newer.Path));
        Assert.Equal(hash, restarted.Logic.StateHash());
    }

    [Fact]
    public void A_format_2_snapshot_written_by_the_build_before_is_restored_after_an_upgrade()
    {
        // The build before wrote every page whole. Its snapshot must still serve the first start after an upgrade: the
        // other way is a replay of the whole history.
        SnapshotResult taken;
        ulong hash;
        using (SwitchEngine engine = SwitchEngine.Start(Options(_dir.Path), Config(), _outputs = new OutputRecorder()))
        {
            var work = new RandomWork(engine, _outputs, _clock, seed: 7);
            work.Run(600);
            taken = engine.RequestSnapshotAsync().WaitOrThrow();
            work.Run(200);
            Assert.True(engine.WaitUntilIdle(30_000));
            hash = engine.Logic.StateHash();
        }
        byte[] bytes = File.ReadAllBytes(taken.Path);
        Assert.True(ToFormat2(ref bytes) > 0, "the snapshot had no sparse page to write whole");
        File.WriteAllBytes(taken.Path, bytes);

        using SwitchEngine restarted = SwitchEngine.Start(Options(_dir.Path), Config(), _outputs = new OutputRecorder());
        Assert.Equal(taken.Path, restarted.Recovery.SnapshotPath);
        Assert.Empty(restarted.Recovery.SnapshotsSkipped);
        Assert.Equal(hash, restarted.Logic.StateHash());
    }

    /// <summary>Rewrites a snapshot as format 2 wrote it: every sparse page stored whole (flag 1), version 2, the checksum
    /// recomputed. Returns how many pages were rewritten. The engine's own snapshots carry no derived views.</summary>
    private static int ToFormat2(ref byte[] bytes)
    {
        int at = 8 + 4 + 4 + 4 * 8;
        at += 4 + BitConverter.ToInt32(bytes, at);
        at += 8 + (int)BitConverter.ToInt64(bytes, at);
        var rewritten = new List<byte>(bytes.AsSpan(0, at).ToArray());
        int sparsePages = 0;
        int viewsAt = bytes.Length - 4 - 8;
        while (at < viewsAt)
        {
            int items = BitConverter.ToInt32(bytes, at), itemBytes = BitConverter.ToInt32(bytes, at + 4), pageItems = BitConverter.ToInt32(bytes, at + 8);
            rewritten.AddRange(bytes.AsSpan(at, 12));
            at += 12;
            for (int start = 0; start < items; start += pageItems)
            {
                byte flag = bytes[at++];
                (byte[] page, int stored) = ReadPage(bytes, at, flag, Math.Min(pageItems, items - start) * itemBytes);
                rewritten.Add(flag == 2 ? (byte)1 : flag);
                rewritten.AddRange(flag == 2 ? page : bytes.AsSpan(at, stored));
                if (flag == 2) sparsePages++;
                at += stored;
            }
        }
        Assert.Equal(viewsAt, at);
        Assert.Equal(0L, BitConverter.ToInt64(bytes, at));
        rewritten.AddRange(bytes.AsSpan(at, 8));
        rewritten[8] = 2;
        byte[] result = [.. rewritten, 0, 0, 0, 0];
        BitConverter.GetBytes(Switch.Journal.Crc32C.Compute(result.AsSpan(0, result.Length - 4))).CopyTo(result, result.Length - 4);
        bytes = result;
        return sparsePages;
    }

    /// <summary>Zeroes the ring's first final transaction in a snapshot's bytes and recomputes the checksum (the layout in
    /// <see cref="SnapshotFile"/>: header, config, state, then the arrays: daily usage, the table's ring, ...).</summary>
    private static void RemoveARingTransaction(ref byte[] bytes)
    {
        int at = 8 + 4 + 4 + 4 * 8;
        at += 4 + BitConverter.ToInt32(bytes, at);
        at += 8 + (int)BitConverter.ToInt64(bytes, at);
        at = SkipArray(bytes, at); // the daily usage
        int items = BitConverter.ToInt32(bytes, at), itemBytes = BitConverter.ToInt32(bytes, at + 4), pageItems = BitConverter.ToInt32(bytes, at + 8);
        Assert.Equal(System.Runtime.CompilerServices.Unsafe.SizeOf<Transaction>(), itemBytes);
        at += 12;
        for (int start = 0; start < items; start += pageItems)
        {
            int pageBytes = Math.Min(pageItems, items - start) * itemBytes;
            byte flag = bytes[at++];
            (byte[] page, int stored) = ReadPage(bytes, at, flag, pageBytes);
            for (int item = 0; item < pageBytes; item += itemBytes)
            {
                // A final one: an unresolved one the banks' counts would miss as well.
                Transaction tx = System.Runtime.InteropServices.MemoryMarshal.Read<Transaction>(page.AsSpan(item, itemBytes));
                if (tx.Id == 0 || !tx.IsFinal) continue;
                Array.Clear(page, item, itemBytes);
                // The page stored again as the writer would (sparse, else whole), the checksum recomputed over it all.
                byte[] encoded = new byte[SparsePage.MaxEncodedBytes(pageBytes)];
                int length = SparsePage.Encode(page, encoded, out _);
                byte[] storedAgain = length > 0 ? encoded[..length] : page;
                bytes[at - 1] = length > 0 ? (byte)2 : (byte)1;
                bytes = [.. bytes.AsSpan(0, at), .. storedAgain, .. bytes.AsSpan(at + stored)];
                BitConverter.GetBytes(Switch.Journal.Crc32C.Compute(bytes.AsSpan(0, bytes.Length - 4))).CopyTo(bytes, bytes.Length - 4);
                return;
            }
            at += stored;
        }
        Assert.Fail("no final transaction in the snapshot's ring");
    }

    /// <summary>A stored page's bytes (flag 0: zeros, 1: whole, 2: sparse) and how many bytes it took in the file.</summary>
    private static (byte[] Page, int Stored) ReadPage(byte[] bytes, int at, byte flag, int pageBytes)
    {
        var page = new byte[pageBytes];
        switch (flag)
        {
            case 0:
                return (page, 0);
            case 1:
                bytes.AsSpan(at, pageBytes).CopyTo(page);
                return (page, pageBytes);
            default:
                Assert.Equal(2, flag);
                int maskBytes = SparsePage.MaskBytes(pageBytes);
                int words = SparsePage.CountWords(bytes.AsSpan(at, maskBytes), pageBytes);
                int tail = pageBytes % 8;
                SparsePage.Scatter(bytes.AsSpan(at, maskBytes), bytes.AsSpan(at + maskBytes, words * 8), page);
                bytes.AsSpan(at + maskBytes + words * 8, tail).CopyTo(page.AsSpan(pageBytes - tail));
                return (page, maskBytes + words * 8 + tail);
        }
    }

    private static int SkipArray(byte[] bytes, int at)
    {
        int items = BitConverter.ToInt32(bytes, at), itemBytes = BitConverter.ToInt32(bytes, at + 4), pageItems = BitConverter.ToInt32(bytes, at + 8);
        at += 12;
        for (int start = 0; start < items; start += pageItems)
        {
            byte flag = bytes[at++];
            at += ReadPage(bytes, at, flag, Math.Min(pageItems, items - start) * itemBytes).Stored;
        }
        return at;
    }

    [Fact]
    public void With_every_snapshot_damaged_the_whole_journal_is_replayed()
    {
        ulong hash;
        SnapshotResult only;
        using (SwitchEngine engine = SwitchEngine.Start(Options(_dir.Path), Config(), _outputs = new OutputRecorder()))
        {
            new RandomWork(engine, _outputs, _clock, seed: 3).Run(500);
            only = engine.RequestSnapshotAsync().WaitOrThrow();
            Assert.True(engine.WaitUntilIdle(30_000));
            hash = engine.Logic.StateHash();
        }
        File.Delete(only.Path + SnapshotFile.ArchiveExtension); // its archive checkpoint is unknown: unusable
        using SwitchEngine restarted = SwitchEngine.Start(Options(_dir.Path), Config(), _outputs = new OutputRecorder());
        Assert.Null(restarted.Recovery.SnapshotPath);
        Assert.Contains("no archive checkpoint", Assert.Single(restarted.Recovery.SnapshotsSkipped));
        Assert.Equal(hash, restarted.Logic.StateHash());
    }

    [Fact]
    public void A_snapshot_whose_archive_checkpoint_a_start_without_snapshots_removed_is_skipped_for_the_whole_journal()
    {
        ulong hash;
        SnapshotResult only;
        using (SwitchEngine engine = SwitchEngine.Start(Options(_dir.Path), Config(), _outputs = new OutputRecorder()))
        {
            new RandomWork(engine, _outputs, _clock, seed: 5).Run(500);
            only = engine.RequestSnapshotAsync().WaitOrThrow();
            Assert.True(engine.WaitUntilIdle(30_000));
        }
        // An operator's start with snapshots off replays the whole journal and rebuilds the archive from nothing.
        using (SwitchEngine without = SwitchEngine.Start(Options(_dir.Path, snapshots: false), Config(), _outputs = new OutputRecorder()))
        {
            Assert.Null(without.Recovery.SnapshotPath);
            new RandomWork(without, _outputs, _clock, seed: 6).Run(200);
            Assert.True(without.WaitUntilIdle(30_000));
            hash = without.Logic.StateHash();
        }
        string checkpoints = Path.Combine(_dir.Path, "archive", "checkpoints");
        string[] filesBefore = Directory.Exists(checkpoints) ? Directory.GetFiles(checkpoints, "*", SearchOption.AllDirectories) : [];
        string token = File.ReadAllText(only.Path + SnapshotFile.ArchiveExtension).Trim();

        using SwitchEngine restarted = SwitchEngine.Start(Options(_dir.Path), Config(), _outputs = new OutputRecorder());
        Assert.Null(restarted.Recovery.SnapshotPath);
        string skipped = Assert.Single(restarted.Recovery.SnapshotsSkipped);
        Assert.Contains($"archive: checkpoint {token} is missing", skipped);
        Assert.Equal(hash, restarted.Logic.StateHash());
        // Nothing was made in the checkpoints' folder by asking for the missing one (FASTER would create its files empty).
        Assert.DoesNotContain(Directory.Exists(checkpoints) ? Directory.GetFiles(checkpoints, "*", SearchOption.AllDirectories) : [],
            f => !filesBefore.Contains(f) && new FileInfo(f).Length == 0);
    }

    [Fact]
    public void The_schedule_takes_one_when_events_came_and_none_while_idle()
    {
        EngineOptions options = Options(_dir.Path) with
        {
            Snapshots = new SnapshotOptions { Enabled = true, EveryEvents = 0, Every = TimeSpan.FromMilliseconds(200), AtBatchClose = false, AtStop = false, Keep = 2 },
        };
        using SwitchEngine engine = SwitchEngine.Start(options, Config(), _outputs = new OutputRecorder());
        new RandomWork(engine, _outputs, _clock, seed: 4).Run(100);
        Assert.True(engine.WaitUntilIdle(30_000));
        // A turn may fall amid the work on a slow machine (a snapshot of part of it); one after it takes the rest.
        long deadline = Environment.TickCount64 + 30_000;
        while (engine.LastSnapshot?.Position.EventsApplied != engine.Logic.EventsApplied && Environment.TickCount64 < deadline) Thread.Sleep(20);
        Assert.Equal("schedule", engine.LastSnapshot?.Trigger);
        Assert.Equal(engine.Logic.EventsApplied, engine.LastSnapshot!.Position.EventsApplied);
        long taken = engine.SnapshotsTaken;
        Thread.Sleep(1_000); // five turns of the schedule with nothing applied: the same position again would be pointless
        Assert.Equal(taken, engine.SnapshotsTaken);
    }

    [Fact]
    public void Asking_with_snapshots_off_is_a_precise_error_and_changes_nothing()
    {
        using SwitchEngine engine = SwitchEngine.Start(Options(_dir.Path, snapshots: false), Config(), _outputs = new OutputRecorder());
        var e = Assert.Throws<AggregateException>(() => engine.RequestSnapshotAsync().Wait());
        Assert.StartsWith("SNAPSHOTS_DISABLED", e.InnerException!.Message);
        Assert.False(Directory.Exists(Path.Combine(_dir.Path, "snapshots")));
    }

    [Fact]
    public void Snapshots_come_by_event_count_and_at_a_graceful_stop_and_only_the_newest_are_kept()
    {
        EngineOptions options = Options(_dir.Path) with
        {
            Snapshots = new SnapshotOptions { Enabled = true, EveryEvents = 150, AtBatchClose = true, AtStop = true, Keep = 2 },
        };
        ulong hash;
        long taken;
        using (SwitchEngine engine = SwitchEngine.Start(options, Config(), _outputs = new OutputRecorder()))
        {
            new RandomWork(engine, _outputs, _clock, seed: 9).Run(900);
            Assert.True(engine.WaitUntilIdle(30_000));
            // Snapshots by count are written after the logic moved on: on a loaded machine (CI) none had been
            // published yet when the logic went idle. Waited for, bounded.
            long deadline = Environment.TickCount64 + 30_000;
            while (engine.SnapshotsTaken < 2 && Environment.TickCount64 < deadline) Thread.Sleep(20);
            hash = engine.Logic.StateHash();
            taken = engine.SnapshotsTaken;
        }
        Assert.True(taken >= 2, $"{taken} snapshots by count");
        var kept = new SnapshotStore(_dir.Path).List();
        Assert.Equal(2, kept.Count);
        using SwitchEngine restarted = SwitchEngine.Start(options, Config(), _outputs = new OutputRecorder());
        // The stop's snapshot holds everything: nothing is left to replay.
        Assert.Equal(kept[0].Path, restarted.Recovery.SnapshotPath);
        Assert.Equal(0, restarted.Recovery.EventsReplayed);
        Assert.Equal(hash, restarted.Logic.StateHash());
    }
}

internal static class SnapshotTaskExtensions
{
    public static SnapshotResult WaitOrThrow(this Task<SnapshotResult> task)
    {
        Assert.True(task.Wait(60_000), "the snapshot took more than a minute");
        return task.Result;
    }
}
