using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Ring;

namespace Switch.Benchmarks.Engine;

/// <summary>
/// The whole engine: input ring, journal on disk with group commit, logic thread, output ring, and a bank that
/// answers in-process at once (from the output thread). A producer keeps a window of payments outstanding, so the
/// input ring can never fill with answers (the output thread then never waits on it). Reported per transaction.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 5, invocationCount: 1)]
public class EngineBenchmarks
{
    private const int TransactionsPerInvoke = 300_000;
    private const int InputRingSize = 1 << 16;
    private const int OutstandingWindow = InputRingSize / 4;

    [Params(WaitKind.Yielding, WaitKind.Blocking)]
    public WaitKind Wait;

    private string _dataDirectory = "";
    private SwitchEngine _engine = null!;
    private InProcessBank _bank = null!;
    private long _n;

    [IterationSetup]
    public void Setup()
    {
        _dataDirectory = Path.Combine(Path.GetTempPath(), "switch-bench-" + Guid.NewGuid().ToString("N"));
        _bank = new InProcessBank();
        _engine = SwitchEngine.Start(new EngineOptions
        {
            DataDirectory = _dataDirectory,
            InputRingSize = InputRingSize,
            OutputRingSize = 1 << 17,
            MaxBatchSize = 4096,
            Wait = Wait,
            TickIntervalMs = 10,
        }, BenchConfigs.Busy(transactionCapacity: 1 << 20), _bank);
        _bank.Engine = _engine;
    }

    [IterationCleanup]
    public void Cleanup()
    {
        _engine.Dispose();
        Directory.Delete(_dataDirectory, recursive: true);
    }

    [Benchmark(OperationsPerInvoke = TransactionsPerInvoke)]
    public void Payments_through_journal_logic_and_bank()
    {
        long target = Volatile.Read(ref _bank.Completed) + TransactionsPerInvoke;
        long sent = 0;
        while (sent < TransactionsPerInvoke)
        {
            long room = OutstandingWindow - (sent - (Volatile.Read(ref _bank.Completed) - (target - TransactionsPerInvoke)));
            if (room <= 0)
            {
                Thread.Yield();
                continue;
            }
            // Publish in claims of up to 64, as a gateway does with the requests of one stream read.
            int batch = (int)Math.Min(Math.Min(room, 64), TransactionsPerInvoke - sent);
            long hi = _engine.Claim(batch);
            for (long sequence = hi - batch + 1; sequence <= hi; sequence++)
            {
                long n = ++_n;
                BenchConfigs.FillPayment(ref _engine.Slot(sequence), n, n);
            }
            _engine.Publish(hi - batch + 1, hi);
            sent += batch;
        }
        SpinWait spin = default;
        while (Volatile.Read(ref _bank.Completed) < target)
        {
            if (_engine.Fault is not null) throw new InvalidOperationException("engine stopped", _engine.Fault);
            spin.SpinOnce(sleep1Threshold: -1);
        }
    }

    /// <summary>
    /// Answers every bank request with success, batched: the answers of one output batch are claimed and published
    /// together (one claim per batch, as a bank connector writes one stream flush per batch). Counts final outcomes.
    /// </summary>
    private sealed class InProcessBank : IEventHandler<OutputEvent>
    {
        private const int MaxPendingAnswers = 1024;
        private readonly long[] _pendingIds = new long[MaxPendingAnswers];
        private int _pending;
        public volatile SwitchEngine? Engine;
        public long Completed;

        public void OnEvent(ref OutputEvent evt, long sequence, bool endOfBatch)
        {
            if (evt.Kind == OutputKind.BankRequest)
            {
                _pendingIds[_pending++] = evt.TransactionId;
            }
            else if (evt.Kind == OutputKind.Feed)
            {
                Interlocked.Increment(ref Completed);
            }
            if (_pending == MaxPendingAnswers || (endOfBatch && _pending > 0))
            {
                Flush();
            }
        }

        private void Flush()
        {
            SwitchEngine engine = Engine!;
            long hi = engine.Claim(_pending);
            long lo = hi - _pending + 1;
            for (int i = 0; i < _pending; i++)
            {
                ref InputEvent answer = ref engine.Slot(lo + i);
                answer.Kind = EventKind.BankResult;
                answer.TransactionId = _pendingIds[i];
                answer.Operation = BankOperation.Debit;
                answer.Reply = BankReply.Succeeded;
            }
            engine.Publish(lo, hi);
            _pending = 0;
        }
    }
}
