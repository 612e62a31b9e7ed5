using Switch.Clearing;
using Switch.Engine.Business;
using Switch.Engine.Clearing;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Engine.Snapshots;
using Switch.Engine.Tests.Support;
using Switch.Ring;
using System.Runtime.CompilerServices;
using Xunit.Abstractions;

namespace Switch.Engine.Tests.Simulation;

/// <summary>
/// A seeded simulation of the real engine (threads, journal on disk) against a simulated bank: random requests,
/// duplicates, bank answers that succeed, fail, get lost or arrive late, requests lost before the bank, time
/// passing, operator changes, snapshots, and crashes (the data directory copied as it is at that instant, the engine
/// dropped, a new one recovered from the copy), some of them inside a snapshot's writing, some tearing the newest
/// snapshot on the copied disk. After every step it checks the invariants; after every recovery, that the state equals
/// a whole replay of the same journal. A failure names its seed and step; SWITCH_SIM_SEED and SWITCH_SIM_STEPS replay it.
/// </summary>
public sealed class SimulationTests(ITestOutputHelper output)
{
    /// <summary>Seeds, each with the retained table's capacity: 8,192 keeps every transaction in memory; 32 sends
    /// most to the archive on disk, so repeats, queries and refunds of old orders go through it amid the crashes.
    /// With an outage, bank 308 is unreachable for a long stretch (SWITCH_SIM_OUTAGE=1 with a fixed seed).</summary>
    public static TheoryData<int, int, bool> Seeds()
    {
        var data = new TheoryData<int, int, bool>();
        string? fixedSeed = Environment.GetEnvironmentVariable("SWITCH_SIM_SEED");
        int capacity = int.TryParse(Environment.GetEnvironmentVariable("SWITCH_SIM_TABLE"), out int t) ? t : 8192;
        if (fixedSeed is not null)
        {
            data.Add(int.Parse(fixedSeed), capacity, Environment.GetEnvironmentVariable("SWITCH_SIM_OUTAGE") == "1");
            return data;
        }
        foreach (int seed in new[] { 1, 42, 20261121 })
        {
            data.Add(seed, 8192, false);
        }
        data.Add(7, 32, false);
        data.Add(20261130, 32, false);
        data.Add(11, 8192, true);
        data.Add(20261206, 32, true);
        return data;
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Invariants_hold_through_random_events_lost_answers_timeouts_and_crashes(int seed, int tableCapacity, bool outage)
    {
        int steps = int.TryParse(Environment.GetEnvironmentVariable("SWITCH_SIM_STEPS"), out int s) ? s : 1_500;
        using var world = new SimWorld(seed, tableCapacity, outage ? SimWorld.OutageBank : 0);
        int step = 0;
        try
        {
            for (; step < steps; step++)
            {
                world.Step();
            }
            world.Finish();
        }
        catch (Exception e)
        {
            throw new Xunit.Sdk.XunitException(
                $"simulation failed at seed {seed}, step {step} (replay: SWITCH_SIM_SEED={seed} SWITCH_SIM_TABLE={tableCapacity} SWITCH_SIM_OUTAGE={(outage ? 1 : 0)} SWITCH_SIM_STEPS={step + 1}): {e.Message}\n{e}");
        }
        output.WriteLine($"seed {seed}: {steps} steps, {world.Summary}");
        Assert.True(world.Crashes > 0, "the run had no crash; the seed or the step count is too small");
        if (steps >= 1_500)
        {
            Assert.True(world.SnapshotCrashes.Values.Sum() > 0, "no crash inside a snapshot's writing");
            Assert.True(world.StartsFromSnapshot > 0, "no recovery started from a snapshot");
        }
        Assert.True(world.BatchesClosed > 5, $"only {world.BatchesClosed} batches closed");
        Assert.True(world.FinalOutcomes > 100, $"only {world.FinalOutcomes} final outcomes: the workload is too thin");
        if (outage && steps >= 1_500)
        {
            // While 308 was away the other banks carried on, and only 308's new work was held back, at its bound.
            Assert.True(world.OtherBanksFinalDuringOutage > 25, $"only {world.OtherBanksFinalDuringOutage} outcomes of other banks during the outage");
            Assert.True(world.UnresolvedLimitRejects.GetValueOrDefault(SimWorld.OutageBank) > 0, "bank 308 never reached its bound");
        }
    }
}

/// <summary>The simulated world: an institution side, a bank side with its own ledger, and the engine.</summary>
internal sealed class SimWorld : IDisposable
{
    private static readonly string[] Institutions = ["ALIPAY", "TENPAY"];
    private static readonly string[] BankRefs = ["102", "103", "308", "102100099996", "308584000013"];
    private static readonly string[] FailReasons = ["INSUFFICIENT_FUNDS", "ACCOUNT_CLOSED", "LIMIT_EXCEEDED"];

