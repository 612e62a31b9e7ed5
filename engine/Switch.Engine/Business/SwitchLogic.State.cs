using Switch.Engine.Events;
using Switch.Engine.Hashing;

namespace Switch.Engine.Business;

/// <summary>Read-only views of the state, for tests, recovery checks and operators. Called on the writer thread
/// or while the engine is stopped.</summary>
public sealed partial class SwitchLogic
{
    /// <summary>
    /// A hash over participants, positions and transaction outcomes. Two engines that applied the same events
    /// have the same hash; replay is checked with it.
    /// </summary>
    public ulong StateHash()
    {
        ulong h = StableHash.Combine(0, (ulong)SwitchFeeFen);
        h = StableHash.Combine(h, (ulong)_transactions.LastId);
        h = StableHash.Combine(h, (ulong)OpenBatchId);
        h = StableHash.Combine(h, (ulong)OpenBatchFinalised);
        h = StableHash.Combine(h, (ulong)LastAuditNo);
        h = StableHash.Combine(h, (ulong)Term);
        h = StableHash.Combine(h, (ulong)TermStartRecordNo);
        foreach (Institution inst in _institutions)
        {
            h = StableHash.Combine(h, StableHash.OfBytes(inst.CodeUtf8));
            h = StableHash.Combine(h, inst.Enabled ? 1UL : 0UL);
            h = StableHash.Combine(h, (ulong)inst.PositionFen);
            h = StableHash.Combine(h, (ulong)inst.ReservedDebitFen);
            h = StableHash.Combine(h, (ulong)inst.FeedCount);
        }
        foreach (Bank bank in _banks)
        {
            h = StableHash.Combine(h, (ulong)bank.Code);
            h = StableHash.Combine(h, (ulong)bank.PositionFen);
            h = bank.Ramp.Hash(h, bank.Endpoints.Length);
            foreach (Endpoint endpoint in bank.Endpoints)
            {
                h = StableHash.Combine(h, (ulong)endpoint.WeightBps);
                h = StableHash.Combine(h, (ulong)endpoint.State | (endpoint.Reachable ? 1UL << 8 : 0));
                h = StableHash.Combine(h, (ulong)endpoint.InFlight);
                h = endpoint.Breaker.Hash(h);
            }
        }
        Span<int> unresolved = stackalloc int[_banks.Length]; // at most SwitchConfig.MaxBanks; recounted against each bank's count
        for (long id = _transactions.OldestRetainedId; id <= _transactions.LastId; id++)
        {
            h = HashTransaction(h, ref _transactions.ById(id), unresolved);
        }
        // The parked table, in slot order (the same events park in the same slots).
        for (int p = 0; p < _transactions.ParkedCapacity; p++)
        {
            ref Transaction tx = ref _transactions.ParkedAt(p);
            if (tx.Id == 0) continue;
            if (tx.IsFinal || tx.Id >= _transactions.OldestRetainedId) throw new InvalidOperationException($"logic: parked {tx.Id} is final or in the ring");
            h = StableHash.Combine(h, (ulong)p);
            h = HashTransaction(h, ref tx, unresolved);
        }
        CheckUnresolved(unresolved);
        return h;
    }

    /// <summary>Recounts each bank's unresolved transactions in the table against the bank's own count (throws
    /// <see cref="InvalidOperationException"/> if one differs) and returns their sum: the check a start makes, one pass
    /// over the table without the state hash's work (which was two tenths of a second at each start with 2^20 retained).</summary>
    public long VerifyUnresolved()
    {
        Span<int> unresolved = stackalloc int[_banks.Length]; // at most SwitchConfig.MaxBanks
        int slots = _transactions.Capacity + _transactions.ParkedCapacity;
        for (int index = 0; index < slots; index++)
        {
            ref readonly Transaction tx = ref _transactions.Read(index);
            if (tx.Id != 0 && !tx.IsFinal) unresolved[tx.BankIndex]++;
        }
        return CheckUnresolved(unresolved);
    }

