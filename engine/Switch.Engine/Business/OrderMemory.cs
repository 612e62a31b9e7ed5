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
    /// <summary>(institution, order number) → transaction id: the idempotency index.</summary>
    private readonly Dictionary<ScopedKey, long> _orders;
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
        _orders = new Dictionary<ScopedKey, long>(transactions.Capacity);
    }

    /// <summary>Orders of transactions older than this are forgotten: the idempotency window.</summary>
    private long OldestRememberedId => _transactions.LastId + 1 - _orderMemoryTransactions;

    /// <summary>
    /// An order the switch still remembers: retained (a ref to its slot), else archived (a ref to a copy; write a
    /// change back with <see cref="WriteBack"/>), else a null ref.
    /// </summary>
    public ref Transaction Find(in ScopedKey order, out bool archived)
    {
        archived = false;
        if (_orders.TryGetValue(order, out long id))
        {
            return ref _transactions.ById(id);
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
        if (slot.IsFinal)
        {
            Evict(ref slot);
        }
        else
        {
            _transactions.ParkNext();
        }
    }

    public ITransactionArchive Archive => _archive;

    /// <summary>After a restore: the index holds every retained transaction's order (it is not in the snapshot).</summary>
    public void RebuildIndex()
    {
        if (_orders.Count != 0) throw new InvalidOperationException("order memory: rebuilding a non-empty index");
        foreach (long id in _transactions.RetainedIds())
        {
            ref Transaction tx = ref _transactions.ById(id);
            if (!_orders.TryAdd(new ScopedKey(tx.InstitutionIndex, tx.OrderNo.Span), id))
                throw new InvalidDataException($"snapshot: transaction {id}'s order is held by another retained transaction");
        }
    }

    /// <summary>A newly issued transaction's order.</summary>
    public void Remember(in ScopedKey order, long id) => _orders.Add(order, id);

    /// <summary>A transaction just made final: a parked one waited only for its outcome, and now goes to the archive
    /// like any evicted one.</summary>
    public void Finalised(ref Transaction tx)
    {
        if (_transactions.TryFind(tx.Id, out int index) && _transactions.IsParked(index))
        {
            Evict(ref tx);
            _transactions.Unpark(index);
        }
    }

    /// <summary>
    /// A final transaction leaves the table for the archive, where its order number is still found; the archive may
    /// forget what is past the switch's memory of orders.
    /// </summary>
    private void Evict(ref Transaction old)
    {
        if (!old.IsFinal) throw new InvalidOperationException($"logic: evicting {old.Id} which is not final");
        var order = new ScopedKey(old.InstitutionIndex, old.OrderNo.Span);
        bool removed = _orders.Remove(order);
        if (!removed) throw new InvalidOperationException($"logic: evicted {old.Id} had no order index entry");
        _archive.Put(order, old);
        _archive.ForgetBelow(OldestRememberedId);
    }
}