    private readonly Random _random;
    private readonly Random _closeRandom;
    private readonly Random _snapshotRandom;
    private readonly TempDirectory _root = new();
    private readonly ManualClock _clock = new(LogicHarness.StartUs);
    private readonly SwitchConfig _config;
    private OutputRecorder _recorder = new();
    private ClearingRecorder _clearing = null!;
    private SwitchEngine _engine;
    private int _generation;

    // The bank's side: what it executed, per switch transaction id.
    private readonly Dictionary<long, BankEntry> _ledger = new();
    private readonly List<OutputEvent> _undelivered = new();
    private readonly List<InputEvent> _lateAnswers = new();

    // The institutions' side: every final outcome they were told, and the feed as they saw it.
    private readonly Dictionary<long, (TransactionStatus Status, long FeedNo, string Institution, string OrderNo, long BatchId)> _finals = new();
    private readonly Dictionary<string, long> _lastFeedNo = new();
    private readonly List<(string Institution, string OrderNo)> _payments = new();

    /// <summary>The bank an outage takes away, and when (steps): long past its deadlines, queries and reversal time.</summary>
    public const int OutageBank = 308;
    private const int OutageFromStep = 300, OutageToStep = 1_100;
    private readonly int _outageBank;
    private int _step;

    /// <param name="outageBank">A bank that stops answering anything for a long stretch (0 = none).</param>
    public SimWorld(int seed, int tableCapacity, int outageBank = 0)
    {
        SwitchConfig small = TestConfigs.Small(transactionCapacity: tableCapacity, dailyAccountLimitFen: 3_000_000);
        // A bound the outage reaches: past it only the away bank's new requests are refused.
        _config = small with { Rules = small.Rules with { MaxUnresolvedPerBank = 24 } };
        _outageBank = outageBank;
        _random = new Random(seed);
        _closeRandom = new Random(seed ^ 0x5EED);
        _snapshotRandom = new Random(seed ^ 0x54A9);
        _engine = StartEngine();
    }

    public int Crashes { get; private set; }
    public int FinalOutcomes => _finals.Count;
    public string Summary => $"{Crashes} crashes, {_finals.Count} final outcomes, {_ledger.Count} bank entries, " +
        $"{_engine.Logic.Transactions.LastId} transactions, {_engine.Logic.DiscrepancyCount} discrepancies, {BatchesClosed} batches closed, " +
        $"{SnapshotsTaken} snapshots, crashes inside one: {string.Join(", ", SnapshotCrashes.Select(c => $"{c.Key} {c.Value}"))}, " +
        $"{TornSnapshots} torn, {StartsFromSnapshot} starts from a snapshot, {StartsFromJournalArchive} from the journal's archive, " +
        $"{JournalRecordsRetired} journal records retired";
    /// <summary>Snapshots published without a crash in them.</summary>
    public int SnapshotsTaken { get; private set; }
    /// <summary>Crashes inside a snapshot's writing, by the instant.</summary>
    public SortedDictionary<SnapshotWritePoint, int> SnapshotCrashes { get; } = new();
    /// <summary>Crashes whose disk had its newest snapshot torn.</summary>
    public int TornSnapshots { get; private set; }
    public int StartsFromSnapshot { get; private set; }
    /// <summary>Starts with no usable snapshot from a journal whose beginning was retired: its archive replayed first.</summary>
    public int StartsFromJournalArchive { get; private set; }
    public long JournalRecordsRetired { get; private set; }
    public long BatchesClosed => _engine.Logic.OpenBatchId - 1;
    /// <summary>BANK_UNRESOLVED_LIMIT refusals, by the bank they named.</summary>
    public Dictionary<int, int> UnresolvedLimitRejects { get; } = new();
    /// <summary>Outcomes of banks other than the away one that became final while it was away.</summary>
    public int OtherBanksFinalDuringOutage { get; private set; }
    private bool OutageNow => _outageBank != 0 && _step >= OutageFromStep && _step < OutageToStep;

    private string DataDirectory => _root.Sub($"gen{_generation}");
    private string NextDataDirectory => _root.Sub($"gen{_generation + 1}");

    /// <summary>The smallest journal segments FasterLog's pages allow: a run's few megabytes free whole ones.</summary>
    private const long JournalSegmentBytes = 1L << 20;

