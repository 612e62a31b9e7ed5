using BenchmarkDotNet.Attributes;
using Switch.Engine.Archive;
using Switch.Engine.Business;
using Switch.Engine.Events;

namespace Switch.Benchmarks.Engine;

/// <summary>
/// The business logic alone, on one thread: an agreement payment followed by its bank success, two events.
/// The table is smaller than the run, so eviction of old transactions to the archive (FASTER on disk, as in the
/// engine) is part of the steady state. <see cref="HandoffEntries"/> 0 is the logic thread writing the store itself (as
/// before the writer thread), 4096 the default handoff until 2026-12-07, 65536 the default since: in one run for a before/after.
/// Reported per event (OperationsPerInvoke counts events).
/// </summary>
[MemoryDiagnoser]
public class LogicBenchmarks
{
    private const int PaymentsPerInvoke = 50_000;

    /// <summary>Retained transactions: small fits in cache, large is a busy day's working set.</summary>
    [Params(1 << 14, 1 << 20)]
    public int TableCapacity;
    /// <summary>The archive's handoff to its writer thread (0: none, the logic writes the store).</summary>
    [Params(0, 4096, 1 << 16)]
    public int HandoffEntries;
    private SwitchLogic _logic = null!;
    private FasterTransactionArchive _archive = null!;
    private string _archiveDirectory = "";
    private InputEvent _request;
    private InputEvent _result;
    private long _n;

    [GlobalSetup]
    public void Setup()
    {
        _archiveDirectory = Path.Combine(Path.GetTempPath(), "switch-bench-archive-" + Guid.NewGuid().ToString("N"));
        _archive = FasterTransactionArchive.Create(_archiveDirectory, new ArchiveSizing { HandoffEntries = HandoffEntries });
        _logic = new SwitchLogic(BenchConfigs.Busy(transactionCapacity: TableCapacity), new DiscardingSink(), _archive);
        _result.Kind = EventKind.BankResult;
        _result.Operation = BankOperation.Debit;
        _result.Reply = BankReply.Succeeded;
        // Warm the table past one full lap so every later payment evicts an old one.
        PaymentsAndSuccesses(TableCapacity + 1_000, inFlight: 0);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _archive.Dispose();
        Directory.Delete(_archiveDirectory, recursive: true);
    }

    [Benchmark(OperationsPerInvoke = 2 * PaymentsPerInvoke)]
    public void Payment_then_bank_success() => PaymentsAndSuccesses(PaymentsPerInvoke, inFlight: 0);

    /// <summary>As the switch sees them under load: each bank's success comes 4,096 payments after its request (the load
    /// harness's 4 streams of 4,096), so its transaction's slot has left the cache meanwhile.</summary>
    [Benchmark(OperationsPerInvoke = 2 * PaymentsPerInvoke)]
    public void Payment_and_a_success_4096_behind() => PaymentsAndSuccesses(PaymentsPerInvoke, inFlight: 4096);

    /// <summary>Each payment, then the success of the one <paramref name="inFlight"/> payments older (none while the lag
    /// builds up after the set-up answered everything): every payment is answered once.</summary>
    private void PaymentsAndSuccesses(int count, int inFlight)
    {
        for (int i = 0; i < count; i++)
        {
            long n = ++_n;
            _request.Reset();
            BenchConfigs.FillPayment(ref _request, n, n);
            _request.TimestampUs = 1_763_000_000_000_000 + n;
            _logic.Apply(ref _request);
            long answered = _logic.Transactions.LastId - inFlight;
            if (answered <= _lastAnswered) continue;
            _lastAnswered = answered;
            _result.TransactionId = answered;
            _result.TimestampUs = _request.TimestampUs;
            _logic.Apply(ref _result);
        }
        if (_logic.PositionSumFen() != 0) throw new InvalidOperationException("money not conserved");
    }

    /// <summary>The newest transaction a bank answered.</summary>
    private long _lastAnswered;
}
