using FsCheck;
using FsCheck.Fluent;
using Switch.Engine.Business;
using Switch.Engine.Clearing;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Clearing;

/// <summary>
/// Random interleavings of payments, payouts, bank answers, ticks (timeouts, follow-ups) and closes: money is
/// conserved in every batch, and every final outcome lands in exactly one batch, the one open when it became final.
/// </summary>
public sealed class BatchPropertyTests
{
    /// <summary>Plays one script (each int is an operation and its argument) through a harness; returns every output.</summary>
    private static List<OutputEvent> Play(int[] script)
    {
        var h = new LogicHarness();
        var pending = new List<OutputEvent>();
        var all = new List<OutputEvent>();
        void Take(List<OutputEvent> outputs)
        {
            all.AddRange(outputs);
            foreach (OutputEvent o in outputs)
            {
                if (o.Kind == OutputKind.BankRequest) pending.Add(o);
                if (o.Kind == OutputKind.Feed) pending.RemoveAll(p => p.TransactionId == o.TransactionId);
            }
        }
        string[] banks = ["102", "103", "308"];
        string[] institutions = ["ALIPAY", "TENPAY"];
        int n = 0;
        foreach (int raw in script)
        {
            int value = Math.Abs(raw % 1_000_000);
            n++;
            switch (value % 7)
            {
                case 0:
                case 1:
                    Take(h.Pay($"P{n}", 1 + value, institutions[value % 2], banks[value % 3], account: $"A{value % 50}"));
                    break;
                case 2:
                    Take(h.Payout($"O{n}", 1 + value / 10, institutions[value % 2], banks[value % 3]));
                    break;
                case 3:
                case 4:
                    if (pending.Count > 0)
                    {
                        OutputEvent p = pending[value % pending.Count];
                        Take(h.BankAnswer(p.TransactionId, p.Operation, value % 4 == 0 ? BankReply.Failed : BankReply.Succeeded));
                    }
                    break;
                case 5:
                    Take(h.Tick(value % 1_500));
                    break;
                case 6:
                    Take(h.CloseBatch());
                    break;
            }
        }
        Take(h.CloseBatch()); // every final outcome is now in a closed batch
        return all;
    }

    private static void CheckBatches(List<OutputEvent> outputs)
    {
        var assembler = new ClosedBatchAssembler();
        var batchOf = new Dictionary<long, long>();
        var finalisedPerBatch = new Dictionary<long, long>();
        var expectedNet = new Dictionary<(long Batch, string Id), long>();
        long openBatchId = 1;
        foreach (OutputEvent o in outputs)
        {
            switch (o.Kind)
            {
                case OutputKind.Feed:
                    Assert.Equal(openBatchId, o.BatchId); // the batch open when it became final
                    Assert.True(batchOf.TryAdd(o.TransactionId, o.BatchId), $"{o.TransactionId} final twice");
                    finalisedPerBatch[o.BatchId] = finalisedPerBatch.GetValueOrDefault(o.BatchId) + 1;
                    if (o.Status == TransactionStatus.Succeeded)
                    {
                        long bankDelta = o.RequestType == RequestType.AgreementPayment ? -o.AmountFen : o.AmountFen;
                        var bankKey = (o.BatchId, o.BankCode.ToString("D3"));
                        expectedNet[bankKey] = expectedNet.GetValueOrDefault(bankKey) + bankDelta;
                        var feeKey = (o.BatchId, ClosedBatch.SwitchFeeId);
                        expectedNet[feeKey] = expectedNet.GetValueOrDefault(feeKey) + o.FeeFen;
                    }
                    break;
                case OutputKind.Answer when o.Status is TransactionStatus.Succeeded or TransactionStatus.Failed:
                    Assert.Equal(batchOf[o.TransactionId], o.BatchId);
                    break;
                case OutputKind.BatchPosition:
                case OutputKind.BatchClosed:
                    ClosedBatch? batch = assembler.Add(o); // its constructor asserts the positions sum to zero
                    if (batch is null) break;
                    Assert.Equal(openBatchId, batch.BatchId);
                    Assert.Equal(finalisedPerBatch.GetValueOrDefault(batch.BatchId), batch.TransactionCount);
                    foreach (ParticipantPosition p in batch.Positions.Where(p => p.Kind != ParticipantKind.Institution))
                    {
                        Assert.Equal(expectedNet.GetValueOrDefault((batch.BatchId, p.Id)), p.NetFen);
                    }
                    Assert.Equal(0, batch.Positions.Sum(p => p.NetFen));
                    openBatchId++;
                    break;
            }
        }
        Assert.All(batchOf.Values, b => Assert.True(b < openBatchId, "a final outcome outside every closed batch"));
    }