    /// <summary>Starts on the current data directory with a clearing recorder fed by the replay and then the live outputs;
    /// snapshots only when the simulation asks (with the clearing recorder's view), the journal retired behind them.</summary>
    private SwitchEngine StartEngine()
    {
        ClearingRecorder clearing = _clearing = new ClearingRecorder(DataDirectory, new RecordingLog());
        var engine = new StrongBox<SwitchEngine>();
        EngineOptions options = EngineTestOptions.For(DataDirectory, _clock) with
        {
            ReplaySink = clearing.ReplaySink(),
            JournalSegmentBytes = JournalSegmentBytes,
            Snapshots = new SnapshotOptions
            {
                Enabled = true, EveryEvents = 0, AtBatchClose = false, AtStop = false, Keep = 2, WithViews = true,
                RetireJournal = true, ViewsTimeoutMs = 30_000, TestWritePoint = AtSnapshotWritePoint,
            },
            RestoreViews = views => RestoreClearingView(clearing, views),
        };
        engine.Value = SwitchEngine.Start(options, _config, new TeeHandler(_recorder, clearing, recordNo => MarkClearingView(engine.Value!, clearing, recordNo)));
        return engine.Value;
    }

    private sealed class TeeHandler(OutputRecorder recorder, ClearingRecorder clearing, Action<long> mark) : IEventHandler<OutputEvent>
    {
        public void OnEvent(ref OutputEvent evt, long sequence, bool endOfBatch)
        {
            if (evt.Kind == OutputKind.SnapshotMark)
            {
                mark(evt.CorrelationId);
                return;
            }
            clearing.Record(evt);
            recorder.OnEvent(ref evt, sequence, endOfBatch);
        }
    }

    /// <summary>The output thread, at a snapshot's mark: the clearing recorder's view (as the host's views hold it),
    /// once the files of the batches closed before the mark are complete.</summary>
    private static void MarkClearingView(SwitchEngine engine, ClearingRecorder clearing, long recordNo)
    {
        var w = new StateWriter();
        w.Section("sim-views");
        clearing.WriteMark(w);
        long lastClosed = clearing.LastClosedBatchId;
        if (lastClosed > 0 && !clearing.WaitForFiles(lastClosed, 30_000))
        {
            engine.SnapshotViewsFailed(recordNo, new IOException($"the files of batch {lastClosed}: {clearing.Fault}"));
            return;
        }
        engine.SnapshotViewsCaptured(recordNo, w.Written.ToArray());
    }

    private static void RestoreClearingView(ClearingRecorder clearing, byte[] views)
    {
        try
        {
            var r = new StateReader(views);
            r.Section("sim-views");
            clearing.RestoreMark(ref r);
            if (r.Remaining != 0) throw new InvalidDataException($"sim views: {r.Remaining} bytes after the clearing view");
        }
        catch (InvalidDataException)
        {
            clearing.ForgetMark(); // an older snapshot or the whole journal is tried next
            throw;
        }
    }

    public void Step()
    {
        _step++;
        if (_outageBank != 0 && _step == OutageFromStep) BeginOutage();
        // Snapshots and the crashes inside them draw from their own sequence too.
        int snapshotRoll = _snapshotRandom.Next(100);
        if (snapshotRoll < 2)
        {
            TakeSnapshot();
        }
        else if (snapshotRoll < 3)
        {
            CrashInsideSnapshot();
            return;
        }
        // Closes draw from their own sequence, so the rest of a seed's story is the same with or without them.
        if (_closeRandom.Next(100) < 2)
        {
            CloseBatch();
        }
        int roll = _random.Next(100);
        if (roll < 32) NewRequest();
        else if (roll < 62) DeliverToBank();
        else if (roll < 70) DeliverLateAnswer();
        else if (roll < 94) PassTime();
        else if (roll < 98) OperatorChange();
        else
        {
            Crash();
            return;
        }
        Settle();
    }

    public void Finish()
    {
        // Heal the world: every endpoint up, deliver everything, let time pass until nothing is left open.
        foreach (BankConfig bank in _config.Banks)
        {
            for (int i = 0; i < bank.Endpoints.Count; i++)
            {
                var up = new InputEvent { Kind = EventKind.SetEndpointState, EndpointIndex = i, EndpointState = EndpointState.Up };
                up.BankRef.Set(bank.Code.ToString("D3"));
                up.Operator.Set("op-sim");
                up.Note.Set("heal the world");
                _engine.Client().PublishCopy(up);
            }
        }
        for (int round = 0; round < 200 && (HasOpenTransactions() || _undelivered.Count > 0); round++)
        {
            while (_undelivered.Count > 0) DeliverToBank(lose: false);
            while (_lateAnswers.Count > 0) DeliverLateAnswer();
            _clock.Advance(5_000_000);
            _engine.PublishTick();
            Settle();
        }
        Assert.False(HasOpenTransactions(), "transactions still open after healing");
        CheckBankAgreesWithSwitch(requireAll: true);
        CloseBatch();
        Settle();
        CheckClearingFiles();
    }

