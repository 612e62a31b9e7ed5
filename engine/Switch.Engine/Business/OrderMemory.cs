using Switch.Engine.Snapshots;
using System.Runtime.CompilerServices;

namespace Switch.Engine.Business;

/// <summary>
/// What the switch remembers of orders: the index (institution, order number) → retained transaction, the archive of
/// final transactions that left the table, and the eviction (or parking) that makes room for each new transaction.
/// One lookup for every path that names an order — repeats, queries, refunds — so none can execute or answer past
/// what another one sees. Owned by <see cref="SwitchLogic"/>, on its thread.
/// </summary>
public sealed class OrderMemory
{
    private readonly TransactionTable _transactions;
    /// <summary>(institution, order number) → retained transaction's slot: the idempotency index.</summary>
    private readonly OrderIndex _orders;
    /// <summary>Final transactions that left the table, still found by order number.</summary>
    private readonly ITransactionArchive _archive;
    private readonly long _orderMemoryTransactions;
    /// <summary>The copy an archive read lands in; valid until the next <see cref="Find"/>.</summary>
    private Transaction _archived;

    public OrderMemory(TransactionTable transactions, ITransactionArchive archive, long orderMemoryTransactions)
    {
        _transactions = transactions;
        _archive = archive;
        _orderMemoryTransactions = orderMemoryTransactions;
        _orders = new OrderIndex(transactions);
    }

    /// <summary>Orders of transactions older than this are forgotten: the idempotency window.</summary>
    private long OldestRememberedId => _transactions.LastId + 1 - _orderMemoryTransactions;

    /// <summary>
    /// An order the switch still remembers: retained (a ref to its slot), else archived (a ref to a copy; write a
    /// change back with <see cref="WriteBack"/>), else a null ref.
    /// </summary>
    public ref Transaction Find(in ScopedKey order, out bool archived) => ref Find(order, order.Hash64(), out archived);

    /// <summary><see cref="Find(in ScopedKey, out bool)"/> with the order's <see cref="ScopedKey.Hash64"/>, for a caller
    /// that needs it again (<see cref="Remember"/>).</summary>
    public ref Transaction Find(in ScopedKey order, ulong orderHash, out bool archived)
    {
        archived = false;
        int slot = _orders.Find(order, orderHash);
        if (slot >= 0)
        {
            return ref _transactions[slot];
        }
        if (_archive.TryGet(order, out _archived) && _archived.Id >= OldestRememberedId)
        {
            if (!_archived.IsFinal || _archived.Id >= _transactions.OldestRetainedId)
            {
                throw new InvalidOperationException($"logic: archived {_archived.Id} is not final or is still retained");
            }
            archived = true;
            return ref _archived;
        }
        return ref Unsafe.NullRef<Transaction>();
    }

    /// <summary>A change to an archived transaction found by <see cref="Find"/>.</summary>
    public void WriteBack(in ScopedKey order, in Transaction tx) => _archive.Update(order, tx);

    /// <summary>The slot the next issued transaction takes is freed: its final occupant archived, an unresolved one
    /// parked to wait for its bank.</summary>
    public void MakeRoomForNext()
    {
        ref Transaction slot = ref _transactions.NextSlot;
        if (slot.Id == 0)
        {
            return;
        }
        int index = _transactions.NextIndex;
        ulong hash = slot.Id == _nextToLeaveId ? _nextToLeaveHash : OrderOf(in slot).Hash64();
        if (slot.IsFinal)
        {
            Evict(ref slot, index, hash);
        }
        else
        {
            _orders.Move(hash, index, _transactions.ParkNext());
        }
        // The next transaction to leave is known now: its index entry, a random cache miss, loads meanwhile.
        ref readonly Transaction following = ref _transactions.Read(_transactions.FollowingIndex);
        if (following.Id != 0)
        {
            _nextToLeaveId = following.Id;
            _nextToLeaveHash = OrderOf(in following).Hash64();
            _orders.Prefetch(_nextToLeaveHash);
            _archive.Prefetch(_nextToLeaveHash, forPut: true); // its filter block if it goes to the archive: as random
        }
    }

    /// <summary>The transaction <see cref="MakeRoomForNext"/> makes room from next time, by id (ids are never reused, so
    /// a stale one matches nothing), and its order's hash: computed once for its prefetch, its index removal and its
    /// archive write. A cache of the table's contents, not state: a fresh or restored instance just computes it.</summary>
    private long _nextToLeaveId;
    private ulong _nextToLeaveHash;

