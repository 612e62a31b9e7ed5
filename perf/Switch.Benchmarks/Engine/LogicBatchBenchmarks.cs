using BenchmarkDotNet.Attributes;
using Switch.Engine.Archive;
using Switch.Engine.Business;
using Switch.Engine.Events;

namespace Switch.Benchmarks.Engine;

/// <summary>
/// The business logic as the engine's logic handler drives it under load, on one thread: batches of 64 events, each
/// payment followed by the success of the payment 4,096 older (the load harness's 4 streams of 4,096 in flight), with
/// a full table of 2^20 so every payment evicts a final one to the archive (FASTER on disk, behind its writer thread),
/// and each event's random look-ups started <see cref="PrefetchAheadEvents"/> events ahead
/// (<see cref="SwitchLogic.PrefetchFor"/>, as the handler does). <see cref="RequestsPrefetched"/> false hands the hint
/// only bank answers (the handler before requests were prefetched): both in one run for a before/after.
/// Reported per event (OperationsPerInvoke counts events).
/// </summary>
[MemoryDiagnoser]
public class LogicBatchBenchmarks
{
    private const int TableCapacity = 1 << 20;
    private const int InFlight = 4096;
    private const int BatchEvents = 64;
    private const int PrefetchAheadEvents = 4;
    private const int BatchesPerInvoke = 1_000;

    [Params(false, true)]
    public bool RequestsPrefetched;
    private SwitchLogic _logic = null!;
    private FasterTransactionArchive _archive = null!;
    private string _archiveDirectory = "";
    private readonly InputEvent[] _batch = new InputEvent[BatchEvents];
    /// <summary>Payments sent: each is admitted, so the n-th is transaction n.</summary>
    private long _sent;

    [GlobalSetup]
    public void Setup()
    {
        _archiveDirectory = Path.Combine(Path.GetTempPath(), "switch-bench-archive-" + Guid.NewGuid().ToString("N"));
        _archive = FasterTransactionArchive.Create(_archiveDirectory, new ArchiveSizing());
        _logic = new SwitchLogic(BenchConfigs.Busy(transactionCapacity: TableCapacity), new DiscardingSink(), _archive);
        // Past one full lap of the table, so every later payment evicts an old one.
        for (int b = 0; b < (TableCapacity + InFlight) / (BatchEvents / 2) + 1; b++) ApplyBatch();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _archive.Dispose();
        Directory.Delete(_archiveDirectory, recursive: true);
    }

    [Benchmark(OperationsPerInvoke = BatchesPerInvoke * BatchEvents)]
    public void Batches_of_64_payments_and_successes()
    {
        for (int b = 0; b < BatchesPerInvoke; b++) ApplyBatch();
        if (_logic.PositionSumFen() != 0) throw new InvalidOperationException("money not conserved");
    }

    /// <summary>32 payments, each followed by the success of the one <see cref="InFlight"/> older (none before there is one).</summary>
    private void ApplyBatch()
    {
        for (int i = 0; i < BatchEvents; i += 2)
        {
            long n = ++_sent;
            ref InputEvent request = ref _batch[i];
            request.Reset();
            BenchConfigs.FillPayment(ref request, n, n);
            request.TimestampUs = 1_763_000_000_000_000 + n;
            ref InputEvent result = ref _batch[i + 1];
            result.Reset();
            result.Kind = EventKind.BankResult;
            result.Operation = BankOperation.Debit;
            result.Reply = BankReply.Succeeded;
            result.TransactionId = n - InFlight; // 0 or less while the lag builds up: an unmatched answer, counted
            result.TimestampUs = request.TimestampUs;
        }
        for (int i = 0; i < PrefetchAheadEvents; i++) Prefetch(in _batch[i]);
        for (int i = 0; i < BatchEvents; i++)
        {
            if (i + PrefetchAheadEvents < BatchEvents) Prefetch(in _batch[i + PrefetchAheadEvents]);
            _logic.Apply(ref _batch[i]);
        }
        if (_logic.Transactions.LastId != _sent) throw new InvalidOperationException("a payment was refused");
    }

    private void Prefetch(in InputEvent e)
    {
        if (RequestsPrefetched || e.Kind != EventKind.InstitutionRequest) _logic.PrefetchFor(in e);
    }
}