    /// <summary>Every final transaction is in exactly one reconciliation line, in its own batch's file of its bank,
    /// as it is in the switch; written by recorders that crashed along with the engines.</summary>
    private void CheckClearingFiles()
    {
        SwitchLogic logic = _engine.Logic;
        long lastClosed = logic.OpenBatchId - 1;
        Assert.True(_clearing.WaitForFiles(lastClosed, 30_000), $"clearing files: {_clearing.Fault}");
        var lines = new Dictionary<long, (long Batch, ReconLine Line)>();
        for (long batch = 1; batch <= lastClosed; batch++)
        {
            foreach (string file in Directory.GetFiles(ClearingFiles.BatchDirectory(DataDirectory, batch), "recon-bank-*.csv"))
            {
                using FileStream stream = File.OpenRead(file);
                foreach (ReconLine line in ReconciliationFile.Parse(stream).Lines)
                {
                    Assert.True(lines.TryAdd(line.SwitchId, (batch, line)), $"transaction {line.SwitchId} in two reconciliation lines");
                }
            }
        }
        // Transactions not final are all still retained (only final ones leave the table); every other one is final.
        TransactionTable table = logic.Transactions;
        long open = table.RetainedIds().Count(id => !table.ById(id).IsFinal);
        Assert.Equal(table.LastId - open, lines.Count);
        // Each line is the switch's transaction, found by its order number whether retained or archived.
        foreach ((long id, (long batch, ReconLine line)) in lines)
        {
            Assert.True(logic.TryGetOrder(line.Institution, line.OrderNo, out Transaction tx), $"{line.Institution} {line.OrderNo} unknown to the switch");
            Assert.Equal((id, batch, line.Status, line.AmountFen), (tx.Id, tx.BatchId, ClearingCsv.StatusName(tx.Status), tx.AmountFen));
        }
    }

    private bool HasOpenTransactions()
    {
        TransactionTable table = _engine.Logic.Transactions;
        return table.RetainedIds().Any(id => !table.ById(id).IsFinal);
    }

    private void NewRequest()
    {
        string inst = Institutions[_random.Next(Institutions.Length)];
        int kind = _random.Next(100);
        InputEvent e;
        if (kind < 60 || _payments.Count == 0)
        {
            // Order numbers come from a small pool, so repeats (same or different content) happen.
            string order = $"P{_random.Next(400)}";
            long amount = _random.Next(1, 4) * 10_000L; // a few distinct amounts: repeats often match
            e = LogicHarness.Request(RequestType.AgreementPayment, inst, order, amount,
                BankRefs[_random.Next(BankRefs.Length)], $"6222{_random.Next(30):D4}");
            _payments.Add((inst, order));
        }
        else if (kind < 80)
        {
            e = LogicHarness.Request(RequestType.Payout, inst, $"O{_random.Next(300)}", _random.Next(1, 3) * 5_000L,
                BankRefs[_random.Next(BankRefs.Length)], $"6222{_random.Next(30):D4}");
        }
        else if (kind < 92)
        {
            var (pInst, pOrder) = _payments[_random.Next(_payments.Count)];
            e = LogicHarness.Request(RequestType.Refund, pInst, $"R{_random.Next(300)}", _random.Next(1, 3) * 5_000L,
                bank: "", account: "", originalOrderNo: pOrder);
        }
        else
        {
            e = LogicHarness.Request(RequestType.Query, inst, $"P{_random.Next(400)}", 0, bank: "", account: "", currency: "");
        }
        _engine.Client().PublishCopy(e);
    }

    private void DeliverToBank(bool lose = true)
    {
        if (_undelivered.Count == 0) return;
        int pick = _random.Next(_undelivered.Count);
        OutputEvent request = _undelivered[pick];
        _undelivered.RemoveAt(pick);
        if (lose && _random.Next(100) < 5)
        {
            return; // lost on the way to the bank
        }
        if (OutageNow && request.BankCode == _outageBank)
        {
            return; // the bank is away: nothing reaches it, nothing executes
        }
        long ageUs = _clock.NowUs() - request.TimestampUs;
        bool pastDeadline = ageUs > _config.Rules.BankTimeoutMs * 1000L;
        _ledger.TryGetValue(request.TransactionId, out BankEntry? entry);
        BankReply reply;
        string reason = "";
        switch (request.Operation)
        {
            case BankOperation.Debit:
            case BankOperation.Credit:
                if (entry is { Executed: true })
                {
                    throw new InvalidOperationException($"transaction {request.TransactionId} sent to the bank twice for execution");
                }
                if (pastDeadline || entry is { Reversed: true })
                {
                    return; // a bank refuses work past its deadline, or already reversed: nothing executes, no answer
                }
                bool ok = _random.Next(100) < 85;
                entry ??= new BankEntry(request);
                entry.Executed = true;
                entry.Succeeded = ok;
                _ledger[request.TransactionId] = entry;
                reply = ok ? BankReply.Succeeded : BankReply.Failed;
                reason = ok ? "" : FailReasons[_random.Next(FailReasons.Length)];
                break;
            case BankOperation.Query:
                if (entry is null || (!entry.Executed && !entry.Reversed)) reply = BankReply.NotFound;
                else if (entry.Reversed) { reply = BankReply.Failed; reason = "REVERSED"; }
                else reply = _random.Next(100) < 10 ? BankReply.Pending : entry.Succeeded ? BankReply.Succeeded : BankReply.Failed;
                break;
            case BankOperation.Reverse:
                entry ??= new BankEntry(request);
                entry.Reversed = true; // undoes a debit if it executed; bars it if it arrives later
                _ledger[request.TransactionId] = entry;
                reply = BankReply.Succeeded;
                break;
            default:
                throw new InvalidOperationException($"unexpected bank operation {request.Operation}");
        }
        var answer = new InputEvent { Kind = EventKind.BankResult, TransactionId = request.TransactionId, Operation = request.Operation, Reply = reply };
        answer.Reason.Set(reason);
        int fate = _random.Next(100);
        if (fate < 10) return;                                     // the answer is lost
        if (fate < 20) { _lateAnswers.Add(answer); return; }       // the answer arrives late
        _engine.Client().PublishCopy(answer);
    }

