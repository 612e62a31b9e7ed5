using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Pipeline;

/// <summary>The whole engine, threads and journal on disk: ordering, durability before effects, recovery, replay.</summary>
public sealed class EnginePipelineTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly ManualClock _clock = new(LogicHarness.StartUs);

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Requests_flow_through_journal_and_logic_and_every_output_follows_its_durable_event()
    {
        var recorder = new DurabilityCheckingRecorder();
        using (SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(_dir.Path, _clock), TestConfigs.Small(), recorder))
        {
            recorder.Engine = engine;
            string[] banks = ["102", "103", "308"]; // 200 over three banks stays under each endpoint's in-flight cap
            for (int i = 0; i < 200; i++)
            {
                engine.Client().PublishCopy(LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", $"P{i}", 100 + i, banks[i % 3], account: $"A{i}"));
            }
            Assert.True(engine.WaitUntilIdle(30_000), "engine did not go idle");
            List<OutputEvent> requests = recorder.Recorded.Where(o => o.Kind == OutputKind.BankRequest).ToList();
            Assert.Equal(200, requests.Count);
            foreach (OutputEvent request in requests)
            {
                var answer = new InputEvent { Kind = EventKind.BankResult, TransactionId = request.TransactionId, Operation = request.Operation, Reply = BankReply.Succeeded };
                engine.Client().PublishCopy(answer);
            }
            Assert.True(engine.WaitUntilIdle(30_000));
            Assert.Null(engine.Fault);
            Assert.Equal(200, recorder.Recorded.Count(o => o.Kind == OutputKind.Feed));
            Assert.Equal(Enumerable.Range(1, 200).Select(i => (long)i), recorder.Recorded.Where(o => o.Kind == OutputKind.Feed).Select(o => o.FeedNo));
            Assert.Equal(0, recorder.ViolationCount);
            Assert.Equal(0, engine.Logic.PositionSumFen());
        }
    }

    /// <summary>The logic wakes a sleeping output thread once per batch, not once per output: before, the output thread
    /// (faster than the logic) fell asleep after nearly every output and each one cost the logic a lock and a futex wake.</summary>
    [Fact]
    public void A_batch_of_requests_wakes_the_output_thread_once_per_logic_batch()
    {
        const int requests = 200;
        var recorder = new OutputRecorder();
        using SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(_dir.Path, _clock), TestConfigs.Small(), recorder);
        string[] banks = ["102", "103", "308"];
        long hi = engine.Claim(requests);
        long lo = hi - requests + 1;
        for (long s = lo; s <= hi; s++)
        {
            int i = (int)(s - lo);
            engine.Slot(s) = LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", $"W{i}", 100 + i, banks[i % 3], account: $"A{i}");
        }
        engine.Publish(lo, hi);
        Assert.True(engine.WaitUntilIdle(30_000), "engine did not go idle");
        Assert.Null(engine.Fault);

        Assert.Equal(requests, recorder.Drain().Count(o => o.Kind == OutputKind.BankRequest));
        // The logic's batches follow the journal's commits (never more of them); one wake at most per batch.
        Assert.InRange(engine.OutputWakes, 0, engine.JournalCommits);
    }

    [Fact]
    public void A_restart_on_the_same_directory_recovers_the_same_state()
    {
        ulong hash;
        using (SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(_dir.Path, _clock), TestConfigs.Small(), new OutputRecorder()))
        {
            Assert.False(engine.Recovery.ConfigFromJournal);
            RunSettledPayments(engine, 50);
            engine.Client().PublishCopy(LogicHarness.Request(RequestType.AgreementPayment, "TENPAY", "LEFT-OPEN", 500));
            Assert.True(engine.WaitUntilIdle(30_000));
            hash = engine.Logic.StateHash();
        }
        var recorder = new OutputRecorder();
        using (SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(_dir.Path, _clock), TestConfigs.Small(), recorder))
        {
            Assert.True(engine.Recovery.ConfigFromJournal);
            Assert.False(engine.Recovery.ConfigDiffers);
            Assert.Equal(1, engine.Recovery.Unresolved);
            Assert.Equal(51, engine.Recovery.LastTransactionId);
            Assert.Equal(hash, engine.Logic.StateHash());
            Assert.Empty(recorder.Outputs); // replay emits nothing

            // The open one is resolved by asking its bank once time moves on.
            _clock.Advance(2_000_000);
            engine.PublishTick();
            _clock.Advance(1_000_000);
            engine.PublishTick();
            Assert.True(engine.WaitUntilIdle(30_000));
            Assert.Contains(recorder.Drain(), o => o.Kind == OutputKind.BankRequest && o.Operation == BankOperation.Query && o.OrderNo.ToString() == "LEFT-OPEN");

            // And it keeps appending after the recovered records.
            RunSettledPayments(engine, 5, prefix: "AFTER");
            hash = engine.Logic.StateHash();
        }
        using (SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(_dir.Path, _clock), TestConfigs.Small(), new OutputRecorder()))
        {
            Assert.Equal(hash, engine.Logic.StateHash());
        }
    }

    [Fact]
    public void Restart_with_another_configuration_keeps_the_journals_and_says_so()
    {
        using (SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(_dir.Path, _clock), TestConfigs.Small(), new OutputRecorder()))
        {
            RunSettledPayments(engine, 3);
        }
        using (SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(_dir.Path, _clock), TestConfigs.Small(transactionCapacity: 2048), new OutputRecorder()))
        {
            Assert.True(engine.Recovery.ConfigDiffers);
            Assert.Equal(1024, engine.Logic.Config.Rules.TransactionCapacity);
        }
    }

    [Fact]
    public void Replaying_the_journal_gives_the_same_state_hash_and_the_same_outputs()
    {
        var live = new OutputRecorder();
        ulong hash;
        using (SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(_dir.Path, _clock), TestConfigs.Small(), live))
        {
            new RandomWork(engine, live, _clock, seed: 20261121).Run(1_500);
            hash = engine.Logic.StateHash();
        }

        // A second, independent run of the same journal: outputs captured this time.
        var firstReplay = new CollectingSink();
        var secondReplay = new CollectingSink();
        SwitchLogic a = JournalReplay.Run(_dir.Path, firstReplay);
        SwitchLogic b = JournalReplay.Run(_dir.Path, secondReplay);
        Assert.Equal(hash, a.StateHash());
        Assert.Equal(hash, b.StateHash());
        Assert.True(firstReplay.Outputs.Count > 1_000, $"only {firstReplay.Outputs.Count} outputs");
        Assert.Equal(firstReplay.Outputs, secondReplay.Outputs);
    }

    [Fact]
    public void Outputs_of_the_live_run_equal_the_outputs_of_a_replay()
    {
        var live = new OutputRecorder();
        using (SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(_dir.Path, _clock), TestConfigs.Small(), live))
        {
            RunSettledPayments(engine, 30);
            engine.Client().PublishCopy(LogicHarness.Request(RequestType.Payout, "ALIPAY", "X", 0));
            _clock.Advance(5_000_000);
            engine.PublishTick();
            Assert.True(engine.WaitUntilIdle(30_000));
        }
        var replayed = new CollectingSink();
        JournalReplay.Run(_dir.Path, replayed);
        Assert.Equal(live.Outputs.ToList(), replayed.Outputs);
    }

    [Fact]
    public void A_fault_stops_the_engine_loudly_and_producers_are_refused()
    {
        using SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(_dir.Path, _clock), TestConfigs.Small(), new OutputRecorder());
        // A genesis record cannot travel the ring: the journaler refuses it and the whole engine halts. The client refuses
        // to publish one (its fill check), so the fault is injected past it, straight into the ring.
        engine.Publish(new InputEvent { Kind = EventKind.Genesis });
        // Polled with a generous bound: on a loaded machine the journaler may take seconds to reach the event.
        long deadline = Environment.TickCount64 + 30_000;
        while (engine.Fault is null && Environment.TickCount64 < deadline) Thread.Sleep(10);
        Assert.NotNull(engine.Fault);
        Assert.False(engine.WaitUntilIdle(1_000)); // a halted engine is never idle
        var request = new EventCopy(LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", "AFTER-FAULT", 100));
        Assert.Throws<Switch.Engine.Client.EngineStoppedException>(() => engine.Client().Publish(ref request));
    }

    private void RunSettledPayments(SwitchEngine engine, int count, string prefix = "P")
    {
        var recorder = new List<OutputEvent>();
        for (int i = 0; i < count; i++)
        {
            engine.Client().PublishCopy(LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", $"{prefix}{i}", 1_000 + i, account: $"A{i}"));
        }
        Assert.True(engine.WaitUntilIdle(30_000));
        for (long id = engine.Logic.Transactions.LastId - count + 1; id <= engine.Logic.Transactions.LastId; id++)
        {
            engine.Client().PublishCopy(new InputEvent { Kind = EventKind.BankResult, TransactionId = id, Operation = BankOperation.Debit, Reply = BankReply.Succeeded });
        }
        Assert.True(engine.WaitUntilIdle(30_000));
    }

    /// <summary>Checks, as each output is handed out, that the event behind it is already durable.</summary>
    private sealed class DurabilityCheckingRecorder : Switch.Ring.IEventHandler<OutputEvent>
    {
        public volatile SwitchEngine? Engine;
        public readonly List<OutputEvent> Recorded = new();
        public int ViolationCount;

        public void OnEvent(ref OutputEvent evt, long sequence, bool endOfBatch)
        {
            SwitchEngine? engine = Engine;
            // Every output comes from an applied event, and the logic applies only committed events.
            if (engine is not null && engine.AppliedSequence > engine.DurableSequence)
            {
                Interlocked.Increment(ref ViolationCount);
            }
            lock (Recorded) Recorded.Add(evt);
        }
    }
}