    /// <summary>Starts loading what <see cref="Find(in ScopedKey, ulong, out bool)"/> will read for this hash: the index
    /// entry and, since a new order (the common case) goes on to the archive, the archive's first reads.</summary>
    public void Prefetch(ulong orderHash)
    {
        _orders.Prefetch(orderHash);
        _archive.Prefetch(orderHash, forPut: false);
    }

    public ITransactionArchive Archive => _archive;

    /// <summary>After the scalars' restore: the archive's arrays, then the index <see cref="RebuildIndex"/> writes.</summary>
    public void PrefaultForRestore(Prefaulter prefault)
    {
        _archive.PrefaultForRestore(prefault);
        _orders.PrefaultForRestore(prefault);
    }

    /// <summary>Index entries whose cache misses <see cref="RebuildIndex"/> starts ahead of their inserts.</summary>
    private const int RebuildPrefetchDistance = 16;

    /// <summary>After a restore: the index holds every retained transaction's order (it is not in the snapshot). The
    /// table's slots in order, each insert's index entry (a random cache miss) loading
    /// <see cref="RebuildPrefetchDistance"/> slots ahead, so the misses overlap: the rebuild was a sixth of the
    /// restore's time, most of it waiting on them one at a time.</summary>
    public void RebuildIndex()
    {
        if (_orders.Count != 0) throw new InvalidOperationException("order memory: rebuilding a non-empty index");
        _nextToLeaveId = 0; // the restored table is another's: its ids may name other orders
        Span<ulong> hashes = stackalloc ulong[RebuildPrefetchDistance];
        Span<int> slots = stackalloc int[RebuildPrefetchDistance];
        int queued = 0; // slots in the window: the oldest is (queued - RebuildPrefetchDistance) once full
        int slotCount = _transactions.Capacity + _transactions.ParkedCapacity;
        for (int index = 0; index < slotCount; index++)
        {
            ref readonly Transaction tx = ref _transactions.Read(index);
            if (tx.Id == 0) continue;
            int at = queued % RebuildPrefetchDistance;
            if (queued >= RebuildPrefetchDistance) Insert(hashes[at], slots[at]);
            hashes[at] = OrderOf(in tx).Hash64();
            slots[at] = index;
            _orders.Prefetch(hashes[at]);
            queued++;
        }
        for (int i = Math.Max(0, queued - RebuildPrefetchDistance); i < queued; i++) Insert(hashes[i % RebuildPrefetchDistance], slots[i % RebuildPrefetchDistance]);
    }

    private void Insert(ulong hash, int index)
    {
        ref readonly Transaction tx = ref _transactions.Read(index);
        if (_orders.Find(OrderOf(in tx), hash) >= 0)
            throw new InvalidDataException($"snapshot: transaction {tx.Id}'s order is held by another retained transaction");
        _orders.Add(hash, index);
    }

    /// <summary>A newly issued transaction's order, by its hash (the caller found it nowhere under that hash).</summary>
    public void Remember(ulong orderHash, long id)
    {
        if (!_transactions.TryFind(id, out int index)) throw new InvalidOperationException($"order memory: remembering {id}, which is not retained");
        _orders.Add(orderHash, index);
    }

    /// <summary>Retained orders in the index (for checks).</summary>
    public int IndexedCount => _orders.Count;

    /// <summary>Whether a look-up of the order of the transaction in table slot <paramref name="index"/> finds that slot
    /// (for checks).</summary>
    public bool FindsAt(int index)
    {
        ScopedKey order = OrderOf(in _transactions.Read(index));
        return _orders.Find(order, order.Hash64()) == index;
    }

    /// <summary>Slots of the order index: its memory is 8 bytes each.</summary>
    public int IndexSlots => _orders.Slots;

    private static ScopedKey OrderOf(in Transaction tx) => new(tx.InstitutionIndex, tx.OrderNo.Span);

    /// <summary>A transaction just made final: a parked one waited only for its outcome, and now goes to the archive
    /// like any evicted one.</summary>
    public void Finalised(ref Transaction tx)
    {
        if (_transactions.TryFind(tx.Id, out int index) && _transactions.IsParked(index))
        {
            Evict(ref tx, index, OrderOf(in tx).Hash64());
            _transactions.Unpark(index);
        }
    }

    /// <summary>
    /// A final transaction leaves the table for the archive, where its order number is still found; the archive may
    /// forget what is past the switch's memory of orders.
    /// </summary>
    private void Evict(ref Transaction old, int index, ulong orderHash)
    {
        if (!old.IsFinal) throw new InvalidOperationException($"logic: evicting {old.Id} which is not final");
        ScopedKey order = OrderOf(in old);
        _orders.Remove(orderHash, index);
        _archive.Put(order, orderHash, old);
        _archive.ForgetBelow(OldestRememberedId);
    }
}