    private void DeliverLateAnswer()
    {
        if (_lateAnswers.Count == 0) return;
        int pick = _random.Next(_lateAnswers.Count);
        InputEvent answer = _lateAnswers[pick];
        _lateAnswers.RemoveAt(pick);
        _engine.Client().PublishCopy(answer);
    }

    private void CloseBatch()
    {
        var close = new InputEvent { Kind = EventKind.CloseBatch };
        close.Operator.Set("op-sim");
        _engine.Client().PublishCopy(close);
    }

    private void PassTime()
    {
        _clock.Advance(_random.Next(0, 1_500_000));
        _engine.PublishTick();
    }

    private void OperatorChange()
    {
        var e = new InputEvent();
        string bankRef = BankRefs[_random.Next(3)];
        e.BankRef.Set(bankRef);
        e.Operator.Set("op-sim");
        e.Note.Set("simulated change");
        if (_random.Next(2) == 0)
        {
            e.Kind = EventKind.SetEndpointWeights;
            e.EndpointCount = 2;
            int w = _random.Next(0, 10_001);
            e.WeightsBps[0] = w;
            e.WeightsBps[1] = 10_000 - w;
        }
        else
        {
            e.Kind = EventKind.SetEndpointState;
            e.EndpointIndex = _random.Next(2);
            e.EndpointState = (EndpointState)_random.Next(3);
            // Operators leave the away bank's endpoints alone while it is away (the draws are made all the same, so the
            // rest of the story does not shift): taken down by hand, it would refuse its new work before its own
            // bound or breakers could, and the outage would test nothing.
            if (OutageNow && int.Parse(bankRef) == _outageBank) return;
        }
        _engine.Client().PublishCopy(e);
    }

    /// <summary>The outage begins with the away bank's endpoints up: whatever operators did to them before.</summary>
    private void BeginOutage()
    {
        for (int i = 0; i < 2; i++)
        {
            var up = new InputEvent { Kind = EventKind.SetEndpointState, EndpointIndex = i, EndpointState = EndpointState.Up };
            up.BankRef.Set(_outageBank.ToString("D3"));
            up.Operator.Set("op-sim");
            up.Note.Set("before the outage");
            _engine.Publish(up);
        }
        Settle();
    }

    /// <summary>Waits for the engine, takes in what it handed out, and checks every invariant.</summary>
    private void Settle()
    {
        Assert.True(_engine.WaitUntilIdle(30_000), $"engine not idle: {_engine.Fault}");
        Absorb(_recorder.Drain());
        CheckInvariants();
    }

    private void Absorb(List<OutputEvent> outputs)
    {
        foreach (OutputEvent o in outputs)
        {
            switch (o.Kind)
            {
                case OutputKind.BankRequest:
                    _undelivered.Add(o);
                    break;
                case OutputKind.Feed:
                {
                    string inst = o.Institution.ToString();
                    long last = _lastFeedNo.GetValueOrDefault(inst);
                    Assert.True(o.FeedNo == last + 1, $"{inst} feed jumped from {last} to {o.FeedNo}");
                    _lastFeedNo[inst] = o.FeedNo;
                    RecordFinal(o);
                    break;
                }
                case OutputKind.Answer when o.Reject == RejectCode.BankUnresolvedLimit:
                    UnresolvedLimitRejects[o.BankCode] = UnresolvedLimitRejects.GetValueOrDefault(o.BankCode) + 1;
                    Assert.Equal($"bank {o.BankCode:D3} limit {_config.Rules.MaxUnresolvedPerBank}", o.Reason.ToString());
                    break;
                case OutputKind.Answer when o.Reject == RejectCode.TransactionTableFull:
                    throw new InvalidOperationException("the table refused a request: one bank's trouble held back everyone");
                case OutputKind.Answer when o.Status is TransactionStatus.Succeeded or TransactionStatus.Failed:
                    RecordFinal(o);
                    break;
            }
        }
    }

