using Switch.Engine.Archive;
using Switch.Engine.Business;
using Switch.Engine.Pipeline;

namespace Switch.Engine.Snapshots;

/// <summary>
/// For audits: replays the whole history from the genesis (the journal's archive, then the live journal) and checks
/// that it reproduces, at each kept snapshot's position, that snapshot's state hash. Offline: on a stopped switch's
/// data directory or a copy (it takes the journal's lock).
/// </summary>
public static class HistoryVerifier
{
    /// <param name="Reached">The replay came to the snapshot's position (false: the history ends before it).</param>
    public sealed record Result(string Snapshot, long RecordNo, ulong SnapshotHash, ulong ReplayHash, bool Reached)
    {
        public bool Agrees => Reached && SnapshotHash == ReplayHash;
    }

    public static IReadOnlyList<Result> Verify(string dataDirectory, long segmentBytes = EngineOptions.DefaultJournalSegmentBytes)
    {
        var expected = new Dictionary<long, (string Path, ulong Hash)>();
        foreach ((long recordNo, string path) in new SnapshotStore(dataDirectory).List())
        {
            expected[recordNo] = (path, StateHashOf(path));
        }
        var results = new List<Result>();
        JournalReplay.Run(dataDirectory, new DiscardingSink(), (recordNo, logic) =>
        {
            if (expected.Remove(recordNo, out var snapshot))
            {
                results.Add(new Result(Path.GetFileName(snapshot.Path), recordNo, snapshot.Hash, logic.StateHash(), Reached: true));
            }
        }, segmentBytes);
        foreach ((long recordNo, (string path, ulong hash)) in expected)
        {
            results.Add(new Result(Path.GetFileName(path), recordNo, hash, 0, Reached: false));
        }
        results.Sort((a, b) => a.RecordNo.CompareTo(b.RecordNo));
        return results;
    }

    /// <summary>A snapshot's state hash: the logic restored from it (without its archive, which the hash does not cover),
    /// the whole file checked.</summary>
    public static ulong StateHashOf(string path)
    {
        using SnapshotFile.Opened opened = SnapshotFile.Open(path);
        SwitchLogic logic = SwitchLogic.Restore(opened.Config, opened.State, opened.Arrays, new DiscardingSink(), new SkippingArchive());
        opened.Arrays.ReadViews();
        opened.Arrays.VerifyEnd();
        return logic.StateHash();
    }

    /// <summary>Takes a snapshot's archive section without a store: the parts are read past, nothing is kept.</summary>
    private sealed class SkippingArchive : ITransactionArchive
    {
        private int _arrays;

        public void RestoreScalars(ref StateReader r) => _arrays = FasterTransactionArchive.SkipSnapshotScalars(ref r);

        public void RestoreArrays(SnapshotArrayReader arrays)
        {
            for (int i = 0; i < _arrays; i++) arrays.Skip($"archive filter generation {i}");
        }

        public void Put(in ScopedKey order, in Transaction tx) => throw new InvalidOperationException("verification: no archive");
        public void Update(in ScopedKey order, in Transaction tx) => throw new InvalidOperationException("verification: no archive");
        public bool TryGet(in ScopedKey order, out Transaction tx) => throw new InvalidOperationException("verification: no archive");
        public void ForgetBelow(long id) => throw new InvalidOperationException("verification: no archive");
        public ArchiveCapture BeginCapture(StateWriter w, PauseTimer? pause = null) => throw new InvalidOperationException("verification: no archive");
        public void Dispose() { }
    }
}
