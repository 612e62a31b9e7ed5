using System.Runtime.CompilerServices;
using Switch.Engine.Events;

namespace Switch.Engine.Business;

/// <summary>
/// The verify mode: after every applied event the whole state is recounted against what the logic keeps
/// incrementally, and a breach stops the engine (an <see cref="InvariantException"/> on the logic thread is the
/// engine's fault). O(retained transactions) per event: for tests and the simulation; off, it costs one branch.
/// Always on, whatever the mode (cheap, at the point of change): each posting sums to zero, positions equal the
/// clearing totals at a close, in-flight and unresolved never below zero, in-flight within its cap at dispatch,
/// feed numbers one more than the last, and the sizes of the ring and table structs (checked once, at type load).
/// </summary>
public sealed partial class SwitchLogic
{
    public const int InputEventBytes = 528;
    public const int OutputEventBytes = 560;
    public const int TransactionBytes = 344;

    static SwitchLogic() => CheckStructSizes();

    /// <summary>The ring slots and table rows are sized for cache lines and memory budgets (README): one that grows
    /// by a field is a decision, not an accident.</summary>
    internal static void CheckStructSizes()
    {
        string wrong = Wrong(nameof(InputEvent), Unsafe.SizeOf<InputEvent>(), InputEventBytes)
            + Wrong(nameof(OutputEvent), Unsafe.SizeOf<OutputEvent>(), OutputEventBytes)
            + Wrong(nameof(Transaction), Unsafe.SizeOf<Transaction>(), TransactionBytes);
        if (wrong.Length != 0)
        {
            throw new InvalidOperationException($"logic: struct sizes changed:{wrong} update the sizes, the README and the memory budget together");
        }
    }

    private static string Wrong(string type, int actualBytes, int expectedBytes) =>
        actualBytes == expectedBytes ? "" : $" {type} is {actualBytes} bytes, expected {expectedBytes};";

    private bool _verify;
    /// <summary>Per table slot (ring then parked): live timers found in the queues. Allocated when verify turns on.</summary>
    private int[]? _liveTimers;
    /// <summary>Per institution: the last feed number emitted while verifying.</summary>
    private long[]? _feedsEmitted;

    /// <summary>Checks every invariant after each applied event (see the type's summary). Set before the first
    /// event or between events, on the logic thread.</summary>
    public bool VerifyInvariants
    {
        get => _verify;
        set
        {
            if (value && !_verify)
            {
                _liveTimers = new int[_transactions.Capacity + _transactions.ParkedCapacity];
                _feedsEmitted = new long[_institutions.Length];
                for (int i = 0; i < _institutions.Length; i++) _feedsEmitted[i] = _institutions[i].FeedCount;
            }
            _verify = value;
        }
    }

    /// <summary>In verify mode: feeds go out numbered 1, 2, 3... per institution, none skipped or repeated.</summary>
    private void VerifyFeedNumber(ref Transaction tx)
    {
        long expected = _feedsEmitted![tx.InstitutionIndex] + 1;
        if (tx.FeedNo != expected)
        {
            throw new InvariantException("feed numbering", $"{_institutions[tx.InstitutionIndex].Config.Code} feed {tx.FeedNo} after {expected - 1}");
        }
        _feedsEmitted[tx.InstitutionIndex] = expected;
    }

    private void VerifyAfter(ref InputEvent e)
    {
        string? breach = FindBreach(out string invariant);
        if (breach is not null)
        {
            throw new InvariantException(invariant, $"{breach}, after event {EventsApplied} ({e.Kind}, correlation {e.CorrelationId})");
        }
    }

    /// <summary>The first invariant broken and how, or null.</summary>
    private string? FindBreach(out string invariant)
    {
        invariant = "positions sum to zero";
        long sumFen = PositionSumFen();
        if (sumFen != 0) return $"positions sum to {sumFen} fen";

        invariant = "feed numbering";
        foreach (Institution inst in _institutions)
        {
            if (inst.FeedCount != _feedsEmitted![inst.Index]) return $"{inst.Config.Code} counts {inst.FeedCount} feeds, {_feedsEmitted[inst.Index]} went out";
        }

        // One pass over the retained transactions: in-flight and unresolved recounts, and each one's timer.
        Span<int> unresolved = stackalloc int[_banks.Length];
        Span<int> inFlight = stackalloc int[_banks.Length * InputEvent.MaxEndpointsPerBank];
        Array.Clear(_liveTimers!);
        _timers.CountLive(_liveTimers);
        int retained = 0;
        for (long id = _transactions.OldestRetainedId; id <= _transactions.LastId; id++)
        {
            if (!_transactions.TryFind(id, out int index)) continue;
            retained++;
            if (CheckTransaction(index, unresolved, inFlight, out invariant) is { } bad) return bad;
        }
        for (int p = 0; p < _transactions.ParkedCapacity; p++)
        {
            if (_transactions.ParkedAt(p).Id == 0) continue;
            retained++;
            if (CheckTransaction(_transactions.Capacity + p, unresolved, inFlight, out invariant) is { } bad) return bad;
        }
        invariant = "order index";
        if (_orders.IndexedCount != retained) return $"the order index holds {_orders.IndexedCount} orders, the table {retained}";
        foreach (Bank bank in _banks)
        {
            invariant = "unresolved per bank";
            if (unresolved[bank.Index] != bank.Unresolved) return $"bank {bank.Code} counts {bank.Unresolved} unresolved, the table holds {unresolved[bank.Index]}";
            for (int i = 0; i < bank.Endpoints.Length; i++)
            {
                Endpoint endpoint = bank.Endpoints[i];
                invariant = "in-flight within cap";
                if (endpoint.InFlight < 0 || endpoint.InFlight > endpoint.InFlightCap) return $"bank {bank.Code} endpoint {endpoint.Name} has {endpoint.InFlight} in flight, cap {endpoint.InFlightCap}";
                invariant = "in-flight recount";
                int counted = inFlight[bank.Index * InputEvent.MaxEndpointsPerBank + i];
                if (endpoint.InFlight != counted) return $"bank {bank.Code} endpoint {endpoint.Name} counts {endpoint.InFlight} in flight, the table holds {counted}";
            }
        }
        invariant = "";
        return null;
    }

    private string? CheckTransaction(int index, Span<int> unresolved, Span<int> inFlight, out string invariant)
    {
        ref Transaction tx = ref _transactions[index];
        invariant = "order index";
        if (!_orders.FindsAt(index)) return $"transaction {tx.Id}'s order is not found at its slot {index}";
        invariant = "one live timer per unresolved transaction";
        if (tx.IsFinal) return null;
        unresolved[tx.BankIndex]++;
        if (tx.Status == TransactionStatus.Dispatched) inFlight[tx.BankIndex * InputEvent.MaxEndpointsPerBank + tx.EndpointIndex]++;
        if (tx.TimerDueUs == 0 || _liveTimers![index] != 1)
        {
            return $"transaction {tx.Id} ({tx.Status}) has {_liveTimers![index]} live timers (due {tx.TimerDueUs})";
        }
        return null;
    }
}

/// <summary>A broken invariant found by the verify mode: the engine stops with it (its message names the invariant).</summary>
public sealed class InvariantException(string invariant, string detail)
    : InvalidOperationException($"logic: invariant \"{invariant}\" broken: {detail}")
{
    public string Invariant { get; } = invariant;
}