    private void RecordFinal(OutputEvent o)
    {
        var seen = (o.Status, o.FeedNo, o.Institution.ToString(), o.OrderNo.ToString(), o.BatchId);
        if (_finals.TryGetValue(o.TransactionId, out var before))
        {
            Assert.True(before == seen, $"final outcome of {o.TransactionId} changed from {before} to {seen}");
            return;
        }
        _finals.Add(o.TransactionId, seen);
        if (OutageNow && o.BankCode != _outageBank) OtherBanksFinalDuringOutage++;
    }

    private void CheckInvariants()
    {
        SwitchLogic logic = _engine.Logic;
        Assert.Equal(0, logic.PositionSumFen());
        long feeFen = 0, reservedFen = 0;
        foreach (Institution inst in logic.Institutions)
        {
            reservedFen += inst.ReservedDebitFen;
            Assert.True(inst.ReservedDebitFen >= 0);
        }
        foreach (Bank bank in logic.Banks)
        {
            foreach (Endpoint endpoint in bank.Endpoints)
            {
                Assert.InRange(endpoint.InFlight, 0, endpoint.InFlightCap);
            }
        }
        TransactionTable table = logic.Transactions;
        foreach (long id in table.RetainedIds())
        {
            Transaction tx = table.ById(id);
            Assert.True(tx.RefundedFen + tx.RefundReservedFen <= tx.AmountFen, $"refunds of {id} exceed it");
        }
        // The open batch's fees: of every success institutions were told in it, retained or (a small table wraps within a
        // batch) already in the archive.
        foreach (var (id, final) in _finals)
        {
            if (final.Status != TransactionStatus.Succeeded || final.BatchId != logic.OpenBatchId) continue;
            Assert.True(logic.TryGetOrder(final.Institution, final.OrderNo, out Transaction tx) && tx.Id == id, $"transaction {id} unknown to the switch");
            feeFen += tx.FeeFen;
        }
        Assert.Equal(feeFen, logic.SwitchFeeFen);
        foreach (Bank bank in logic.Banks)
        {
            Assert.InRange(bank.Unresolved, 0, _config.Rules.MaxUnresolvedPerBank);
        }
        logic.StateHash(); // recounts each bank's unresolved transactions, ring and parked, against its count
        CheckBankAgreesWithSwitch(requireAll: false);
    }

    /// <summary>Every final outcome the switch reported matches what the bank really did.</summary>
    private void CheckBankAgreesWithSwitch(bool requireAll)
    {
        foreach (var (id, final) in _finals)
        {
            _ledger.TryGetValue(id, out BankEntry? entry);
            bool moved = entry is { Executed: true, Succeeded: true, Reversed: false };
            Assert.True(moved == (final.Status == TransactionStatus.Succeeded),
                $"transaction {id}: switch says {final.Status}, bank executed={entry?.Executed} succeeded={entry?.Succeeded} reversed={entry?.Reversed}");
        }
        if (requireAll)
        {
            foreach (BankEntry entry in _ledger.Values.Where(e => e.Executed && e.Succeeded && !e.Reversed))
            {
                Assert.True(_finals.ContainsKey(entry.TransactionId), $"bank executed {entry.TransactionId} but no institution was told");
            }
        }
    }

    /// <summary>
    /// The process dies: a few events are in flight, the data directory is copied as it is on disk at this
    /// instant, and a new engine recovers from the copy. Everything handed out before the copy must survive;
    /// whatever the old engine did after the copy never happened.
    /// </summary>
    private void Crash()
    {
        Crashes++;
        PublishInFlight();
        Absorb(_recorder.Drain());
        TempDirectory.CopyTree(DataDirectory, NextDataDirectory);
        RecoverFromCopy(expectedSnapshot: NewestSnapshot(NextDataDirectory), expectedSkipped: null);
    }

    /// <summary>A few events in flight at the crash instant.</summary>
    private void PublishInFlight()
    {
        int inFlight = _random.Next(0, 4);
        for (int i = 0; i < inFlight; i++)
        {
            if (_random.Next(2) == 0) NewRequest(); else DeliverToBank();
        }
    }

    /// <summary>A snapshot, while the logic goes on with a few events; published before the next step.</summary>
    private void TakeSnapshot()
    {
        if (_engine.Logic.EventsApplied == 0) return; // nothing to take a snapshot of yet
        Task<SnapshotResult> taken = _engine.RequestSnapshotAsync("sim");
        int meanwhile = _snapshotRandom.Next(0, 4);
        for (int i = 0; i < meanwhile; i++)
        {
            if (_snapshotRandom.Next(2) == 0) NewRequest(); else PassTime();
        }
        Assert.True(((IAsyncResult)taken).AsyncWaitHandle.WaitOne(60_000), "a snapshot took more than 60 s");
        SnapshotResult result = taken.GetAwaiter().GetResult();
        Assert.True(File.Exists(result.Path), $"snapshot {result.Path} not published");
        SnapshotsTaken++;
        Settle();
    }

