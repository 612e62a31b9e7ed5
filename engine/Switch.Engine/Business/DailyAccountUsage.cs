using System.Runtime.InteropServices;
using Switch.Engine.Hashing;
using Switch.Engine.Snapshots;

namespace Switch.Engine.Business;

/// <summary>
/// How much each payer account has been debited today through each bank (reserved before the bank call,
/// released if the payment fails: limits accumulate upward). Bounded: a full table first drops accounts whose
/// usage is from an earlier day, and refuses new accounts if still full.
/// <para>
/// An open-addressing table in one pre-allocated array (linear probing, at most half full, deletion by backward shift:
/// no tombstones), not a dictionary: one cache line or two per look-up on the logic thread, no allocation after start,
/// and a flat array a snapshot copies page by page while the logic goes on (<see cref="PageCapture{T}"/>). Memory:
/// 56 bytes a slot, two slots an account (112 MiB for the default 2^20 accounts).
/// </para>
/// </summary>
public sealed class DailyAccountUsage
{
    /// <summary>One slot: an account's usage on <see cref="Day"/>, or empty.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Slot
    {
        public ScopedKey Key;
        public int Day;
        /// <summary>1 in use, 0 empty (an int: the struct's padding is spent on it anyway).</summary>
        public int Occupied;
        public long UsedFen;
    }

    private readonly Slot[] _slots;
    private readonly int _mask;
    private readonly int _maxAccounts;
    private readonly List<ScopedKey> _expired = new();
    /// <summary>The day of the last sweep that left every entry on that day; none since holds another day (any write of
    /// another day clears it). While it is today, a full table stays full of today's accounts: no sweep is needed.
    /// Without it a full table would be swept (every entry) on each new account's request: O(table) per request.</summary>
    private int _sweptDay = NoDay;
    private const int NoDay = int.MinValue;
    private PageCapture<Slot>? _capture;
    /// <summary>The capture every snapshot reuses (<see cref="PageCapture{T}.Begin"/>): none made in a pause.</summary>
    private readonly PageCapture<Slot> _captureKept;

