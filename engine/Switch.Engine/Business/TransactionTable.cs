using Switch.Engine.Hashing;
using Switch.Engine.Snapshots;

namespace Switch.Engine.Business;

/// <summary>
/// The retained transactions: a fixed ring of slots indexed by id, plus a small parked table. Ids are issued in
/// order, so the slot a new transaction needs holds the oldest retained one: a final one is evicted to the archive;
/// one that is not final yet (its bank is slow or away) moves to the parked table, so one unresolved transaction
/// never holds back anyone else's new work. The parked table's capacity is the sum of the banks' bounds on unresolved
/// transactions (the logic refuses a bank's new work at its bound), so it cannot overflow. Memory is bounded by the
/// two capacities whatever the volume, and a lookup by id stays <c>id &amp; mask</c> unless the id is older than the
/// ring (then one probe of the parked index).
/// </summary>
public sealed class TransactionTable
{
    private readonly Transaction[] _slots;
    /// <summary>Capacity is a power of two, so a slot is id &amp; mask: no division on the hot path.</summary>
    private readonly long _mask;
    /// <summary>Transactions that left the ring while not final; a free slot has Id 0.</summary>
    private readonly Transaction[] _parked;
    /// <summary>Free parked slots, a stack (deterministic: the same events park in the same slots).</summary>
    private readonly int[] _freeParked;
    private int _freeParkedCount;
    private readonly ParkedIndex _parkedIndex;
    /// <summary>While a snapshot copies the two arrays (null otherwise): every access that may write goes through
    /// <see cref="PageCapture{T}.Touch"/> first, so the snapshot gets each page as it was when it began.</summary>
    private PageCapture<Transaction>? _ringCapture;
    private PageCapture<Transaction>? _parkedCapture;
    /// <summary>The captures every snapshot reuses (<see cref="PageCapture{T}.Begin"/>): none made in a pause.</summary>
    private readonly PageCapture<Transaction> _ringKept;
    private readonly PageCapture<Transaction> _parkedKept;

    public TransactionTable(int capacity, int parkedCapacity)
    {
        if (capacity <= 0 || (capacity & (capacity - 1)) != 0) throw new ArgumentOutOfRangeException(nameof(capacity), "a power of two");
        if (parkedCapacity <= 0) throw new ArgumentOutOfRangeException(nameof(parkedCapacity), "at least one");
        // Not in huge pages, unlike the order index: a restart writes all of it at once from the snapshot, and the kernel
        // finding 2 MiB pages for this and the other large tables took the restart from 1.1 to 2.0 s (RecoveryBench, 3 M
        // transactions), against 0.2 µs or less a transaction of the logic thread at 180,000/s.
        _slots = new Transaction[capacity];
        _mask = capacity - 1;
        _parked = new Transaction[parkedCapacity];
        _freeParked = new int[parkedCapacity];
        for (int i = 0; i < parkedCapacity; i++) _freeParked[i] = parkedCapacity - 1 - i;
        _freeParkedCount = parkedCapacity;
        _parkedIndex = new ParkedIndex(parkedCapacity);
        // One reserve for the ring and the parked table (its pages the ring's, at least as long as the parked table's),
        // as large as both at most; how much of it is filled is the engine's choice (FillAsideReserve).
        int ringPageItems = PageCapture<Transaction>.PageItemsFor(capacity);
        var aside = new AsideReserve<Transaction>(Math.Max(ringPageItems, PageCapture<Transaction>.PageItemsFor(parkedCapacity)),
            PageCapture<Transaction>.PagesFor(capacity) + PageCapture<Transaction>.PagesFor(parkedCapacity));
        _ringKept = new PageCapture<Transaction>(_slots, aside);
        _parkedKept = new PageCapture<Transaction>(_parked, aside);
    }

    public int Capacity => _slots.Length;
    public int ParkedCapacity => _parked.Length;
    public int ParkedCount => _parked.Length - _freeParkedCount;
    /// <summary>The last id issued; ids start at 1.</summary>
    public long LastId { get; private set; }

    /// <summary>The slot the next id will take; its current occupant (if any) is the one to evict or park.</summary>
    public ref Transaction NextSlot => ref Ring(NextIndex);