    // The crash planned inside the snapshot being written: the instant, and whether the copied disk tears its newest snapshot.
    private SnapshotWritePoint? _crashAt;
    private bool _tearAtCrash;
    private List<OutputEvent>? _handedOutAtCrash;
    private (string? Expected, string? Torn) _snapshotsAtCrash;

    /// <summary>
    /// The process dies inside a snapshot's writing, at an instant the seed picks (<see cref="SnapshotWritePoint"/>): the
    /// writer thread copies the data directory there (the journal and logic go on meanwhile). A third of these crashes
    /// also tear the newest published snapshot on the copied disk (<see cref="Tear"/>: the ways a lost write shows): recovery must find it out, report it and start from the older one or the whole journal. The snapshot
    /// being written is never the one recovery uses unless it was renamed into place.
    /// </summary>
    private void CrashInsideSnapshot()
    {
        if (_engine.Logic.EventsApplied == 0)
        {
            Crash(); // nothing to take a snapshot of yet
            return;
        }
        Crashes++;
        var point = (SnapshotWritePoint)_snapshotRandom.Next(Enum.GetValues<SnapshotWritePoint>().Length);
        SnapshotCrashes[point] = SnapshotCrashes.GetValueOrDefault(point) + 1;
        _tearAtCrash = _snapshotRandom.Next(3) == 0;
        _handedOutAtCrash = null;
        _crashAt = point;
        Task<SnapshotResult> writing = _engine.RequestSnapshotAsync("sim-crash");
        PublishInFlight();
        Assert.True(((IAsyncResult)writing).AsyncWaitHandle.WaitOne(60_000), "a snapshot took more than 60 s");
        Assert.True(writing.Exception is null, $"the snapshot failed: {writing.Exception}");
        List<OutputEvent> handedOut = _handedOutAtCrash ?? throw new InvalidOperationException($"the snapshot passed no {point}");
        Absorb(handedOut);
        RecoverFromCopy(_snapshotsAtCrash.Expected, _snapshotsAtCrash.Torn);
    }

    /// <summary>The writer thread, at each instant of a snapshot's writing: the planned crash's disk is copied here.</summary>
    private void AtSnapshotWritePoint(SnapshotWritePoint point)
    {
        if (_crashAt != point) return;
        _crashAt = null;
        List<OutputEvent> handedOut = _recorder.Drain(); // handed out before the crash instant
        string copy = NextDataDirectory;
        TempDirectory.CopyTree(DataDirectory, copy);
        IReadOnlyList<(long RecordNo, string Path)> published = new SnapshotStore(copy).List();
        string? torn = null;
        if (_tearAtCrash && published.Count > 0)
        {
            torn = Path.GetFileName(published[0].Path);
            Tear(published[0].Path);
            published = published.Skip(1).ToList();
        }
        _snapshotsAtCrash = (published.Count > 0 ? Path.GetFileName(published[0].Path) : null, torn);
        _handedOutAtCrash = handedOut;
    }

    /// <summary>A lost write: the file cut short, its tail (within the second half) zeros at the same length, or one 512-byte
    /// sector in it zeros (one that held data: often only the checksum tells that one).</summary>
    private void Tear(string path)
    {
        TornSnapshots++;
        byte[] bytes = File.ReadAllBytes(path);
        int from = bytes.Length / 2 + _snapshotRandom.Next(bytes.Length / 2);
        switch (_snapshotRandom.Next(3))
        {
            case 0:
                bytes = bytes[..from];
                break;
            case 1:
                bytes.AsSpan(from).Clear();
                break;
            default:
                int[] data = Enumerable.Range(0, bytes.Length).Where(i => bytes[i] != 0).ToArray();
                int sector = data[_snapshotRandom.Next(data.Length)] & ~511;
                bytes.AsSpan(sector, Math.Min(512, bytes.Length - sector)).Clear();
                break;
        }
        File.WriteAllBytes(path, bytes);
    }

    private static string? NewestSnapshot(string dataDirectory) =>
        new SnapshotStore(dataDirectory).List() is { Count: > 0 } list ? Path.GetFileName(list[0].Path) : null;

