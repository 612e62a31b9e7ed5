using Switch.Engine.Client;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Pipeline;

/// <summary>The adapters' one way in: publish guaranteed, the full-ring policy, and recovery apart from running.</summary>
public sealed class EngineClientTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly ManualClock _clock = new(LogicHarness.StartUs);

    public void Dispose() => _dir.Dispose();

    /// <summary>Writes half a request, then fails, as a fill meeting a value it cannot take would.</summary>
    private readonly struct ThrowingFill : IInputFill
    {
        public void Fill(ref InputEvent slot, long correlationId)
        {
            slot.PrepareInstitutionRequest(correlationId, RequestType.AgreementPayment, 100, "ALIPAY"u8, "HALF", null, "102", "6222", "CNY", null, 0);
            throw new FormatException("amount_fen: not a number");
        }
    }

    private readonly struct BadWeightsFill : IInputFill
    {
        public void Fill(ref InputEvent slot, long correlationId) =>
            slot.PrepareSetEndpointWeights(correlationId, "102", new int[InputEvent.MaxEndpointsPerBank + 1], 0, 0, "ops", "too many");
    }

    /// <summary>Payments of a batch, input i the i-th; the one at <paramref name="failAt"/> throws half written.</summary>
    private readonly struct PaymentsFill(string tag, int failAt = -1) : IInputBatchFill
    {
        public void Fill(ref InputEvent slot, int index)
        {
            slot = LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", $"{tag}-{index}", 100 + index);
            if (index == failAt) throw new FormatException("half written");
        }
    }

    [Fact]
    public void A_batch_goes_in_by_claims_of_at_most_MaxBatchClaim_in_order_and_a_failed_fill_voids_only_its_slot()
    {
        var outputs = new OutputRecorder();
        using SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(_dir.Path, _clock), TestConfigs.Small(), outputs);
        var client = new EngineClient(engine, fullRingWaitMs: EngineClient.MaxFullRingWaitMs);
        int count = 2 * EngineClient.MaxBatchClaim + 300;
        var fill = new PaymentsFill("B", failAt: 1_500);
        Exception? refusal = null;
        InputFillException e = Assert.Throws<InputFillException>(() => client.PublishBatch(ref fill, count, out refusal));
        Assert.StartsWith("INPUT_FILL_FAILED: PaymentsFill: FormatException: half written", e.Message);
        Assert.Null(refusal);
        Assert.True(engine.WaitUntilIdle(60_000), "the engine stalled behind the batch");
        Assert.Null(engine.Fault);
        Assert.Equal(1, engine.VoidInputs);
        Assert.Equal(count - 1, engine.Logic.EventsApplied);
        // In batch order: the first ones sent to the bank (whose answers never come here), the rest refused by the small
        // configuration's bound on a bank's unresolved transactions, each answered.
        List<OutputEvent> all = outputs.Drain();
        List<long> sent = all.Where(o => o.Kind == OutputKind.BankRequest).Select(o => o.AmountFen).ToList();
        List<string> refused = all.Where(o => o.Kind == OutputKind.Answer).Select(o => o.OrderNo.ToString()).ToList();
        Assert.Equal(Enumerable.Range(0, sent.Count).Select(i => 100L + i), sent);
        Assert.Equal(Enumerable.Range(sent.Count, count - sent.Count).Where(i => i != 1_500).Select(i => $"B-{i}"), refused);
    }

    [Fact]
    public void A_batch_that_meets_a_full_ring_says_how_many_went_in_and_why_the_rest_did_not()
    {
        EngineOptions options = EngineTestOptions.For(_dir.Path, _clock) with { InputRingSize = 64, MaxBatchSize = 64 };
        using SwitchEngine engine = SwitchEngine.Recover(options, TestConfigs.Small()); // Not running: the ring fills.
        var client = new EngineClient(engine, fullRingWaitMs: 50);
        var fill = new PaymentsFill("F");
        int published = client.PublishBatch(ref fill, 100, out Exception? refusal);
        Assert.Equal(engine.InputCapacity, published);
        Assert.IsType<EngineBusyException>(refusal);
    }

    [Fact]
    public void A_batch_takes_the_few_slots_a_nearly_full_ring_has_rather_than_waiting_for_a_run_of_them()
    {
        EngineOptions options = EngineTestOptions.For(_dir.Path, _clock) with { InputRingSize = 64, MaxBatchSize = 64 };
        using SwitchEngine engine = SwitchEngine.Recover(options, TestConfigs.Small()); // Not running: nothing frees a slot.
        var client = new EngineClient(engine, fullRingWaitMs: 50);
        var single = new EventCopy(LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", "ONE", 100));
        for (int i = 0; i < engine.InputCapacity - 3; i++) client.Publish(ref single, 1 + i);
        var fill = new PaymentsFill("F");
        int published = client.PublishBatch(ref fill, 10, out Exception? refusal); // 3 free: claims of 10 and 5 fail, 2 then 1 go in.
        Assert.Equal(3, published);
        Assert.IsType<EngineBusyException>(refusal);
    }

    /// <summary>A caller's requests of a range, input i the i-th, each with the caller's correlation id; the one at
    /// <paramref name="failAt"/> throws half written.</summary>
    private readonly struct CallerRangeFill(string tag, long correlationId, int failAt = -1) : IInputBatchFill
    {
        public void Fill(ref InputEvent slot, int index)
        {
            slot = LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", $"{tag}-{index}", 100 + index);
            slot.CorrelationId = correlationId;
            if (index == failAt) throw new FormatException("half written");
        }
    }

    /// <summary>A running engine and a client that waits out a full ring as long as it may.</summary>
    private SwitchEngine StartPatient(OutputRecorder outputs, out EngineClient client)
    {
        SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(_dir.Path, _clock), TestConfigs.Small(), outputs);
        client = new EngineClient(engine, fullRingWaitMs: EngineClient.MaxFullRingWaitMs);
        return engine;
    }

    [Fact]
    public async Task A_callers_range_goes_in_order_by_claims_of_at_most_MaxBatchClaim_each_with_its_correlation_id()
    {
        var outputs = new OutputRecorder();
        using SwitchEngine engine = StartPatient(outputs, out EngineClient client);
        int count = 2 * EngineClient.MaxBatchClaim + 300;
        await client.PublishRangeAsync(new CallerRangeFill("R", correlationId: 77), count, CancellationToken.None);
        Assert.True(engine.WaitUntilIdle(60_000), "the engine stalled behind the range");
        Assert.Null(engine.Fault);
        Assert.Equal(0, engine.VoidInputs);
        Assert.Equal(count, engine.Logic.EventsApplied);
        List<OutputEvent> all = outputs.Drain();
        List<long> sent = all.Where(o => o.Kind == OutputKind.BankRequest).Select(o => o.AmountFen).ToList();
        List<OutputEvent> answered = all.Where(o => o.Kind == OutputKind.Answer).ToList();
        Assert.Equal(Enumerable.Range(0, sent.Count).Select(i => 100L + i), sent);
        Assert.Equal(Enumerable.Range(sent.Count, count - sent.Count).Select(i => $"R-{i}"), answered.Select(o => o.OrderNo.ToString()));
        Assert.All(answered, o => Assert.Equal(77, o.CorrelationId));
    }

    [Fact]
    public async Task A_callers_range_stops_at_a_failed_fill_whose_slot_and_the_rest_of_its_claim_go_out_void()
    {
        var outputs = new OutputRecorder();
        using SwitchEngine engine = StartPatient(outputs, out EngineClient client);
        int count = 2 * EngineClient.MaxBatchClaim + 300;
        int failAt = EngineClient.MaxBatchClaim + 10; // in a later claim
        InputFillException e = await Assert.ThrowsAsync<InputFillException>(
            () => client.PublishRangeAsync(new CallerRangeFill("V", 5, failAt), count, CancellationToken.None).AsTask());
        Assert.StartsWith("INPUT_FILL_FAILED: CallerRangeFill: FormatException: half written", e.Message);
        Assert.True(engine.WaitUntilIdle(60_000), "the engine stalled behind the range");
        Assert.Null(engine.Fault);
        // As if published one by one up to the failure: those before it applied, nothing after it.
        Assert.Equal(failAt, engine.Logic.EventsApplied);
        // The failed one and the rest of its claim (up to MaxBatchClaim: a claim takes less when the ring lacks room).
        Assert.InRange(engine.VoidInputs, 1, EngineClient.MaxBatchClaim - 10);
        List<OutputEvent> all = outputs.Drain();
        int sent = all.Count(o => o.Kind == OutputKind.BankRequest);
        Assert.Equal(Enumerable.Range(sent, failAt - sent).Select(i => $"V-{i}"),
            all.Where(o => o.Kind == OutputKind.Answer).Select(o => o.OrderNo.ToString()));
    }

    [Fact]
    public async Task A_callers_range_takes_the_slots_a_full_ring_frees_and_is_told_busy_when_none_free_in_time()
    {
        EngineOptions options = EngineTestOptions.For(_dir.Path, _clock) with { InputRingSize = 64, MaxBatchSize = 64 };
        using SwitchEngine engine = SwitchEngine.Recover(options, TestConfigs.Small()); // Not running: nothing frees a slot.
        var client = new EngineClient(engine, fullRingWaitMs: 50);
        var single = new EventCopy(LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", "ONE", 100));
        for (int i = 0; i < engine.InputCapacity - 3; i++) client.Publish(ref single, 1 + i);
        // 3 free: claims of 10 and 5 fail, 2 then 1 go in; the rest waits 50 ms for room that never comes.
        await Assert.ThrowsAsync<EngineBusyException>(() => client.PublishRangeAsync(new CallerRangeFill("F", 9), 10, CancellationToken.None).AsTask());
        Assert.False(engine.TryClaim(out _), "the range took the 3 free slots");
    }

    [Fact]
    public async Task A_fill_that_throws_leaves_the_ring_running_and_the_caller_a_precise_error()
    {
        var outputs = new OutputRecorder();
        ulong hash;
        long journaled;
        using (SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(_dir.Path, _clock), TestConfigs.Small(), outputs))
        {
            var client = new EngineClient(engine);
            var thrown = new ThrowingFill();
            InputFillException e = Assert.Throws<InputFillException>(() => client.Publish(ref thrown, 7));
            Assert.StartsWith("INPUT_FILL_FAILED: ThrowingFill: FormatException: amount_fen: not a number", e.Message);
            InputFillException bad = await Assert.ThrowsAsync<InputFillException>(() => client.CallAsync(new BadWeightsFill(), CancellationToken.None).AsTask());
            Assert.Contains("ArgumentOutOfRangeException", bad.Message);

            // Later inputs pass the void slots: applied and answered.
            for (int i = 0; i < 3; i++)
            {
                var fill = new EventCopy(LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", $"AFTER-{i}", 100 + i));
                client.Publish(ref fill, 100 + i);
            }
            Assert.True(engine.WaitUntilIdle(30_000), "the engine stalled behind the failed fill");
            Assert.Null(engine.Fault);
            Assert.Equal(2, engine.VoidInputs);
            Assert.Equal(3, outputs.Drain().Count(o => o.Kind == OutputKind.BankRequest));
            Assert.Equal(3, engine.Logic.EventsApplied); // the void slots are not inputs
            hash = engine.Logic.StateHash();
            journaled = engine.Logic.EventsApplied;
        }
        // The journal holds no void record: replay rebuilds the same state from the same number of events.
        using (SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(_dir.Path, _clock), TestConfigs.Small(), outputs))
        {
            Assert.Equal(journaled, engine.Recovery.EventsReplayed);
            Assert.Equal(hash, engine.Logic.StateHash());
        }
    }

    [Fact]
    public async Task A_ring_full_past_the_wait_is_ENGINE_BUSY_and_nothing_is_lost()
    {
        EngineOptions options = EngineTestOptions.For(_dir.Path, _clock) with { InputRingSize = 64, MaxBatchSize = 64 };
        var outputs = new OutputRecorder();
        using SwitchEngine engine = SwitchEngine.Recover(options, TestConfigs.Small());
        var client = new EngineClient(engine, fullRingWaitMs: 50);
        // Recovered, not running: inputs wait in the ring, which fills.
        for (int i = 0; i < engine.InputCapacity; i++)
        {
            var fill = new EventCopy(LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", $"Q{i}", 100 + i, bank: i % 2 == 0 ? "102" : "103"));
            client.Publish(ref fill, 1 + i);
        }
        var one = new EventCopy(LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", "OVER", 100));
        EngineBusyException busy = Assert.Throws<EngineBusyException>(() => client.Publish(ref one, 999));
        Assert.StartsWith("ENGINE_BUSY: the switch's input queue stayed full for 50 ms", busy.Message);
        await Assert.ThrowsAsync<EngineBusyException>(() => client.PublishAsync(one, 999, CancellationToken.None).AsTask());

        engine.Run(outputs);
        Assert.True(engine.WaitUntilIdle(30_000));
        Assert.Equal(engine.InputCapacity, engine.Logic.EventsApplied);
        Assert.DoesNotContain(outputs.Drain(), o => o.OrderNo.ToString() == "OVER");
    }

    [Fact]
    public void Inputs_published_between_recovery_and_run_reach_the_handler_attached_at_run()
    {
        using SwitchEngine engine = SwitchEngine.Recover(EngineTestOptions.For(_dir.Path, _clock), TestConfigs.Small());
        var client = new EngineClient(engine);
        Task<OutputEvent> call = client.CallAsync(new EventCopy(LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", "EARLY", 100)),
            CancellationToken.None).AsTask();
        Assert.False(engine.Running);
        var outputs = new RoutingRecorder(client.Answers);
        engine.Run(outputs);
        Assert.True(engine.WaitUntilIdle(30_000));
        Assert.Contains(outputs.Recorded.Outputs, o => o.Kind == OutputKind.BankRequest && o.OrderNo.ToString() == "EARLY");
        Assert.Throws<InvalidOperationException>(() => engine.Run(outputs));
        Assert.False(call.IsCompleted); // answered when the bank answers: the call waits for its own correlation id
        Assert.Equal(1, client.Answers.Count);
    }

    [Fact]
    public async Task A_call_whose_caller_gives_up_ends_canceled_with_the_callers_token_and_leaves_no_target()
    {
        // Recovered, not run: the published input is never answered, so only the caller's token can end the wait.
        using SwitchEngine engine = SwitchEngine.Recover(EngineTestOptions.For(_dir.Path, _clock), TestConfigs.Small());
        var client = new EngineClient(engine);
        using var giveUp = new CancellationTokenSource();
        Task<OutputEvent> call = client.CallAsync(new EventCopy(LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", "GIVEN-UP", 100)),
            giveUp.Token).AsTask();
        Assert.False(call.IsCompleted);
        Assert.Equal(1, client.Answers.Count);
        await giveUp.CancelAsync();
        OperationCanceledException e = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        Assert.Equal(giveUp.Token, e.CancellationToken);
        Assert.Equal(0, client.Answers.Count);
    }

    [Fact]
    public async Task Unary_calls_reuse_one_answer_object_and_each_gets_its_own_answer()
    {
        using SwitchEngine engine = SwitchEngine.Recover(EngineTestOptions.For(_dir.Path, _clock), TestConfigs.Small());
        var client = new EngineClient(engine);
        engine.Run(new RoutingRecorder(client.Answers));
        for (int i = 0; i < 5; i++)
        {
            // A query for an order never seen is answered at once (ORDER_NOT_FOUND): no bank is involved.
            OutputEvent answer = await client.CallAsync(new EventCopy(LogicHarness.Request(RequestType.Query, "ALIPAY", $"NONE-{i}", 0)),
                CancellationToken.None);
            Assert.Equal(RejectCode.OrderNotFound, answer.Reject);
            Assert.Equal($"NONE-{i}", answer.OrderNo.ToString());
        }
        Assert.Equal(1, client.RetainedUnaryAnswers);
        Assert.Equal(0, client.Answers.Count);
    }

    [Fact]
    public async Task A_late_answer_for_an_ended_call_never_completes_the_next_call_on_the_same_answer_object()
    {
        var router = new AnswerRouter();
        var pool = new UnaryAnswerPool(router);
        UnaryAnswer first = pool.Rent();
        long firstId = router.Register(first);
        using (var giveUp = new CancellationTokenSource())
        {
            first.Arm(firstId, giveUp.Token);
            ValueTask<OutputEvent> firstWait = first.Wait;
            await giveUp.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await firstWait);
        }

        // The output thread took the object from the router before the first call ended: its answer arrives now.
        await ReuseTakesOnlyItsOwnAnswerAsync(router, pool, first, firstId);
    }

    /// <summary>Rents the object <paramref name="previous"/> again for a second call: the answer for the earlier use's id,
    /// routed or handed to the object directly, never completes it; its own does.</summary>
    private static async Task ReuseTakesOnlyItsOwnAnswerAsync(AnswerRouter router, UnaryAnswerPool pool, UnaryAnswer previous, long previousId)
    {
        UnaryAnswer second = pool.Rent();
        Assert.Same(previous, second);
        long secondId = router.Register(second);
        second.Arm(secondId, CancellationToken.None);
        ValueTask<OutputEvent> secondWait = second.Wait;
        router.Route(new OutputEvent { CorrelationId = previousId, AmountFen = 1 });
        second.OnAnswer(new OutputEvent { CorrelationId = previousId, AmountFen = 1 });
        router.Flush();
        await Task.Delay(50);
        Assert.False(secondWait.IsCompleted);
        router.Route(new OutputEvent { CorrelationId = secondId, AmountFen = 2 });
        router.Flush();
        Assert.Equal(2, (await secondWait.AsTask().WaitAsync(TimeSpan.FromSeconds(30))).AmountFen);
        Assert.Equal(0, router.Count);
    }

    [Fact]
    public async Task A_call_canceled_after_its_answer_was_taken_gets_the_answer_once_and_its_reuse_gets_only_its_own()
    {
        var router = new AnswerRouter();
        var pool = new UnaryAnswerPool(router);
        using var giveUp = new CancellationTokenSource();
        UnaryAnswer first = pool.Rent();
        long firstId = router.Register(first);
        first.Arm(firstId, giveUp.Token);
        ValueTask<OutputEvent> firstWait = first.Wait;
        router.Route(new OutputEvent { CorrelationId = firstId, AmountFen = 7 });
        router.Flush();
        // The answer was taken first: the cancellation finds the call settled and changes nothing.
        await giveUp.CancelAsync();
        Assert.Equal(7, (await firstWait.AsTask().WaitAsync(TimeSpan.FromSeconds(30))).AmountFen);

        await ReuseTakesOnlyItsOwnAnswerAsync(router, pool, first, firstId);
    }

    /// <summary>Starts <paramref name="calls"/> unary waits, each on its own answer object and id (in <paramref name="ids"/>).</summary>
    private static Task<OutputEvent>[] AwaitAnswers(AnswerRouter router, UnaryAnswerPool pool, int calls, out long[] ids)
    {
        ids = new long[calls];
        var waits = new Task<OutputEvent>[calls];
        for (int i = 0; i < calls; i++)
        {
            UnaryAnswer call = pool.Rent();
            ids[i] = router.Register(call);
            call.Arm(ids[i], CancellationToken.None);
            waits[i] = call.Wait.AsTask();
        }
        return waits;
    }

    [Fact]
    public async Task Unary_answers_of_one_output_batch_are_handed_over_at_its_end_by_at_most_one_work_item_per_core()
    {
        var router = new AnswerRouter();
        var pool = new UnaryAnswerPool(router);
        const int Calls = 64;
        Task<OutputEvent>[] waits = AwaitAnswers(router, pool, Calls, out long[] ids);
        for (int i = 0; i < Calls; i++) router.Route(new OutputEvent { CorrelationId = ids[i], AmountFen = 1_000 + i });
        await Task.Delay(50);
        Assert.DoesNotContain(waits, w => w.IsCompleted); // nothing handed over before the output batch ends
        router.Flush();
        OutputEvent[] answers = await Task.WhenAll(waits).WaitAsync(TimeSpan.FromSeconds(30));
        for (int i = 0; i < Calls; i++) Assert.Equal(1_000 + i, answers[i].AmountFen);
        Assert.Equal(Math.Min(Calls, Environment.ProcessorCount), router.UnaryWorkItemsQueued); // not one per call
        Assert.Equal(0, router.Count);
        Assert.Equal(Calls, pool.Retained);

        router.Flush(); // a batch with no unary answer queues nothing
        Assert.Equal(Math.Min(Calls, Environment.ProcessorCount), router.UnaryWorkItemsQueued);
    }

    [Fact]
    public async Task A_batch_of_more_unary_answers_than_one_flush_holds_hands_them_over_in_several_and_answers_each_once()
    {
        var router = new AnswerRouter();
        var pool = new UnaryAnswerPool(router);
        int calls = 2 * AnswerRouter.MaxAnswersPerFlush + 3;
        Task<OutputEvent>[] waits = AwaitAnswers(router, pool, calls, out long[] ids);
        for (int i = 0; i < calls; i++) router.Route(new OutputEvent { CorrelationId = ids[i], AmountFen = i });
        // The first two full flushes went out within the batch; the last three wait for its end.
        await Task.WhenAll(waits.Take(2 * AnswerRouter.MaxAnswersPerFlush)).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(waits.Skip(2 * AnswerRouter.MaxAnswersPerFlush), w => Assert.False(w.IsCompleted));
        router.Flush();
        OutputEvent[] all = await Task.WhenAll(waits).WaitAsync(TimeSpan.FromSeconds(30));
        for (int i = 0; i < calls; i++) Assert.Equal(i, all[i].AmountFen);
        Assert.Equal(2 * Math.Min(AnswerRouter.MaxAnswersPerFlush, Environment.ProcessorCount) + Math.Min(3, Environment.ProcessorCount),
            router.UnaryWorkItemsQueued);
        Assert.Equal(0, router.Count);
    }

    [Fact]
    public async Task Many_concurrent_calls_through_the_running_engine_reuse_pooled_answers_and_each_gets_its_own_answer()
    {
        using SwitchEngine engine = SwitchEngine.Recover(EngineTestOptions.For(_dir.Path, _clock), TestConfigs.Small());
        var client = new EngineClient(engine);
        engine.Run(new RoutingRecorder(client.Answers));
        const int Callers = 64;
        const int CallsEach = 40;
        // A query for an order never seen is answered at once (ORDER_NOT_FOUND), naming the order asked about: a call
        // completed with another's answer, or twice, fails here (the second completion of a use throws).
        Task[] callers = Enumerable.Range(0, Callers).Select(c => Task.Run(async () =>
        {
            for (int i = 0; i < CallsEach; i++)
            {
                string orderNo = $"Q-{c}-{i}";
                OutputEvent answer = await client.CallAsync(new EventCopy(LogicHarness.Request(RequestType.Query, "ALIPAY", orderNo, 0)),
                    CancellationToken.None);
                Assert.Equal(RejectCode.OrderNotFound, answer.Reject);
                Assert.Equal(orderNo, answer.OrderNo.ToString());
            }
        })).ToArray();
        await Task.WhenAll(callers).WaitAsync(TimeSpan.FromSeconds(120));
        Assert.Equal(0, client.Answers.Count);
        Assert.InRange(client.RetainedUnaryAnswers, 1, Callers); // reused: never more objects than calls at once
    }

    private sealed class RoutingRecorder(AnswerRouter answers) : Ring.IEventHandler<OutputEvent>
    {
        public OutputRecorder Recorded { get; } = new();

        public void OnEvent(ref OutputEvent evt, long sequence, bool endOfBatch)
        {
            Recorded.OnEvent(ref evt, sequence, endOfBatch);
            if (evt.Kind == OutputKind.Answer) answers.Route(evt);
            if (endOfBatch) answers.Flush(); // as the host's output dispatcher: answers are handed over per output batch
        }
    }
}