    private ref Transaction Ring(int index)
    {
        _ringCapture?.Touch(index);
        return ref _slots[index];
    }

    private ref Transaction Parked(int p)
    {
        _parkedCapture?.Touch(p);
        return ref _parked[p];
    }

    /// <summary>The slot (for <see cref="this[int]"/>) of <see cref="NextSlot"/>.</summary>
    public int NextIndex => (int)(LastId & _mask);

    /// <summary>The slot the id after the next will take: the next one to evict or park once the next is issued.</summary>
    public int FollowingIndex => (int)((LastId + 1) & _mask);

    /// <summary>Moves the occupant of <see cref="NextSlot"/>, which is not final, to the parked table, freeing its slot;
    /// returns its new slot (for <see cref="this[int]"/>).</summary>
    public int ParkNext()
    {
        ref Transaction slot = ref NextSlot;
        if (slot.Id == 0 || slot.IsFinal) throw new InvalidOperationException($"transaction table: parking {slot.Id}, which is final or empty");
        if (_freeParkedCount == 0)
        {
            throw new InvalidOperationException("transaction table: parked table full (more unresolved transactions than the banks' bounds allow)");
        }
        int p = _freeParked[--_freeParkedCount];
        Parked(p) = slot;
        _parkedIndex.Add(slot.Id, p);
        slot = default;
        return _slots.Length + p;
    }

    /// <summary>Frees the parked slot of a transaction that became final (the caller has archived it).</summary>
    public void Unpark(int index)
    {
        if (!IsParked(index)) throw new ArgumentOutOfRangeException(nameof(index), "not a parked slot");
        int p = index - _slots.Length;
        ref Transaction tx = ref Parked(p);
        if (!tx.IsFinal) throw new InvalidOperationException($"transaction table: unparking {tx.Id}, which is not final");
        _parkedIndex.Remove(tx.Id);
        tx = default;
        _freeParked[_freeParkedCount++] = p;
    }

    /// <summary>Issues the next id in <see cref="NextSlot"/>, which the caller has emptied (evicted or parked).</summary>
    public ref Transaction Issue()
    {
        ref Transaction slot = ref NextSlot;
        if (slot.Id != 0 && !slot.IsFinal)
        {
            throw new InvalidOperationException($"transaction table: slot of {slot.Id} reused while not final");
        }
        LastId++;
        slot = default;
        slot.Id = LastId;
        return ref slot;
    }

    /// <summary>True when <paramref name="id"/> is still retained (in the ring or parked); then <paramref name="index"/>
    /// is its slot for <see cref="this[int]"/>.</summary>
    /// <summary>A hint: starts loading the ring slot of retained transaction <paramref name="id"/> (a parked one is
    /// not worth its index look-up). Changes nothing.</summary>
    public void Prefetch(long id)
    {
        if (id > 0 && id <= LastId && id > LastId - _slots.Length) CacheLine.Prefetch(ref _slots[(int)((id - 1) & _mask)]);
    }

    public bool TryFind(long id, out int index)
    {
        index = -1;
        if (id <= 0 || id > LastId)
        {
            return false;
        }
        if (id > LastId - _slots.Length)
        {
            index = (int)((id - 1) & _mask);
            return _slots[index].Id == id;
        }
        if (_freeParkedCount < _parked.Length && _parkedIndex.TryGet(id, out int p))
        {
            index = _slots.Length + p;
            return true;
        }
        return false;
    }

    /// <summary>A slot: below <see cref="Capacity"/> in the ring, above it in the parked table.</summary>
    public ref Transaction this[int index] => ref index < _slots.Length ? ref Ring(index) : ref Parked(index - _slots.Length);

    public bool IsParked(int index) => index >= _slots.Length;

    /// <summary>A slot, to read only: no copy-on-write check (a snapshot's capture needs none for reads).</summary>
    public ref readonly Transaction Read(int index) => ref index < _slots.Length ? ref _slots[index] : ref _parked[index - _slots.Length];

    public ref Transaction ById(long id)
    {
        if (!TryFind(id, out int index))
        {
            throw new InvalidOperationException($"transaction table: {id} is not retained");
        }
        return ref this[index];
    }