    public DailyAccountUsage(int maxAccounts)
    {
        if (maxAccounts < 1 || maxAccounts > 1 << 28) throw new ArgumentOutOfRangeException(nameof(maxAccounts), "1 to 2^28");
        _maxAccounts = maxAccounts;
        int slots = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(2, maxAccounts * 2));
        // Huge pages: each payment reads a random slot, and in 4 KiB pages its page walk was a tenth of the logic thread.
        _slots = HugePages.Allocate<Slot>(slots);
        _mask = slots - 1;
        _captureKept = new PageCapture<Slot>(_slots, new AsideReserve<Slot>(PageCapture<Slot>.PageItemsFor(slots), PageCapture<Slot>.PagesFor(slots)));
    }

    public int Count { get; private set; }
    /// <summary>Full sweeps of the table for earlier days' accounts, so far.</summary>
    public long Sweeps { get; private set; }

    public long UsedFen(in ScopedKey key, int day)
    {
        int i = Find(key);
        return i >= 0 && _slots[i].Day == day ? _slots[i].UsedFen : 0;
    }

    /// <summary>What <see cref="TryReserve"/> did.</summary>
    public enum Reservation { Reserved, OverDailyLimit, TableFull }

    /// <summary>
    /// Reserves <paramref name="amountFen"/> against the account's usage today unless that would pass
    /// <paramref name="limitFen"/> (0: no limit), or the account is new and the table is full of today's accounts.
    /// One probe sequence for a known account: the table is large and each look-up is a cache miss on the logic thread.
    /// </summary>
    public Reservation TryReserve(in ScopedKey key, int day, long amountFen, long limitFen)
    {
        int i = Find(key);
        if (i >= 0)
        {
            ref Slot usage = ref Write(i);
            long usedFen = usage.Day == day ? usage.UsedFen : 0;
            if (limitFen > 0 && usedFen + amountFen > limitFen)
            {
                return Reservation.OverDailyLimit;
            }
            if (usage.Day != day)
            {
                usage.Day = day;
                if (day != _sweptDay) _sweptDay = NoDay;
            }
            usage.UsedFen = usedFen + amountFen;
            return Reservation.Reserved;
        }
        if (limitFen > 0 && amountFen > limitFen)
        {
            return Reservation.OverDailyLimit;
        }
        if (Count >= _maxAccounts && !DropEarlierDays(day))
        {
            return Reservation.TableFull;
        }
        Insert(key, day, amountFen);
        if (day != _sweptDay) _sweptDay = NoDay;
        return Reservation.Reserved;
    }

    /// <summary>Gives back a failed payment's reservation, if it is still the same day's usage.</summary>
    public void Release(in ScopedKey key, int day, long amountFen)
    {
        int i = Find(key);
        if (i < 0 || _slots[i].Day != day)
        {
            return; // the day rolled over: yesterday's usage no longer counts anyway
        }
        ref Slot usage = ref Write(i);
        usage.UsedFen -= amountFen;
        if (usage.UsedFen < 0) throw new InvalidOperationException("daily usage went negative");
    }

    private int Home(in ScopedKey key) => (int)key.Hash64() & _mask;

    /// <summary>Starts loading the slot a look-up of <paramref name="key"/> reads first (see <see cref="CacheLine"/>).</summary>
    public void Prefetch(in ScopedKey key) => CacheLine.Prefetch(ref _slots[Home(key)]);

    /// <summary>The slot holding <paramref name="key"/>, or -1. Probes end at an empty slot (at most half are used).</summary>
    private int Find(in ScopedKey key)
    {
        for (int i = Home(key); _slots[i].Occupied != 0; i = (i + 1) & _mask)
        {
            if (_slots[i].Key.Equals(key)) return i;
        }
        return -1;
    }

    private ref Slot Write(int i)
    {
        _capture?.Touch(i);
        return ref _slots[i];
    }

    private void Insert(in ScopedKey key, int day, long amountFen)
    {
        if (Count >= _maxAccounts) throw new InvalidOperationException("daily usage: insert into a full table");
        int i = Home(key);
        while (_slots[i].Occupied != 0) i = (i + 1) & _mask;
        Write(i) = new Slot { Key = key, Day = day, Occupied = 1, UsedFen = amountFen };
        Count++;
    }

    /// <summary>Deletion without tombstones (<see cref="BackwardShift"/>).</summary>
    private void Remove(in ScopedKey key)
    {
        int slot = Find(key);
        if (slot < 0) throw new InvalidOperationException("daily usage: removing an account that is not there");
        BackwardShift.Delete(new Probe(this), slot);
        Count--;
    }

    /// <summary>The slots as <see cref="BackwardShift"/> sees them; its writes go through <see cref="Write"/> (a capture
    /// may be running).</summary>
    private readonly struct Probe(DailyAccountUsage usage) : IProbeSlots
    {
        public int Mask => usage._mask;
        public bool Occupied(int slot) => usage._slots[slot].Occupied != 0;
        public int Home(int slot) => usage.Home(usage._slots[slot].Key);
        public void Move(int from, int to) => usage.Write(to) = usage._slots[from];
        public void Clear(int slot) => usage.Write(slot) = default;
    }

    private bool DropEarlierDays(int today)
    {
        if (_sweptDay == today)
        {
            return Count < _maxAccounts; // every entry is today's already
        }
        Sweeps++;
        _expired.Clear();
        foreach (ref readonly Slot slot in _slots.AsSpan())
        {
            if (slot.Occupied != 0 && slot.Day != today)
            {
                _expired.Add(slot.Key);
            }
        }
        foreach (ScopedKey key in _expired)
        {
            Remove(key);
        }
        _expired.Clear();
        _sweptDay = today;
        return Count < _maxAccounts;
    }

    /// <summary>Snapshot, on the logic thread: the scalars now, the slots copy-on-write (the writer copies them).</summary>
    public void Save(StateWriter w)
    {
        w.Section("usage");
        w.Int(_maxAccounts);
        w.Int(Count);
        w.Int(_sweptDay);
        w.Long(Sweeps);
    }

    /// <summary>After <see cref="Save"/>, before any change: the slots as they are now.</summary>
    public PageCapture<Slot> BeginCapture()
    {
        if (_capture is not null) throw new InvalidOperationException("daily usage: a capture is running");
        _captureKept.Begin();
        return _capture = _captureKept;
    }

    public void EndCapture() => _capture = null;

    public long Bytes => (long)_slots.Length * System.Runtime.CompilerServices.Unsafe.SizeOf<Slot>();

    /// <summary>At start, off the logic thread: a page aside for every page of the table, allocated and faulted in (the
    /// payers' accounts are touched at random: a snapshot at load copies most pages aside before the writer gets to
    /// them); returns its bytes, the table's own.</summary>
    public long FillAsideReserve() => _captureKept.Reserve.Fill();

    public void RestoreScalars(ref StateReader r)
    {
        r.Section("usage");
        r.Expect(_maxAccounts, "tracked accounts (rules.maxTrackedAccounts)");
        Count = r.Int();
        _sweptDay = r.Int();
        Sweeps = r.Long();
        if (Count < 0 || Count > _maxAccounts) throw new InvalidDataException($"snapshot: {Count} accounts in the daily usage, at most {_maxAccounts}");
    }

    /// <summary>The slots a restore will write, after <see cref="RestoreScalars"/>: all of them once there are as many
    /// accounts as snapshot pages (accounts land at random, so most pages then hold one), else none (the few pages
    /// written fault as they are).</summary>
    public void PrefaultForRestore(Prefaulter prefault)
    {
        if (Count >= _slots.Length / PageCapture<Slot>.MaxPageItems) prefault.AddToWrite(_slots, _slots.Length);
    }

    public Span<Slot> SlotsForRestore => _slots;

    /// <summary>The restored slots agree with the count, and every entry sits where a look-up finds it.</summary>
    public void FinishRestore()
    {
        int occupied = 0;
        for (int i = 0; i < _slots.Length; i++)
        {
            if (_slots[i].Occupied == 0) continue;
            if (_slots[i].Occupied != 1 || _slots[i].UsedFen < 0 || Find(_slots[i].Key) != i)
                throw new InvalidDataException($"snapshot: daily usage slot {i} is not a valid entry");
            occupied++;
        }
        if (occupied != Count) throw new InvalidDataException($"snapshot: daily usage holds {occupied} accounts, its count says {Count}");
    }

    public IEnumerable<(ScopedKey Key, int Day, long UsedFen)> Entries()
    {
        for (int i = 0; i < _slots.Length; i++)
        {
            if (_slots[i].Occupied != 0) yield return (_slots[i].Key, _slots[i].Day, _slots[i].UsedFen);
        }
    }
}
