using Switch.Engine.Archive;
using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Snapshots;

namespace Switch.Engine.Pipeline;

/// <summary>
/// One snapshot capture of a throwaway logic and archive at start, on a background thread: the first capture in a
/// process compiles the capture code (the logic's state, its copy-on-write captures of each array type, FASTER's
/// checkpoint machinery), which measured 4.7 to 8.3 ms of the first real snapshot's pause of the logic thread against
/// 0.2 to 0.4 ms for the next; and the mark (compiling its emission measured about 60 µs of the first snapshot's
/// <c>pause_mark_us</c>, loading the views' promise's types about 20, under load), and each array type's copy-aside
/// (<see cref="PageCapture{T}.WarmUp"/>). The throwaway logic has the live
/// configuration's participants and the smallest tables the rules allow, so it costs a few MiB, not the live tables'
/// hundreds.
/// </summary>
public static class SnapshotWarmUp
{
    /// <summary>The throwaway logic's table and tracked accounts (the rules' smallest).</summary>
    private const int WarmUpCapacity = 16;

    public static void Run(string directory, SwitchConfig live)
    {
        try
        {
            SwitchConfig config = live with
            {
                Rules = live.Rules with
                {
                    TransactionCapacity = WarmUpCapacity,
                    OrderMemoryTransactions = WarmUpCapacity,
                    MaxUnresolvedPerBank = 1,
                    MaxTrackedAccounts = WarmUpCapacity,
                },
            };
            using (FasterTransactionArchive archive = FasterTransactionArchive.Create(directory, ArchiveSizing.Small))
            {
                var tx = new Transaction { Id = 1, Status = TransactionStatus.Succeeded };
                tx.OrderNo.Set("warm-up");
                archive.Put(new ScopedKey(0, tx.OrderNo.Span), tx);
                var logic = new SwitchLogic(config, new DiscardingSink(), archive);
                SwitchLogic.Capture capture = logic.BeginCapture(new StateWriter());
                // Each array type's copy of a page aside and the writer's read of it: compiled here, not on the logic
                // thread in the burst after the first real snapshot (nor recompiled there: they skip tiering).
                foreach (ICapturedArray array in capture.Arrays) array.WarmUp();
                // The rest of the pause's first time: the mark emitted (into the throwaway's sink) and the views' promise.
                logic.EmitSnapshotMark(1);
                Snapshotter.NewViewsPromise().TrySetResult([]);
                capture.Archive.Completion.GetAwaiter().GetResult();
                capture.End();
            }
            Directory.Delete(directory, recursive: true);
        }
        catch (Exception e) when (e is IOException or FASTER.core.FasterException or InvalidOperationException)
        {
            // A warm-up only: the first real snapshot pauses longer, nothing else changes.
        }
    }
}