    /// <summary>
    /// The old engine is dropped (whatever it did after the copy never happened) and a new one recovers from the copy:
    /// from <paramref name="expectedSnapshot"/> (null: the whole journal, its archive first) having set aside
    /// <paramref name="expectedSkipped"/>, to the state a whole replay of the copy's journal reaches.
    /// </summary>
    private void RecoverFromCopy(string? expectedSnapshot, string? expectedSkipped)
    {
        string crashed = DataDirectory;
        _generation++;
        _engine.Dispose();
        _clearing.Dispose();
        _recorder.Drain(); // effects after the crash instant: they never happened

        // The whole history of the copy, replayed on a copy of it: what any recovery must reach.
        string replayed = _root.Sub($"replay{_generation}");
        TempDirectory.CopyTree(DataDirectory, replayed);
        ulong wholeReplayHash = JournalReplay.Run(replayed, new DiscardingSink(), segmentBytes: JournalSegmentBytes).StateHash();
        Directory.Delete(replayed, recursive: true);

        _recorder = new OutputRecorder();
        _engine = StartEngine();
        RecoveryReport recovery = _engine.Recovery;
        Assert.True(recovery.ConfigFromJournal);
        Assert.Equal(expectedSnapshot, recovery.SnapshotPath is null ? null : Path.GetFileName(recovery.SnapshotPath));
        Assert.Equal(expectedSkipped is null ? 0 : 1, recovery.SnapshotsSkipped.Count);
        if (expectedSkipped is not null) Assert.StartsWith(expectedSkipped + ":", recovery.SnapshotsSkipped[0]);
        Assert.True(wholeReplayHash == _engine.Logic.StateHash(),
            $"recovered from {recovery.SnapshotPath ?? "the whole journal"}: its state differs from a whole replay of the same journal");
        IReadOnlyList<(long First, long End, string Path)> archived = Journal.JournalArchive.Files(SnapshotStore.JournalArchiveDirectory(DataDirectory));
        JournalRecordsRetired = archived.Count > 0 ? archived[^1].End : 0;
        if (recovery.SnapshotPath is not null) StartsFromSnapshot++;
        else if (JournalRecordsRetired > 0) StartsFromJournalArchive++;
        SwitchLogic logic = _engine.Logic;
        foreach (var (id, final) in _finals)
        {
            Assert.True(logic.TryGetOrder(final.Institution, final.OrderNo, out Transaction tx),
                $"acknowledged {final.Institution}/{final.OrderNo} lost in the crash");
            Assert.Equal(id, tx.Id);
            Assert.Equal(final.Status, tx.Status);
            Assert.Equal(final.FeedNo, tx.FeedNo);
            Assert.Equal(final.BatchId, tx.BatchId);
        }
        foreach (Institution inst in logic.Institutions)
        {
            // The feed resumes from what survived; what institutions saw is a prefix of it.
            long seen = _lastFeedNo.GetValueOrDefault(inst.Config.Code);
            Assert.True(inst.FeedCount >= seen, $"{inst.Config.Code} feed went back from {seen} to {inst.FeedCount}");
            _lastFeedNo[inst.Config.Code] = inst.FeedCount;
        }
        // Outcomes journaled before the crash instant whose outputs had not left yet: institutions read them from the
        // feed rebuilt by replay (the skip ahead above), so they count as told.
        // A bank request names its order, so such an outcome is found wherever it now is (retained, or archived: a
        // parked transaction leaves for the archive as soon as it is final).
        foreach (BankEntry entry in _ledger.Values)
        {
            if (!_finals.ContainsKey(entry.TransactionId) && logic.TryGetOrder(entry.Institution, entry.OrderNo, out Transaction tx)
                && tx.Id == entry.TransactionId && tx.IsFinal)
            {
                _finals.Add(tx.Id, (tx.Status, tx.FeedNo, entry.Institution, entry.OrderNo, tx.BatchId));
            }
        }
        foreach (long id in logic.Transactions.RetainedIds())
        {
            Transaction tx = logic.Transactions.ById(id);
            if (tx.IsFinal && !_finals.ContainsKey(id))
            {
                _finals.Add(id, (tx.Status, tx.FeedNo, logic.Institutions[tx.InstitutionIndex].Config.Code, tx.OrderNo.ToString(), tx.BatchId));
            }
        }
        // Every bank request handed out before the crash instant was for a transaction that survived it.
        Assert.All(_undelivered, r => Assert.True(r.TransactionId <= logic.Transactions.LastId,
            $"a request for {r.TransactionId} went to the bank but the transaction did not survive"));
        CheckInvariants();
        Directory.Delete(crashed, recursive: true);
    }

    public void Dispose()
    {
        _engine.Dispose();
        _clearing.Dispose();
        _root.Dispose();
    }

    private sealed class BankEntry(OutputEvent request)
    {
        public long TransactionId { get; } = request.TransactionId;
        public long AmountFen { get; } = request.AmountFen;
        public string Institution { get; } = request.Institution.ToString();
        public string OrderNo { get; } = request.OrderNo.ToString();
        public bool Executed;
        public bool Succeeded;
        public bool Reversed;
    }
}
