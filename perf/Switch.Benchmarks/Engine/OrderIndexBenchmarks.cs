using BenchmarkDotNet.Attributes;
using Switch.Engine.Business;
using Switch.Engine.Events;

namespace Switch.Benchmarks.Engine;

/// <summary>
/// The order index's share of one payment with a full table, alone: a look-up of the new order (a miss), the removal
/// of the evicted oldest, the new order's insert. <see cref="Kind"/> Dictionary is the index before issue 17 (a
/// <c>Dictionary&lt;ScopedKey, long&gt;</c>, kept here only as the baseline), Fingerprint the <see cref="OrderIndex"/>:
/// both in one run. The transaction table is the engine's; the order numbers are the logic benchmark's.
/// </summary>
[MemoryDiagnoser]
public class OrderIndexBenchmarks
{
    private const int OpsPerInvoke = 100_000;

    public enum IndexKind { Dictionary, Fingerprint }

    [Params(IndexKind.Dictionary, IndexKind.Fingerprint)]
    public IndexKind Kind;
    [Params(1 << 20)]
    public int TableCapacity;

    private TransactionTable _table = null!;
    private Dictionary<ScopedKey, long> _dictionary = null!;
    private OrderIndex _index = null!;
    private long _n;

    [GlobalSetup]
    public void Setup()
    {
        _table = new TransactionTable(TableCapacity, 1);
        _dictionary = new Dictionary<ScopedKey, long>(TableCapacity);
        _index = new OrderIndex(_table);
        _n = 0;
        Run(TableCapacity + 1_000); // full, and past a lap: every new order evicts one
    }

    [Benchmark(OperationsPerInvoke = OpsPerInvoke)]
    public void Miss_evict_insert() => Run(OpsPerInvoke);

    private void Run(int count)
    {
        Span<byte> digits = stackalloc byte[24];
        for (int i = 0; i < count; i++)
        {
            long n = ++_n;
            digits[0] = (byte)'N';
            n.TryFormat(digits[1..], out int written);
            ReadOnlySpan<byte> orderNo = digits[..(written + 1)];
            var key = new ScopedKey((int)(n & 7), orderNo);
            if (Kind == IndexKind.Dictionary) DictionaryStep(in key, orderNo);
            else FingerprintStep(in key, orderNo);
        }
    }

    private void DictionaryStep(in ScopedKey key, ReadOnlySpan<byte> orderNo)
    {
        if (_dictionary.TryGetValue(key, out _)) throw new InvalidOperationException("a new order found");
        ref Transaction old = ref _table.NextSlot;
        if (old.Id != 0 && !_dictionary.Remove(new ScopedKey(old.InstitutionIndex, old.OrderNo.Span)))
            throw new InvalidOperationException("evicted order not indexed");
        ref Transaction tx = ref Issue(orderNo, out _);
        _dictionary.Add(key, tx.Id);
    }

    private void FingerprintStep(in ScopedKey key, ReadOnlySpan<byte> orderNo)
    {
        ulong hash = key.Hash64();
        if (_index.Find(key, hash) >= 0) throw new InvalidOperationException("a new order found");
        ref Transaction old = ref _table.NextSlot;
        if (old.Id != 0) _index.Remove(new ScopedKey(old.InstitutionIndex, old.OrderNo.Span).Hash64(), _table.NextIndex);
        Issue(orderNo, out int slot);
        _index.Add(hash, slot);
    }

    private ref Transaction Issue(ReadOnlySpan<byte> orderNo, out int slot)
    {
        _table.NextSlot.Status = TransactionStatus.Succeeded; // final: evicted, as the logic does
        slot = _table.NextIndex;
        ref Transaction tx = ref _table.Issue();
        tx.Status = TransactionStatus.Dispatched;
        tx.InstitutionIndex = (int)(_n & 7);
        tx.OrderNo.Set(orderNo);
        return ref tx;
    }
}
