using Switch.Engine.Snapshots;
using Switch.Journal;
using System.Diagnostics;
using System.Text;
using Switch.Engine.Archive;
using Switch.Engine.Business;
using Switch.Engine.Events;

namespace Switch.Engine.Pipeline;

/// <summary>
/// Routing explained, from the journal: the records committed now are replayed into a fresh logic (never the live
/// one: it goes on undisturbed on its own thread) with a <see cref="IDecisionProbe"/> watching one order, and the replay
/// stops once that order is admitted. The logic is deterministic, so the inputs captured at that moment are the ones
/// the live logic decided on. Runs on the caller's thread; its cost is a replay up to the order (progress is reported).
/// </summary>
public static class DecisionReplay
{
    /// <summary>Refused attempts kept per explanation (the latest; the count goes on).</summary>
    public const int MaxDecisionsKept = 16;

    /// <summary>The replay's own archive of orders that leave its table: small, the explanation reads few.</summary>
    public static ArchiveSizing ArchiveSizing { get; } = new()
    {
        IndexBytes = 1L << 22, MemoryBytes = 1L << 24, PageBytes = 1L << 22, SegmentBytes = 1L << 26,
        FilterBytes = ArchiveSizing.FilterGenerations * 64L * (1 << 14),
    };

    /// <param name="scratchDirectory">Where the replay's archive lives while it runs (deleted after).</param>
    /// <param name="progress">Told every <paramref name="progressIntervalMs"/> how far the replay is (its thread).</param>
    public static DecisionReplayResult Run(SwitchEngine engine, string institution, string orderNo, string scratchDirectory,
        Action<ReplayProgress>? progress, int progressIntervalMs, CancellationToken cancel)
    {
        long started = Stopwatch.GetTimestamp();
        var probe = new OrderProbe(institution, orderNo);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        probe.Found = stop.Cancel;
        FasterTransactionArchive archive = FasterTransactionArchive.Create(scratchDirectory, ArchiveSizing);
        try
        {
            var sink = new DiscardingSink();
            var replay = new ReplayVisitor(config => new SwitchLogic(config, sink, archive) { DecisionProbe = probe }, progress, progressIntervalMs);
            // The history's start may have been retired after snapshots: it is read from the journal's archive first.
            long archived = JournalArchive.Replay(SnapshotStore.JournalArchiveDirectory(engine.DataDirectory), replay);
            if (archived != engine.Journal.RetiredRecords)
                throw new InvalidDataException($"journal: its archive holds {archived} records, the live journal begins at record {engine.Journal.RetiredRecords}");
            long records = stop.IsCancellationRequested ? archived : engine.Journal.ScanCommitted(replay, stop.Token);
            cancel.ThrowIfCancellationRequested();
            return new DecisionReplayResult(probe.Decisions, probe.Seen, records, replay.EventsReplayed,
                (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds, replay.Logic?.Config);
        }
        finally
        {
            archive.Dispose();
            try { Directory.Delete(scratchDirectory, recursive: true); }
            catch (IOException) { } // the next explain in this directory clears it (Create deletes what is there)
        }
    }

    /// <summary>Watches the transfers of one (institution, order number); done at the first one admitted.</summary>
    private sealed class OrderProbe(string institution, string orderNo) : IDecisionProbe
    {
        private readonly byte[] _institution = Encoding.UTF8.GetBytes(institution);
        private readonly byte[] _orderNo = Encoding.UTF8.GetBytes(orderNo);
        public List<DecisionRecord> Decisions { get; } = new();
        public long Seen { get; private set; }
        public Action? Found { get; set; }

        public bool Watches(ref InputEvent e) =>
            e.RequestType is RequestType.AgreementPayment or RequestType.Payout or RequestType.Refund
            && e.OrderNo.Span.SequenceEqual(_orderNo) && e.Institution.Span.SequenceEqual(_institution);

        public void Decided(DecisionRecord record)
        {
            Seen++;
            if (Decisions.Count == MaxDecisionsKept) Decisions.RemoveAt(0);
            Decisions.Add(record);
            // Admitted: later requests of the order are repeats answered from the transaction, not decisions.
            if (record.Admitted) Found?.Invoke();
        }
    }
}

/// <summary>What a decision replay found: the order's decisions, oldest first (the last is the admission when there was
/// one; at most <see cref="DecisionReplay.MaxDecisionsKept"/>, of <paramref name="DecisionsSeen"/>), and what it cost.</summary>
/// <param name="Config">The journal's configuration (its genesis), null for an empty journal.</param>
public sealed record DecisionReplayResult(IReadOnlyList<DecisionRecord> Decisions, long DecisionsSeen, long RecordsScanned,
    long EventsReplayed, long ElapsedMs, SwitchConfig? Config);