    /// <summary>The ring's transactions are this id to <see cref="LastId"/>; parked ones are older.</summary>
    public long OldestRetainedId => Math.Max(1, LastId - _slots.Length + 1);

    /// <summary>Parked slot <paramref name="p"/> (0 to <see cref="ParkedCapacity"/>); Id 0 when free.</summary>
    public ref Transaction ParkedAt(int p) => ref Parked(p);

    /// <summary>Every retained id: the ring's oldest first, then the parked ones in slot order. Allocates: for checks
    /// and tools, never the hot path.</summary>
    public IEnumerable<long> RetainedIds()
    {
        for (long id = OldestRetainedId; id <= LastId; id++)
        {
            if (TryFind(id, out _)) yield return id;
        }
        for (int p = 0; p < _parked.Length; p++)
        {
            long id = _parked[p].Id;
            if (id != 0) yield return id;
        }
    }

    /// <summary>
    /// Snapshot, on the logic thread: writes the scalars now and starts the copy-on-write captures of the ring and the
    /// parked table, whose pages the snapshot writer then copies (<see cref="EndCapture"/> when it has them all). The
    /// parked index is not written: it is rebuilt from the parked table.
    /// </summary>
    public void Save(StateWriter w)
    {
        w.Section("table");
        w.Long(LastId);
        w.Int(_slots.Length);
        w.Int(_parked.Length);
        w.Array<int>(_freeParked.AsSpan(0, _freeParkedCount));
    }

    /// <summary>After <see cref="Save"/>, before any change: the ring and the parked table as they are now.</summary>
    public (PageCapture<Transaction> Ring, PageCapture<Transaction> Parked) BeginCapture()
    {
        if (_ringCapture is not null || _parkedCapture is not null) throw new InvalidOperationException("transaction table: a capture is running");
        _ringKept.Begin();
        _parkedKept.Begin();
        (_ringCapture, _parkedCapture) = (_ringKept, _parkedKept);
        return (_ringKept, _parkedKept);
    }

    /// <summary>The writer has every page (or failed): accesses stop checking. (A logic thread that still sees the old
    /// reference finds every page taken and goes on; after a failed writer it may copy a page aside, which the next
    /// <see cref="BeginCapture"/> gives back.)</summary>
    public void EndCapture()
    {
        _ringCapture = null;
        _parkedCapture = null;
    }

    /// <summary>Pages of the ring a snapshot's copy-aside may need.</summary>
    public int RingPages => _ringKept.Pages;
    public long AsidePageBytes => _ringKept.Reserve.PageBytes;

    /// <summary>At start, off the logic thread: <paramref name="ringPages"/> pages aside for the ring and one for the
    /// parked table, allocated and faulted in, and no more kept; returns their bytes. The ring is written in order, a page
    /// every 1,024 transactions, so unlike the arrays touched at random its copy-aside is no burst: what the reserve
    /// lacks is allocated a page at a time (counted). The parked table's free slots are a stack from slot 0, so up to
    /// 1,024 transactions parked at once lie in its first page.</summary>
    public long FillAsideReserve(int ringPages) => _ringKept.Reserve.Fill(ringPages + ParkedAsidePages);

    private const int ParkedAsidePages = 1;

    /// <summary>Restore, before any event: the scalars <see cref="BeginCapture"/> wrote. The pages go into
    /// <see cref="RingForRestore"/> and <see cref="ParkedForRestore"/>, then <see cref="FinishRestore"/>.</summary>
    public void RestoreScalars(ref StateReader r)
    {
        r.Section("table");
        long lastId = r.Long();
        r.Expect(_slots.Length, "table slots (rules.transactionCapacity)");
        r.Expect(_parked.Length, "parked slots (banks × rules.maxUnresolvedPerBank)");
        ReadOnlySpan<int> free = r.Array<int>(_parked.Length);
        if (lastId < 0) throw new InvalidDataException($"snapshot: last transaction id {lastId}");
        LastId = lastId;
        free.CopyTo(_freeParked);
        _freeParkedCount = free.Length;
    }

