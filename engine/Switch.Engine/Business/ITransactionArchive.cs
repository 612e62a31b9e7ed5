using Switch.Engine.Snapshots;

namespace Switch.Engine.Business;

/// <summary>
/// Where a final transaction goes when its slot in the retained table is needed for a new one, so that an order
/// number is still known after it leaves memory: a repeat returns the first outcome (never a second payment), a
/// query answers, a refund finds its original. Keyed by (institution, order number). Written and read only by the
/// logic thread, in journal order, so it is derived state: a replay into an empty archive rebuilds it exactly.
/// How far back it remembers is the logic's rule (<see cref="RulesConfig.OrderMemoryTransactions"/>), not the store's.
/// </summary>
public interface ITransactionArchive : IDisposable
{
    /// <summary>Stores <paramref name="tx"/>, which just left the table, under its key (replacing a forgotten predecessor
    /// of a reused number). Ids mostly rise, but not always: a parked transaction leaves when it becomes final.</summary>
    void Put(in ScopedKey order, in Transaction tx);

    /// <summary><see cref="Put(in ScopedKey, in Transaction)"/> by a caller that has the order's
    /// <see cref="ScopedKey.Hash64"/> already.</summary>
    void Put(in ScopedKey order, ulong orderHash, in Transaction tx) => Put(order, tx);

    /// <summary>Replaces the archived copy of <paramref name="tx"/> (a refund's bookkeeping on its original).</summary>
    void Update(in ScopedKey order, in Transaction tx);

    /// <summary>A hint, read a little before the call it speeds: starts loading what <see cref="TryGet"/> (or, with
    /// <paramref name="forPut"/>, <see cref="Put"/>) of an order with this <see cref="ScopedKey.Hash64"/> reads first.
    /// Changes nothing.</summary>
    void Prefetch(ulong orderHash, bool forPut) { }

    /// <summary>The archived copy of <paramref name="order"/>, if any.</summary>
    bool TryGet(in ScopedKey order, out Transaction tx);

    /// <summary>Every transaction with an id below <paramref name="id"/> may be forgotten (it is past the logic's memory).</summary>
    void ForgetBelow(long id);

    /// <summary>Snapshot, on the logic thread: writes what the archive keeps in memory and fixes its contents as of
    /// this instant (see <see cref="ArchiveCapture"/>). <paramref name="pause"/>: its parts timed, if given.</summary>
    ArchiveCapture BeginCapture(StateWriter w, PauseTimer? pause = null);

    /// <summary>At start, off the logic thread: the pages its captures copy aside into, allocated and faulted in
    /// (<see cref="Snapshots.AsideReserve{T}"/>); returns their bytes. None by default.</summary>
    long FillAsideReserve() => 0;

    /// <summary>Restore, into an archive opened at the snapshot's checkpoint: what <see cref="BeginCapture"/> wrote.</summary>
    void RestoreScalars(ref StateReader r);

    /// <summary>Restore: the arrays of the capture, in its order.</summary>
    void RestoreArrays(SnapshotArrayReader arrays);

    /// <summary>Restore, after <see cref="RestoreScalars"/>: the arrays <see cref="RestoreArrays"/> will write, for a
    /// helper to fault in ahead (none: they fault as they are written).</summary>
    void PrefaultForRestore(Prefaulter prefault) { }
}
