using Switch.Engine.Snapshots;

namespace Switch.Engine.Business;

/// <summary>
/// The archive in memory, for tools and tests that replay a journal without a data directory of their own. It
/// keeps the same horizon as the disk archive (the logic's rule), so it holds at most that many transactions.
/// </summary>
public sealed class MemoryTransactionArchive : ITransactionArchive
{
    private readonly Dictionary<ScopedKey, Transaction> _byOrder = new();
    /// <summary>Archive order is nearly id order (the table evicts oldest first; a parked transaction comes later), so
    /// forgetting pops from the front while the front is past the horizon: a late one is kept a little longer, never less.</summary>
    private readonly Queue<(long Id, ScopedKey Order)> _byAge = new();

    public int Count => _byOrder.Count;

    public void Put(in ScopedKey order, in Transaction tx)
    {
        // A new transaction under this key (the number reused after it was forgotten) ages from now.
        if (_byOrder.TryGetValue(order, out Transaction held) && held.Id == tx.Id) throw new InvalidOperationException($"archive: {tx.Id} put twice");
        _byAge.Enqueue((tx.Id, order));
        _byOrder[order] = tx;
    }

    public void Update(in ScopedKey order, in Transaction tx)
    {
        if (!_byOrder.TryGetValue(order, out Transaction held) || held.Id != tx.Id) throw new InvalidOperationException($"archive: update of {tx.Id}, which is not archived");
        _byOrder[order] = tx; // keeps its age
    }

    public bool TryGet(in ScopedKey order, out Transaction tx) => _byOrder.TryGetValue(order, out tx);

    public void ForgetBelow(long id)
    {
        while (_byAge.TryPeek(out var oldest) && oldest.Id < id)
        {
            _byAge.Dequeue();
            // Only if the key still holds that transaction: a reused number's newer one stays.
            if (_byOrder.TryGetValue(oldest.Order, out Transaction held) && held.Id == oldest.Id) _byOrder.Remove(oldest.Order);
        }
    }

    /// <summary>Everything, in age order: a memory archive is small (tools and tests), so the snapshot holds it whole.</summary>
    public ArchiveCapture BeginCapture(StateWriter w, PauseTimer? pause = null)
    {
        w.Section("memory-archive");
        w.Int(_byAge.Count);
        foreach ((long id, ScopedKey order) in _byAge)
        {
            w.Long(id);
            w.Value(in order);
            bool held = _byOrder.TryGetValue(order, out Transaction tx) && tx.Id == id;
            w.Bool(held);
            if (held) w.Value(in tx);
        }
        return ArchiveCapture.None;
    }

    public void RestoreScalars(ref StateReader r)
    {
        r.Section("memory-archive");
        int count = r.Int();
        if (count < 0) throw new InvalidDataException($"snapshot: {count} archived transactions");
        _byAge.Clear();
        _byOrder.Clear();
        for (int i = 0; i < count; i++)
        {
            long id = r.Long();
            ScopedKey order = r.Value<ScopedKey>();
            _byAge.Enqueue((id, order));
            if (r.Bool()) _byOrder[order] = r.Value<Transaction>();
        }
    }

    public void RestoreArrays(SnapshotArrayReader arrays)
    {
    }

    public void Dispose()
    {
    }
}