    /// <summary>Each bank's count of unresolved transactions against the table's (<paramref name="counted"/>, by bank
    /// index); their sum.</summary>
    private long CheckUnresolved(ReadOnlySpan<int> counted)
    {
        long sum = 0;
        foreach (Bank bank in _banks)
        {
            if (counted[bank.Index] != bank.Unresolved)
            {
                throw new InvalidOperationException($"logic: bank {bank.Code} counts {bank.Unresolved} unresolved, the table holds {counted[bank.Index]}");
            }
            sum += bank.Unresolved;
        }
        return sum;
    }

    private static ulong HashTransaction(ulong h, ref Transaction tx, Span<int> unresolved)
    {
        if (!tx.IsFinal) unresolved[tx.BankIndex]++;
        h = StableHash.Combine(h, (ulong)tx.Id);
        h = StableHash.Combine(h, (ulong)tx.Status | (ulong)tx.Type << 8 | (ulong)(uint)tx.EndpointIndex << 16);
        h = StableHash.Combine(h, (ulong)tx.AmountFen);
        h = StableHash.Combine(h, (ulong)tx.FeeFen);
        h = StableHash.Combine(h, (ulong)tx.RefundedFen);
        h = StableHash.Combine(h, (ulong)tx.FeedNo);
        h = StableHash.Combine(h, (ulong)tx.BatchId);
        h = StableHash.Combine(h, StableHash.OfBytes(tx.Reason.Span));
        return h;
    }

    /// <summary>The sum of every position in the open batch: zero whenever the engine is consistent.</summary>
    public long PositionSumFen() => _book.PositionSumFen();

    public bool TryGetOrder(string institutionCode, string orderNo, out Transaction transaction)
    {
        transaction = default;
        int index = Array.FindIndex(_institutions, i => i.Config.Code == institutionCode);
        Text32 order = Text32.From(orderNo);
        if (index < 0 || order.IsOverlong)
        {
            return false;
        }
        ref Transaction found = ref _orders.Find(new ScopedKey(index, order.Span), out _);
        if (System.Runtime.CompilerServices.Unsafe.IsNullRef(ref found))
        {
            return false;
        }
        transaction = found;
        return true;
    }

    public Institution InstitutionByCode(string code) =>
        Array.Find(_institutions, i => i.Config.Code == code) ?? throw new KeyNotFoundException(code);

    /// <summary>The logic's view of one endpoint: what routing uses, and the bank's running ramp if any.</summary>
    public EndpointView ViewEndpoint(int bankCode, int endpointIndex)
    {
        Bank bank = BankByCode(bankCode);
        Endpoint endpoint = bank.Endpoints[endpointIndex];
        WeightRamp ramp = bank.Ramp;
        return new EndpointView(endpoint.Name, endpoint.State, endpoint.Reachable, endpoint.Breaker.State, endpoint.WeightBps,
            endpoint.InFlight, ramp.Active, ramp.Active ? ramp.FromBps[endpointIndex] : 0, ramp.Active ? ramp.TargetBps[endpointIndex] : 0,
            ramp.Active ? ramp.StepsDone : 0, ramp.Active ? ramp.Steps : 0, ramp.Active ? ramp.NextStepUs : 0,
            ramp.Active ? ramp.Operator.ToString() : "");
    }

    public Bank BankByCode(int code) => _banksByCode[code] ?? throw new KeyNotFoundException(code.ToString());
}

/// <summary>One endpoint as the logic sees it (a snapshot: read on the logic thread or after replay).</summary>
public readonly record struct EndpointView(
    string Name, EndpointState State, bool Reachable, BreakerState Breaker, int WeightBps, int InFlight,
    bool Ramping, int RampFromBps, int RampTargetBps, int RampStepsDone, int RampSteps, long RampNextStepUs, string RampOperator);