    [Fact]
    public void Every_batch_conserves_money_and_every_outcome_is_in_exactly_one_batch()
    {
        Prop.ForAll(ArbMap.Default.ArbFor<int[]>(), script => CheckBatches(Play(script)))
            .QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Long_random_scripts_too()
    {
        var random = new Random(5);
        for (int run = 0; run < 20; run++)
        {
            int[] script = Enumerable.Range(0, 600).Select(_ => random.Next()).ToArray();
            CheckBatches(Play(script));
        }
    }

    [Fact]
    public void Replaying_the_journal_gives_the_same_batches()
    {
        using var dir = new TempDirectory();
        var clock = new ManualClock(LogicHarness.StartUs);
        var live = new OutputRecorder();
        List<OutputEvent> liveOutputs = new();
        using (SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(dir.Path, clock), TestConfigs.Small(), live))
        {
            var random = new Random(11);
            var pending = new List<OutputEvent>();
            for (int step = 0; step < 600; step++)
            {
                int roll = random.Next(100);
                clock.Advance(random.Next(1_000, 50_000));
                if (roll < 50)
                {
                    engine.Client().PublishCopy(LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", $"P{step}", 100 + step, "102", account: $"A{step % 40}"));
                }
                else if (roll < 90 && pending.Count > 0)
                {
                    OutputEvent p = pending[random.Next(pending.Count)];
                    pending.Remove(p);
                    engine.Client().PublishCopy(new InputEvent { Kind = EventKind.BankResult, TransactionId = p.TransactionId, Operation = p.Operation, Reply = BankReply.Succeeded });
                }
                else if (roll < 95)
                {
                    engine.PublishTick();
                }
                else
                {
                    var close = new InputEvent { Kind = EventKind.CloseBatch, CorrelationId = step };
                    close.Operator.Set("op-replay");
                    engine.Client().PublishCopy(close);
                }
                Assert.True(engine.WaitUntilIdle(30_000));
                List<OutputEvent> outputs = live.Drain();
                liveOutputs.AddRange(outputs);
                pending.AddRange(outputs.Where(o => o.Kind == OutputKind.BankRequest));
            }
            Assert.Null(engine.Fault);
        }
        static IEnumerable<string> Batches(IEnumerable<OutputEvent> outputs) => outputs
            .Where(o => o.Kind is OutputKind.BatchPosition or OutputKind.BatchClosed or OutputKind.Feed)
            .Select(o => $"{o.Kind} {o.BatchId} {o.TransactionId} {o.Participant} {o.DebitsFen} {o.CreditsFen} {o.NetFen} {o.Count} {(o.Kind == OutputKind.BatchClosed ? (o.BatchOpenedUs, o.BatchClosedUs) : (o.ReceivedUs, o.FinalUs))}");
        var replayed = new CollectingSink();
        JournalReplay.Run(dir.Path, replayed);
        Assert.True(liveOutputs.Count(o => o.Kind == OutputKind.BatchClosed) >= 10);
        Assert.Equal(Batches(liveOutputs), Batches(replayed.Outputs));
    }
}
