using Switch.Engine.Archive;
using Switch.Engine.Business;
using Switch.Engine.Snapshots;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Archive;

/// <summary>
/// A snapshot's archive checkpoint is started by the archive's writer thread, at a mark handed after every earlier
/// write: the logic thread does not wait for FASTER's checkpoint start (milliseconds of its pause before), and the
/// checkpoint still holds exactly the writes made before the capture, however many the logic hands over meanwhile.
/// </summary>
public sealed class CheckpointStartTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static Transaction Order(long id)
    {
        Transaction tx = default;
        tx.Id = id;
        tx.AmountFen = id * 100L;
        tx.OrderNo.Set($"O{id}");
        return tx;
    }

    private static ScopedKey Key(in Transaction tx) => new(1, tx.OrderNo.Span);

    [Fact]
    public void The_logic_goes_on_while_the_writer_starts_the_checkpoint_which_holds_only_the_writes_before_the_capture()
    {
        const int before = 3_000;
        const int after = 1_000; // within the handoff's lap: the logic never waits for the stopped writer
        ArchiveSizing sizing = ArchiveSizing.Small with { HandoffEntries = 4096 };
        string directory = _dir.Sub("archive");
        using var starting = new ManualResetEventSlim();
        using var proceed = new ManualResetEventSlim();
        int logicThread = Environment.CurrentManagedThreadId;
        int startedOn = 0;
        string token;
        long tail;
        using (FasterTransactionArchive archive = FasterTransactionArchive.Create(directory, sizing))
        {
            archive.CheckpointStarting = () =>
            {
                startedOn = Environment.CurrentManagedThreadId;
                starting.Set();
                proceed.Wait(TimeSpan.FromSeconds(60)); // held: the start is as slow as a loaded machine makes it
            };
            for (int id = 1; id <= before; id++)
            {
                Transaction tx = Order(id);
                archive.Put(Key(tx), tx);
            }
            // The capture returns while the checkpoint's start is held (it would hang here if the logic started it).
            Task<ArchiveCapture> begun = Task.Run(() => archive.BeginCapture(new StateWriter()));
            Assert.True(begun.Wait(TimeSpan.FromSeconds(30)), "the capture waited for the checkpoint's start");
            ArchiveCapture capture = begun.Result;
            Assert.True(starting.Wait(TimeSpan.FromSeconds(30)), "the writer never reached the checkpoint's mark");
            Assert.NotEqual(logicThread, startedOn);
            Assert.False(capture.Completion.IsCompleted);
            // The logic goes on: writes and reads while the start is held (a read finds a write not yet applied).
            for (int id = before + 1; id <= before + after; id++)
            {
                Transaction tx = Order(id);
                archive.Put(Key(tx), tx);
            }
            Transaction newest = Order(before + after);
            Assert.True(archive.TryGet(Key(newest), out Transaction found));
            Assert.Equal(newest.AmountFen, found.AmountFen);
            proceed.Set();
            Assert.True(capture.Completion.Wait(TimeSpan.FromSeconds(60)), "the checkpoint never completed");
            capture.End();
            token = capture.CheckpointToken!;
            archive.Flush();
            tail = archive.TailAddress;
        }
        using FasterTransactionArchive reopened = FasterTransactionArchive.OpenAtCheckpoint(directory, sizing, token);
        Assert.True(reopened.TailAddress < tail, "the checkpoint holds the writes made after the capture");
        for (int id = 1; id <= before + after; id++)
        {
            Transaction tx = Order(id);
            bool present = reopened.TryGetFromStoreForTest(Key(tx), out Transaction got);
            Assert.True(present == id <= before, $"order {id}: {(present ? "in" : "not in")} the checkpoint");
            if (present) Assert.Equal(tx.AmountFen, got.AmountFen);
        }
    }

    [Fact]
    public void The_capture_does_not_wait_for_a_held_writer_and_the_state_is_the_one_at_the_mark()
    {
        const int before = 3_000;
        const int after = 300; // within the handoff's lap with all the rest: the logic never waits for the held writer
        ArchiveSizing handedSizing = ArchiveSizing.Small with { HandoffEntries = 4096 };
        string directory = _dir.Sub("handed");
        using FasterTransactionArchive inline = FasterTransactionArchive.Create(_dir.Sub("inline"), ArchiveSizing.Small with { HandoffEntries = 0 });
        var inlineState = new StateWriter();
        var handedState = new StateWriter();
        string token;
        using (FasterTransactionArchive handed = FasterTransactionArchive.Create(directory, handedSizing))
        {
            void Write(long id)
            {
                foreach (FasterTransactionArchive archive in new[] { handed, inline })
                {
                    Transaction tx = Order(id);
                    archive.Put(Key(tx), tx);
                    if (id % 7 == 0)
                    {
                        tx.RefundedFen = id;
                        archive.Update(Key(tx), tx);
                    }
                    archive.ForgetBelow(Math.Max(1, id - 1_000)); // marks dropped and segments forgotten as it goes
                }
            }
            for (int id = 1; id <= before / 2; id++) Write(id);
            ArchiveCapture capture;
            Task recorded;
            // The writer is held with half the writes and the capture's mark still to apply, as an upsert blocked on a
            // page flush holds it.
            Monitor.Enter(handed.SessionGateForTest);
            try
            {
                for (int id = before / 2 + 1; id <= before; id++) Write(id);
                // The last horizon jumps with no write after it: the mark carries it to the writer.
                handed.ForgetBelow(before - 100);
                inline.ForgetBelow(before - 100);
                Task<ArchiveCapture> begun = Task.Run(() => handed.BeginCapture(new StateWriter()));
                Assert.True(begun.Wait(TimeSpan.FromSeconds(10)), "the capture waited for the archive's writer");
                capture = begun.Result;
                recorded = Task.Run(() => capture.WriteState(handedState));
                // The logic goes on while the writer is held: these are after the mark, in neither the state nor the checkpoint.
                for (int id = before + 1; id <= before + after; id++)
                {
                    Transaction tx = Order(id);
                    handed.Put(Key(tx), tx);
                }
                Assert.False(recorded.Wait(200), "the archive's state was written before its writer reached the mark");
                Assert.False(capture.Completion.IsCompleted);
            }
            finally
            {
                Monitor.Exit(handed.SessionGateForTest);
            }
            Assert.True(recorded.Wait(TimeSpan.FromSeconds(30)), "the archive's state never came once the writer was released");
            Assert.True(capture.Completion.Wait(TimeSpan.FromSeconds(60)), "the checkpoint never completed");
            capture.End();
            token = capture.CheckpointToken!;
            // The same state as an archive whose logic wrote the store itself and captured at the same point.
            ArchiveCapture inlineCapture = inline.BeginCapture(inlineState);
            inlineCapture.WriteState(inlineState);
            Assert.True(inlineCapture.Completion.Wait(TimeSpan.FromSeconds(60)), "the inline checkpoint never completed");
            inlineCapture.End();
            Assert.Equal(inlineState.Written.ToArray(), handedState.Written.ToArray());
        }
        // Restored from the checkpoint and the state: the orders handed before the mark, none after, and the same state again.
        using FasterTransactionArchive reopened = FasterTransactionArchive.OpenAtCheckpoint(directory, handedSizing, token);
        var r = new StateReader(handedState.Written);
        reopened.RestoreScalars(ref r);
        Assert.Equal(0, r.Remaining);
        for (int id = 1; id <= before + after; id++)
        {
            Transaction tx = Order(id);
            bool present = reopened.TryGetFromStoreForTest(Key(tx), out Transaction got);
            // The oldest are forgotten with their segments; the newest before the mark must all be there.
            if (id > before - 100 && id <= before) Assert.True(present, $"order {id}, handed before the mark, is not in the checkpoint");
            if (id > before) Assert.False(present, $"order {id}, handed after the mark, is in the checkpoint");
            if (present) Assert.Equal(id % 7 == 0 ? id : 0, got.RefundedFen);
        }
        var again = new StateWriter();
        ArchiveCapture recapture = reopened.BeginCapture(again);
        recapture.WriteState(again);
        Assert.True(recapture.Completion.Wait(TimeSpan.FromSeconds(60)), "the reopened archive's checkpoint never completed");
        recapture.End();
        Assert.Equal(handedState.Written.ToArray(), again.Written.ToArray());
    }

    /// <summary>An archive of one order whose snapshot's checkpoint start throws <paramref name="failure"/>: the capture's
    /// checkpoint fails with it (the snapshot fails; asserted here), the capture ended.</summary>
    private FasterTransactionArchive ArchiveWhoseCheckpointStartThrew(Exception failure)
    {
        FasterTransactionArchive archive = FasterTransactionArchive.Create(_dir.Sub("archive"), ArchiveSizing.Small with { HandoffEntries = 4096 });
        archive.CheckpointStarting = () => throw failure;
        Transaction first = Order(1);
        archive.Put(Key(first), first);
        ArchiveCapture capture = archive.BeginCapture(new StateWriter());
        var failed = Assert.Throws<AggregateException>(() => capture.Completion.Wait(TimeSpan.FromSeconds(30)));
        Assert.Same(failure, failed.InnerException);
        capture.End();
        return archive;
    }

    [Fact]
    public void A_writer_that_fails_at_the_mark_fails_the_snapshot_instead_of_leaving_it_waiting()
    {
        // Not a failure StartCheckpoint answers itself (those fail the snapshot and the writer goes on): this one stops the writer.
        var broken = new NotSupportedException("writer broken");
        using FasterTransactionArchive archive = ArchiveWhoseCheckpointStartThrew(broken);
        // The writer is stopped, and says why.
        var stopped = Assert.Throws<InvalidOperationException>(archive.Flush);
        Assert.Same(broken, stopped.InnerException);
    }

    [Fact]
    public void A_checkpoint_that_cannot_start_fails_the_snapshot_and_the_archive_goes_on()
    {
        using FasterTransactionArchive archive = ArchiveWhoseCheckpointStartThrew(new IOException("disk gone"));
        // The writer is alive: later writes are applied and a later snapshot's checkpoint is taken.
        archive.CheckpointStarting = null;
        Transaction second = Order(2);
        archive.Put(Key(second), second);
        archive.Flush();
        Assert.True(archive.TryGetFromStoreForTest(Key(second), out _));
        ArchiveCapture next = archive.BeginCapture(new StateWriter());
        Assert.True(next.Completion.Wait(TimeSpan.FromSeconds(60)), "the next checkpoint never completed");
        next.End();
        Assert.NotNull(next.CheckpointToken);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(4096)]
    public void A_checkpoint_still_opens_after_the_store_forgot_past_where_it_began(int handoffEntries)
    {
        // Forgetting after a checkpoint drops the store's oldest segments; the checkpoint's log begins in them, and
        // FASTER refuses to recover from a log whose first segments are gone ("Unable to set first valid segment"):
        // a switch older than its memory of orders would skip every snapshot at its next start and replay history.
        const int memory = 1_000;
        const int before = 3_000;
        const int after = 12_000; // many segments of the small sizing: the horizon passes far beyond the checkpoint's begin
        ArchiveSizing sizing = ArchiveSizing.Small with { HandoffEntries = handoffEntries };
        string directory = _dir.Sub("archive");
        var state = new StateWriter();
        string token;
        long beginAtCheckpoint;
        void Write(FasterTransactionArchive archive, long id)
        {
            Transaction tx = Order(id);
            archive.Put(Key(tx), tx);
            archive.ForgetBelow(Math.Max(1, id - memory));
        }
        using (FasterTransactionArchive archive = FasterTransactionArchive.Create(directory, sizing))
        {
            for (int id = 1; id <= before; id++) Write(archive, id);
            ArchiveCapture capture = archive.BeginCapture(state);
            capture.WriteState(state);
            Assert.True(capture.Completion.Wait(TimeSpan.FromSeconds(60)), "the checkpoint never completed");
            capture.End();
            token = capture.CheckpointToken!;
            archive.Flush();
            beginAtCheckpoint = archive.BeginAddress;
            Assert.True(beginAtCheckpoint > 0, "the store forgot nothing before the checkpoint: the test shows nothing");
            archive.PurgeCheckpointsExcept(new HashSet<string> { token });
            for (int id = before + 1; id <= before + after; id++) Write(archive, id);
            archive.Flush();
            Assert.Equal(beginAtCheckpoint, archive.BeginAddress);
        }
        using FasterTransactionArchive reopened = FasterTransactionArchive.OpenAtCheckpoint(directory, sizing, token);
        var r = new StateReader(state.Written);
        reopened.RestoreScalars(ref r);
        for (int id = before - memory + 1; id <= before; id++)
        {
            Transaction tx = Order(id);
            Assert.True(reopened.TryGetFromStoreForTest(Key(tx), out Transaction got), $"order {id}, remembered at the checkpoint, is gone");
            Assert.Equal(tx.AmountFen, got.AmountFen);
        }
        // Held at the reopened checkpoint's begin (known from its metadata on disk) while it is kept, then let go.
        for (int id = before + 1; id <= before + after; id++) Write(reopened, id);
        reopened.Flush();
        Assert.Equal(beginAtCheckpoint, reopened.BeginAddress);
        reopened.PurgeCheckpointsExcept(new HashSet<string>());
        reopened.Flush();
        Assert.True(reopened.BeginAddress > beginAtCheckpoint, "the store kept its segments after no checkpoint needed them");
    }
}