    /// <summary>After <see cref="RestoreScalars"/>: the ring's slots a restore will write (those of ids 1 to
    /// <see cref="LastId"/>), and the parked table, mostly empty, that <see cref="FinishRestore"/> reads whole.</summary>
    public void PrefaultForRestore(Prefaulter prefault)
    {
        prefault.AddToWrite(_slots, (int)Math.Min(LastId, _slots.Length));
        prefault.AddToRead(_parked, _parked.Length);
    }

    public Span<Transaction> RingForRestore => _slots;
    public Span<Transaction> ParkedForRestore => _parked;

    /// <summary>Checks the restored table against itself and rebuilds the parked index.</summary>
    public void FinishRestore()
    {
        var isFree = new bool[_parked.Length];
        for (int i = 0; i < _freeParkedCount; i++)
        {
            int p = _freeParked[i];
            if ((uint)p >= (uint)_parked.Length || isFree[p]) throw new InvalidDataException($"snapshot: free parked slot {p} out of range or twice");
            isFree[p] = true;
        }
        for (int p = 0; p < _parked.Length; p++)
        {
            long id = _parked[p].Id;
            if (isFree[p] != (id == 0)) throw new InvalidDataException($"snapshot: parked slot {p} holds {id} but is {(isFree[p] ? "free" : "in use")}");
            if (id == 0) continue;
            if (id >= OldestRetainedId || _parked[p].IsFinal) throw new InvalidDataException($"snapshot: parked {id} is final or belongs in the ring");
            _parkedIndex.Add(id, p);
        }
        long inRing = 0;
        for (int i = 0; i < _slots.Length; i++)
        {
            long id = _slots[i].Id;
            if (id == 0) continue;
            if (id > LastId || id < OldestRetainedId || ((id - 1) & _mask) != i)
                throw new InvalidDataException($"snapshot: table slot {i} holds {id}, outside the retained ids {OldestRetainedId}..{LastId}");
            inRing++;
        }
        // Every id of the ring's range is in it (a transaction leaves only for the archive or the parked table, when
        // the id after the ring's end takes its slot).
        long expected = LastId == 0 ? 0 : LastId - OldestRetainedId + 1;
        if (inRing != expected) throw new InvalidDataException($"snapshot: the table's ring holds {inRing} transactions, ids {OldestRetainedId}..{LastId} are {expected}");
    }

    /// <summary>
    /// Parked id → parked slot: open addressing with linear probing at most half full, deletion by backward shift
    /// (no tombstones, so probes stay short however many parks and unparks). Pre-allocated, no allocation after.
    /// </summary>
    private sealed class ParkedIndex
    {
        private readonly long[] _ids;
        private readonly int[] _slots;
        private readonly int _mask;

        public ParkedIndex(int capacity)
        {
            int size = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(2, capacity * 2));
            _ids = new long[size];
            _slots = new int[size];
            _mask = size - 1;
        }

        private int Home(long id) => (int)((ulong)id * 0x9E3779B97F4A7C15UL >> 32) & _mask;

        public void Add(long id, int slot)
        {
            int i = Home(id);
            while (_ids[i] != 0)
            {
                if (_ids[i] == id) throw new InvalidOperationException($"parked index: {id} twice");
                i = (i + 1) & _mask;
            }
            _ids[i] = id;
            _slots[i] = slot;
        }

        public bool TryGet(long id, out int slot)
        {
            for (int i = Home(id); _ids[i] != 0; i = (i + 1) & _mask)
            {
                if (_ids[i] == id)
                {
                    slot = _slots[i];
                    return true;
                }
            }
            slot = -1;
            return false;
        }

        public void Remove(long id)
        {
            int i = Home(id);
            while (_ids[i] != id)
            {
                if (_ids[i] == 0) throw new InvalidOperationException($"parked index: {id} is not there");
                i = (i + 1) & _mask;
            }
            BackwardShift.Delete(new Slots(this), i);
        }

        private readonly struct Slots(ParkedIndex index) : IProbeSlots
        {
            public int Mask => index._mask;
            public bool Occupied(int slot) => index._ids[slot] != 0;
            public int Home(int slot) => index.Home(index._ids[slot]);
            public void Move(int from, int to) => (index._ids[to], index._slots[to]) = (index._ids[from], index._slots[from]);
            public void Clear(int slot) => (index._ids[slot], index._slots[slot]) = (0, 0);
        }
    }
}
