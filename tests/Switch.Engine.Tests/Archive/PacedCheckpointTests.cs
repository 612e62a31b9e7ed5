using System.Diagnostics;
using Switch.Engine.Archive;
using Switch.Engine.Business;
using Switch.Engine.Snapshots;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Archive;

/// <summary>
/// The archive's checkpoint at a snapshot (its hash index, its fold-over) goes to disk in slices under the snapshots'
/// write budget, not at the disk's speed in one burst beside the journal; and an archive opened at that checkpoint is the
/// one that was checkpointed.
/// </summary>
public sealed class PacedCheckpointTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>4 MiB of index (4 slices) and 64 KiB pages (each one paced when folded over).</summary>
    private static readonly ArchiveSizing Sizing = ArchiveSizing.Small with
    {
        IndexBytes = 4L << 20, PageBytes = 1L << 16, MemoryBytes = 1L << 20, MaxMutableBytes = 1L << 18, SegmentBytes = 1L << 20,
    };

    private static void PutOrders(FasterTransactionArchive archive, int count)
    {
        for (int id = 1; id <= count; id++)
        {
            Transaction tx = default;
            tx.Id = id;
            tx.AmountFen = id * 100L;
            tx.OrderNo.Set($"O{id}");
            archive.Put(new ScopedKey(1, tx.OrderNo.Span), tx);
        }
    }

    [Fact]
    public void A_checkpoint_is_written_in_slices_under_the_budget_and_opens_as_taken()
    {
        var sleeps = new List<TimeSpan>();
        long nowTicks = 0;
        // A clock the sleeps move: what the pacer asks for, not how fast this machine is.
        var pacer = new WritePacer(8L << 20, () => Volatile.Read(ref nowTicks), wait =>
        {
            lock (sleeps) sleeps.Add(wait);
            Interlocked.Add(ref nowTicks, (long)(wait.TotalSeconds * Stopwatch.Frequency));
        });
        string directory = _dir.Sub("archive");
        string token;
        long tail;
        using (FasterTransactionArchive archive = FasterTransactionArchive.Create(directory, Sizing, pacer))
        {
            PutOrders(archive, 5_000); // about 2 MB of log: memory and the mutable region full
            ArchiveCapture capture = archive.BeginCapture(new StateWriter());
            Assert.True(capture.Completion.Wait(60_000), "the paced checkpoint never completed");
            capture.End();
            token = capture.CheckpointToken!;
            tail = archive.TailAddress;
            Assert.True(capture.FoldOverBytes >= PacedWrites.MinPacedBytes, $"fold-over of {capture.FoldOverBytes} bytes: the test means one that is paced");
            // The index (4 MiB) and the fold-over went through the budget, a slice at a time.
            // Only those: the index and the log below the tail at the capture (a page rounds the fold-over up).
            Assert.InRange(archive.CheckpointBytesPaced, Sizing.IndexBytes + PacedWrites.MinPacedBytes, Sizing.IndexBytes + capture.FoldOverBytes + Sizing.PageBytes);
        }
        // 8 MiB/s: over 4 MiB of slices is over half a second, less the pacer's credit (50 ms): several sleeps.
        Assert.True(pacer.Slept >= TimeSpan.FromMilliseconds(400), $"slept {pacer.Slept.TotalMilliseconds} ms");
        Assert.True(sleeps.Count >= 4, $"{sleeps.Count} sleeps");

        using FasterTransactionArchive reopened = FasterTransactionArchive.OpenAtCheckpoint(directory, Sizing, token, pacer);
        Assert.Equal(tail, reopened.TailAddress);
    }

    [Fact]
    public void Outside_a_checkpoint_the_logs_page_flushes_are_not_paced()
    {
        int sleeps = 0;
        var pacer = new WritePacer(1L << 20, () => 0, _ => Interlocked.Increment(ref sleeps));
        using FasterTransactionArchive archive = FasterTransactionArchive.Create(_dir.Sub("archive"), Sizing, pacer);
        PutOrders(archive, 20_000); // about 8 MB: memory (1 MiB) is flushed many times over
        archive.Flush();
        Assert.Equal(0, archive.CheckpointBytesPaced);
        Assert.Equal(0, Volatile.Read(ref sleeps)); // the log's own flushes never wait for the budget
    }
}
