using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using Switch.Engine.Client;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Engine.Replication;
using Switch.Ring;

namespace Switch.Benchmarks.Engine;

/// <summary>
/// The whole engine: input ring, journal on disk with group commit, logic thread, output ring, and a bank that
/// answers in-process at once (from the output thread). A producer keeps a window of payments outstanding, so the
/// input ring can never fill with answers (the output thread then never waits on it). Reported per transaction.
/// Every input goes in as the adapters' do: through the engine client, one claim, fill and publish per input.
/// <see cref="Standby"/>: a single node, or a primary whose hot standby (a second engine, its own journal on the same disk)
/// is fed in-process by a pump (feed → ApplyReplicated → acknowledgements), synchronous (each batch waits for the
/// standby's durable acknowledgement before the logic sees it) or asynchronous.
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

    public enum StandbyKind { None, Synchronous, Asynchronous }

    [Params(StandbyKind.None, StandbyKind.Synchronous)]
    public StandbyKind Standby;

    private SwitchEngine? _standby;
    private CancellationTokenSource? _stopPump;
    private Task? _pump;

    private string _dataDirectory = "";
    private SwitchEngine _engine = null!;
    private EngineClient _client = null!;
    private InProcessBank _bank = null!;
    private long _n;

    [IterationSetup]
    public void Setup()
    {
        _dataDirectory = Path.Combine(Path.GetTempPath(), "switch-bench-" + Guid.NewGuid().ToString("N"));
        _bank = new InProcessBank();
        var options = new EngineOptions
        {
            DataDirectory = Path.Combine(_dataDirectory, "primary"),
            InputRingSize = InputRingSize,
            OutputRingSize = 1 << 17,
            MaxBatchSize = 4096,
            Wait = Wait,
            TickIntervalMs = 10,
            Replication = Standby == StandbyKind.None ? null : new ReplicationOptions
            {
                Mode = Standby == StandbyKind.Synchronous ? ReplicationMode.Synchronous : ReplicationMode.Asynchronous,
            },
        };
        _engine = SwitchEngine.Start(options, BenchConfigs.Busy(transactionCapacity: 1 << 20), _bank);
        if (Standby != StandbyKind.None) StartStandby(options with { DataDirectory = Path.Combine(_dataDirectory, "standby") });
        _client = new EngineClient(_engine);
        _bank.Client = _client;
    }

    private void StartStandby(EngineOptions options)
    {
        SwitchEngine primary = _engine;
        _standby = SwitchEngine.RecoverStandby(options, primary.GenesisRecord());
        _standby.Follow(new DiscardViews(), primary.StandbyAcknowledged);
        HandshakeAnswer answer = primary.AnswerReplica(_standby.ReplicaPosition);
        if (answer.Verdict != HandshakeVerdict.Resume) throw new InvalidOperationException(answer.Detail);
        JournalFeed feed = primary.OpenFeed(answer.RecordNo);
        SwitchEngine standby = _standby;
        _stopPump = new CancellationTokenSource();
        CancellationToken stop = _stopPump.Token;
        _pump = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                ReplicationBatch batch = await feed.ReadAsync(stop);
                standby.ApplyReplicated(batch.Term, batch.FirstRecordNo, batch.Frames.Span);
            }
        });
    }

    private sealed class DiscardViews : IEventHandler<OutputEvent>
    {
        public void OnEvent(ref OutputEvent evt, long sequence, bool endOfBatch) { }
    }

    [IterationCleanup]
    public void Cleanup()
    {
        _engine.Dispose(); // first: its last ticks drain through the standby's acknowledgements
        _stopPump?.Cancel();
        try { _pump?.Wait(); } catch (AggregateException) { } // cancelled, or its journal closed under the feed
        _standby?.Dispose();
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
            // Up to 64 at a time between looks at the window, as a gateway publishes the requests of one stream read.
            int batch = (int)Math.Min(Math.Min(room, 64), TransactionsPerInvoke - sent);
            for (int i = 0; i < batch; i++)
            {
                long n = ++_n;
                var payment = new PaymentFill(n);
                _client.Publish(ref payment, n);
            }
            sent += batch;
        }
        SpinWait spin = default;
        while (Volatile.Read(ref _bank.Completed) < target)
        {
            if (_engine.Fault is not null) throw new InvalidOperationException("engine stopped", _engine.Fault);
            spin.SpinOnce(sleep1Threshold: -1);
        }
    }

    private readonly struct PaymentFill(long n) : IInputFill
    {
        public void Fill(ref InputEvent slot, long correlationId)
        {
            slot.Reset();
            BenchConfigs.FillPayment(ref slot, n, correlationId);
        }
    }

    private readonly struct SuccessFill(long transactionId) : IInputFill
    {
        public void Fill(ref InputEvent slot, long correlationId) =>
            slot.PrepareBankResult(transactionId, BankOperation.Debit, BankReply.Succeeded, reason: (string?)null);
    }

    /// <summary>
    /// Answers every bank request with success, batched: the answers of one output batch are published together, after
    /// it (as a bank connector writes one stream flush per batch). Counts final outcomes.
    /// </summary>
    private sealed class InProcessBank : IEventHandler<OutputEvent>
    {
        private const int MaxPendingAnswers = 1024;
        private readonly long[] _pendingIds = new long[MaxPendingAnswers];
        private int _pending;
        public volatile EngineClient? Client;
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
            EngineClient client = Client!;
            for (int i = 0; i < _pending; i++)
            {
                var answer = new SuccessFill(_pendingIds[i]);
                client.Publish(ref answer);
            }
            _pending = 0;
        }
    }
}
