using Switch.Engine.Snapshots;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Switch.Engine.Business;

/// <summary>
/// How much each payer account has been debited today through each bank (reserved before the bank call,
/// released if the payment fails: limits accumulate upward). Bounded: a full table first drops accounts whose
/// usage is from an earlier day, and refuses new accounts if still full.
/// </summary>
public sealed class DailyAccountUsage
{
    private struct Usage
    {
        public int Day;
        public long UsedFen;
    }

    private readonly Dictionary<ScopedKey, Usage> _usage;
    private readonly int _maxAccounts;
    private readonly List<ScopedKey> _expired = new();
    /// <summary>The day of the last sweep that left every entry on that day; none since holds another day (any write of
    /// another day clears it). While it is today, a full table stays full of today's accounts: no sweep is needed.
    /// Without it a full table would be swept (every entry) on each new account's request: O(table) per request.</summary>
    private int _sweptDay = NoDay;
    private const int NoDay = int.MinValue;

    public DailyAccountUsage(int maxAccounts)
    {
        _maxAccounts = maxAccounts;
        _usage = new Dictionary<ScopedKey, Usage>(Math.Min(maxAccounts, 1 << 16));
    }

    public int Count => _usage.Count;
    /// <summary>Full sweeps of the table for earlier days' accounts, so far.</summary>
    public long Sweeps { get; private set; }

    public long UsedFen(in ScopedKey key, int day) =>
        _usage.TryGetValue(key, out Usage u) && u.Day == day ? u.UsedFen : 0;

    /// <summary>What <see cref="TryReserve"/> did.</summary>
    public enum Reservation { Reserved, OverDailyLimit, TableFull }

    /// <summary>
    /// Reserves <paramref name="amountFen"/> against the account's usage today unless that would pass
    /// <paramref name="limitFen"/> (0: no limit), or the account is new and the table is full of today's accounts.
    /// One look-up for a known account: the table is large and each look-up is a cache miss on the logic thread.
    /// </summary>
    public Reservation TryReserve(in ScopedKey key, int day, long amountFen, long limitFen)
    {
        ref Usage usage = ref CollectionsMarshal.GetValueRefOrNullRef(_usage, key);
        if (!Unsafe.IsNullRef(ref usage))
        {
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
        if (_usage.Count >= _maxAccounts && !DropEarlierDays(day))
        {
            return Reservation.TableFull;
        }
        _usage[key] = new Usage { Day = day, UsedFen = amountFen };
        if (day != _sweptDay) _sweptDay = NoDay;
        return Reservation.Reserved;
    }

    /// <summary>Gives back a failed payment's reservation, if it is still the same day's usage.</summary>
    public void Release(in ScopedKey key, int day, long amountFen)
    {
        ref Usage usage = ref CollectionsMarshal.GetValueRefOrNullRef(_usage, key);
        if (Unsafe.IsNullRef(ref usage) || usage.Day != day)
        {
            return; // the day rolled over: yesterday's usage no longer counts anyway
        }
        usage.UsedFen -= amountFen;
        if (usage.UsedFen < 0) throw new InvalidOperationException("daily usage went negative");
    }

    private bool DropEarlierDays(int today)
    {
        if (_sweptDay == today)
        {
            return _usage.Count < _maxAccounts; // every entry is today's already
        }
        Sweeps++;
        _expired.Clear();
        foreach (var pair in _usage)
        {
            if (pair.Value.Day != today)
            {
                _expired.Add(pair.Key);
            }
        }
        foreach (ScopedKey key in _expired)
        {
            _usage.Remove(key);
        }
        _expired.Clear();
        _sweptDay = today;
        return _usage.Count < _maxAccounts;
    }

    /// <summary>One account's usage as a snapshot holds it.</summary>
    public readonly record struct SavedUsage(ScopedKey Key, int Day, long UsedFen);

    /// <summary>Copies the entries out (on the logic thread: the dictionary is not safe to read from another); the
    /// snapshot writer sorts them (<see cref="WriteSorted"/>) so the same state writes the same bytes.</summary>
    public SavedUsage[] Capture(StateWriter w)
    {
        w.Section("usage");
        w.Int(_maxAccounts);
        w.Int(_sweptDay);
        w.Long(Sweeps);
        var entries = new SavedUsage[_usage.Count];
        int n = 0;
        foreach (var pair in _usage) entries[n++] = new SavedUsage(pair.Key, pair.Value.Day, pair.Value.UsedFen);
        return entries;
    }

    public static void WriteSorted(SavedUsage[] entries, StateWriter w)
    {
        Array.Sort(entries, static (a, b) => a.Key.CompareTo(b.Key));
        w.Array<SavedUsage>(entries);
    }

    public void Restore(ref StateReader r)
    {
        r.Section("usage");
        r.Expect(_maxAccounts, "tracked accounts (rules.maxTrackedAccounts)");
        _sweptDay = r.Int();
        Sweeps = r.Long();
    }

    public void RestoreEntries(ref StateReader r)
    {
        ReadOnlySpan<SavedUsage> entries = r.Array<SavedUsage>(_maxAccounts);
        _usage.Clear();
        foreach (SavedUsage e in entries)
        {
            if (e.UsedFen < 0) throw new InvalidDataException($"snapshot: an account's usage of {e.UsedFen} fen");
            if (!_usage.TryAdd(e.Key, new Usage { Day = e.Day, UsedFen = e.UsedFen })) throw new InvalidDataException("snapshot: an account twice in the daily usage");
        }
    }

    public IEnumerable<(ScopedKey Key, int Day, long UsedFen)> Entries()
    {
        foreach (var pair in _usage)
        {
            yield return (pair.Key, pair.Value.Day, pair.Value.UsedFen);
        }
    }
}
