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
    public void A_checkpoint_that_cannot_start_fails_the_snapshot_and_the_archive_goes_on()
    {
        ArchiveSizing sizing = ArchiveSizing.Small with { HandoffEntries = 4096 };
        using FasterTransactionArchive archive = FasterTransactionArchive.Create(_dir.Sub("archive"), sizing);
        archive.CheckpointStarting = () => throw new IOException("disk gone");
        Transaction first = Order(1);
        archive.Put(Key(first), first);
        ArchiveCapture capture = archive.BeginCapture(new StateWriter());
        var failure = Assert.Throws<AggregateException>(() => capture.Completion.Wait(TimeSpan.FromSeconds(30)));
        Assert.Contains("disk gone", failure.InnerException!.Message);
        capture.End();
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
}
