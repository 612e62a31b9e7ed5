using Switch.Engine.Archive;
using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Engine.Tests.Support;
using static Switch.Engine.Tests.Support.LogicHarness;

namespace Switch.Engine.Tests.Business;

/// <summary>
/// An order number stays one order after its transaction leaves the retained table: a repeat returns the first
/// outcome and never pays twice, a query answers, a refund finds its original and never exceeds it. Each test runs
/// on each archive: in memory, and FASTER's on disk with pages small enough that reads come from the disk (its writes on
/// a writer thread, and on the logic thread).
/// Past the configured memory of orders (the idempotency window) an order is forgotten, and the disk is freed.
/// </summary>
public sealed class OrderMemoryTests : IDisposable
{
    private const int TableCapacity = 16;
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>"faster" hands its store writes to a writer thread (a small ring, so reads come both from the writes
    /// not yet applied and from the store); "faster-inline" writes the store on the logic thread.</summary>
    public static TheoryData<string> Archives() => new() { "memory", "faster", "faster-inline" };

    private ITransactionArchive NewArchive(string kind) => kind switch
    {
        "memory" => new MemoryTransactionArchive(),
        "faster" => FasterTransactionArchive.Create(_dir.Sub("archive"), ArchiveSizing.Small),
        "faster-inline" => FasterTransactionArchive.Create(_dir.Sub("archive"), ArchiveSizing.Small with { HandoffEntries = 0 }),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    private static SwitchConfig Config(long orderMemoryTransactions = 1L << 20)
    {
        SwitchConfig config = TestConfigs.Small(transactionCapacity: TableCapacity);
        return config with { Rules = config.Rules with { OrderMemoryTransactions = orderMemoryTransactions } };
    }

    private static void SettlePayments(LogicHarness h, string prefix, int count)
    {
        for (int i = 0; i < count; i++) h.PayAndSettle($"{prefix}{i}", 100 + i);
    }

    [Theory]
    [MemberData(nameof(Archives))]
    public void A_repeat_of_an_order_that_left_memory_returns_its_first_outcome_and_pays_nothing_twice(string kind)
    {
        using ITransactionArchive archive = NewArchive(kind);
        var h = new LogicHarness(Config(), archive);
        OutputEvent first = h.PayAndSettle("FIRST", 7_777);
        SettlePayments(h, "P", 40 * TableCapacity); // beyond the small archive's 64 KiB in memory
        Assert.True(first.TransactionId < h.Logic.Transactions.OldestRetainedId); // it left the table
        long lastId = h.Logic.Transactions.LastId;
        long bankPositionFen = h.Logic.BankByCode(102).PositionFen;
        ulong hash = h.Logic.StateHash();

        List<OutputEvent> again = h.Pay("FIRST", 7_777);
        OutputEvent repeat = Single(again, OutputKind.Answer);
        Assert.DoesNotContain(again, o => o.Kind == OutputKind.BankRequest);
        Assert.True(repeat.Duplicate);
        Assert.Equal((first.TransactionId, TransactionStatus.Succeeded, 7_777L), (repeat.TransactionId, repeat.Status, repeat.AmountFen));

        // A different request under the same number is still a conflict; a query still answers.
        AssertReject(h.Pay("FIRST", 7_778), RejectCode.DuplicateOrderConflict, RequestField.OrderNo);
        AssertReject(h.Pay("FIRST", 7_777, bank: "103"), RejectCode.DuplicateOrderConflict, RequestField.OrderNo);
        OutputEvent query = Single(h.Query("FIRST"), OutputKind.Answer);
        Assert.Equal((first.TransactionId, TransactionStatus.Succeeded, false), (query.TransactionId, query.Status, query.Duplicate));
        AssertReject(h.Query("FIRST", "TENPAY"), RejectCode.OrderNotFound, RequestField.OrderNo);

        Assert.Equal(lastId, h.Logic.Transactions.LastId);
        Assert.Equal(bankPositionFen, h.Logic.BankByCode(102).PositionFen);
        Assert.Equal(hash, h.Logic.StateHash());
        if (archive is FasterTransactionArchive onDisk)
        {
            Assert.True(onDisk.DiskReads > 0, "the small archive should have read from disk");
            // The 640 new orders' look-ups ended in the filter (a few false positives aside), not in the store.
            Assert.True(onDisk.StoreLookups < 100, $"{onDisk.StoreLookups} store look-ups");
        }
    }

    [Theory]
    [MemberData(nameof(Archives))]
    public void A_refund_finds_an_original_that_left_memory_and_the_refunds_never_exceed_it(string kind)
    {
        using ITransactionArchive archive = NewArchive(kind);
        var h = new LogicHarness(Config(), archive);
        h.PayAndSettle("ORIG", 10_000);
        SettlePayments(h, "P", 3 * TableCapacity);

        OutputEvent r1 = Single(h.Refund("R1", "ORIG", 4_000), OutputKind.BankRequest);
        Assert.Equal((BankOperation.Credit, 102, "6222020200112233"), (r1.Operation, r1.BankCode, r1.Account.ToString()));
        // 4,000 reserved on the archived original while R1 is in flight.
        AssertReject(h.Refund("R2", "ORIG", 7_000), RejectCode.RefundExceedsOriginal, RequestField.Amount);
        h.BankAnswer(r1.TransactionId, BankOperation.Credit, BankReply.Succeeded);
        OutputEvent r3 = Single(h.Refund("R3", "ORIG", 6_000), OutputKind.BankRequest);
        h.BankAnswer(r3.TransactionId, BankOperation.Credit, BankReply.Succeeded);
        AssertReject(h.Refund("R4", "ORIG", 1), RejectCode.OriginalFullyRefunded, RequestField.OriginalOrderNo);

        Assert.True(h.Logic.TryGetOrder("ALIPAY", "ORIG", out Transaction original));
        Assert.Equal((10_000L, 0L), (original.RefundedFen, original.RefundReservedFen));
        // The refund itself left memory too: its repeat is still recognised by its original's number.
        SettlePayments(h, "Q", 3 * TableCapacity);
        OutputEvent repeat = Single(h.Refund("R1", "ORIG", 4_000), OutputKind.Answer);
        Assert.Equal((r1.TransactionId, true), (repeat.TransactionId, repeat.Duplicate));
        AssertReject(h.Refund("R1", "P0", 4_000), RejectCode.DuplicateOrderConflict, RequestField.OrderNo);
    }

    [Theory]
    [MemberData(nameof(Archives))]
    public void An_original_evicted_while_its_refund_is_in_flight_keeps_the_refunds_bookkeeping(string kind)
    {
        using ITransactionArchive archive = NewArchive(kind);
        var h = new LogicHarness(Config(), archive);
        h.PayAndSettle("ORIG", 10_000);
        OutputEvent r1 = Single(h.Refund("R1", "ORIG", 10_000), OutputKind.BankRequest);
        // ORIG holds the oldest slot: the next payments push it out while R1 waits for its bank.
        SettlePayments(h, "P", TableCapacity - 1);
        Assert.True(h.Logic.Transactions.OldestRetainedId > 1);
        Assert.True(h.Logic.TryGetOrder("ALIPAY", "ORIG", out Transaction reserved));
        Assert.Equal(10_000, reserved.RefundReservedFen);

        h.BankAnswer(r1.TransactionId, BankOperation.Credit, BankReply.Failed, "ACCOUNT_CLOSED");
        Assert.True(h.Logic.TryGetOrder("ALIPAY", "ORIG", out Transaction released));
        Assert.Equal((0L, 0L), (released.RefundReservedFen, released.RefundedFen));
        Assert.Single(h.Refund("R2", "ORIG", 10_000), o => o.Kind == OutputKind.BankRequest);
    }

    [Theory]
    [MemberData(nameof(Archives))]
    public void Past_the_memory_of_orders_an_order_is_forgotten_and_within_it_remembered(string kind)
    {
        const int memory = 4 * TableCapacity;
        using ITransactionArchive archive = NewArchive(kind);
        var h = new LogicHarness(Config(orderMemoryTransactions: memory), archive);
        SettlePayments(h, "P", 200);
        long oldestRemembered = h.Logic.Transactions.LastId + 1 - memory; // id 137 = P136

        Assert.Equal(TransactionStatus.Succeeded, Single(h.Query($"P{oldestRemembered - 1}"), OutputKind.Answer).Status);
        AssertReject(h.Query($"P{oldestRemembered - 2}"), RejectCode.OrderNotFound, RequestField.OrderNo);
        AssertReject(h.Query("P0"), RejectCode.OrderNotFound, RequestField.OrderNo);
    }

    [Theory]
    [MemberData(nameof(Archives))]
    public void An_order_number_reused_after_it_was_forgotten_is_a_new_order_remembered_for_a_whole_window(string kind)
    {
        const int memory = 4 * TableCapacity;
        using ITransactionArchive archive = NewArchive(kind);
        var h = new LogicHarness(Config(orderMemoryTransactions: memory), archive);
        OutputEvent first = h.PayAndSettle("REUSED", 1_000);
        // Exactly far enough for REUSED to have just been forgotten: the edge where the old copy is still held.
        while (h.Logic.Transactions.LastId + 1 - memory <= first.TransactionId) h.PayAndSettle($"P{h.Logic.Transactions.LastId}", 100);
        OutputEvent second = h.PayAndSettle("REUSED", 1_000);
        Assert.NotEqual(first.TransactionId, second.TransactionId); // a new order: past the window, as documented
        // The new one is remembered for its whole window, however the old copy is cleared behind it.
        for (int i = 0; i < memory - 2; i++) h.PayAndSettle($"Q{i}", 100);
        OutputEvent repeat = Single(h.Pay("REUSED", 1_000), OutputKind.Answer);
        Assert.Equal((second.TransactionId, true), (repeat.TransactionId, repeat.Duplicate));
    }

    [Fact]
    public void The_disk_archive_reads_back_every_record_and_frees_whole_segments_it_may_forget()
    {
        using FasterTransactionArchive archive = FasterTransactionArchive.Create(_dir.Sub("direct"), ArchiveSizing.Small);
        const int count = 20_000; // about 8 MB of records: far beyond the 64 KiB in memory, over a hundred segments
        for (int id = 1; id <= count; id++)
        {
            Transaction tx = default;
            tx.Id = id;
            tx.Status = TransactionStatus.Succeeded;
            tx.AmountFen = id * 3L;
            tx.OrderNo.Set($"O{id}");
            archive.Put(new ScopedKey(id % 3, tx.OrderNo.Span), tx);
        }
        var random = new Random(7);
        for (int i = 0; i < 500; i++)
        {
            int id = random.Next(1, count + 1);
            Assert.True(archive.TryGet(new ScopedKey(id % 3, Text32.From($"O{id}").Span), out Transaction back), $"O{id}");
            Assert.Equal((id, id * 3L, $"O{id}"), (back.Id, back.AmountFen, back.OrderNo.ToString()));
        }
        Assert.False(archive.TryGet(new ScopedKey(1, Text32.From("O2").Span), out _)); // another institution's number
        Assert.True(archive.DiskReads > 0);

        long beginBefore = archive.BeginAddress;
        archive.ForgetBelow(count / 2);
        archive.Flush(); // the store forgets on the writer thread: wait for it
        Assert.True(archive.BeginAddress > beginBefore);
        long segmentsWritten = archive.TailAddress / ArchiveSizing.Small.SegmentBytes;
        // Forgetting frees disk in steps of MarkEveryTransactions: about half the segments go, less one step.
        long segmentsKept = segmentsWritten * (count / 2 + ArchiveSizing.Small.MarkEveryTransactions) / count + 2;
        // The device deletes segment files in the background ("physical deletion may not happen immediately").
        int segments = int.MaxValue;
        for (long deadline = Environment.TickCount64 + 30_000; Environment.TickCount64 < deadline; Thread.Sleep(20))
        {
            segments = Directory.GetFiles(_dir.Sub("direct")).Length;
            if (segments <= segmentsKept) break;
        }
        // What is within memory still reads back.
        for (int id = count / 2; id <= count; id += 997)
        {
            Assert.True(archive.TryGet(new ScopedKey(id % 3, Text32.From($"O{id}").Span), out Transaction back), $"O{id} after forgetting");
            Assert.Equal(id, back.Id);
        }
        Assert.True(segments <= segmentsKept, $"{segments} of {segmentsWritten} segment files left, at most {segmentsKept} expected");
    }

    [Fact]
    public void A_restarted_engine_rebuilds_its_archive_from_the_journal_and_still_knows_every_order()
    {
        var clock = new ManualClock(StartUs);
        const int payments = 10 * TableCapacity;
        void Settle(SwitchEngine engine, string prefix)
        {
            for (int i = 0; i < payments; i++)
            {
                engine.Client().PublishCopy(Request(RequestType.AgreementPayment, "ALIPAY", $"{prefix}{i}", 1_000 + i, account: $"A{i}"));
                Assert.True(engine.WaitUntilIdle(30_000));
                engine.Client().PublishCopy(new InputEvent { Kind = EventKind.BankResult, TransactionId = engine.Logic.Transactions.LastId, Operation = BankOperation.Debit, Reply = BankReply.Succeeded });
            }
            Assert.True(engine.WaitUntilIdle(30_000));
        }
        ulong hash;
        using (SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(_dir.Path, clock), Config(), new OutputRecorder()))
        {
            Settle(engine, "P");
            hash = engine.Logic.StateHash();
        }
        var recorder = new OutputRecorder();
        using (SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(_dir.Path, clock), Config(), recorder))
        {
            Assert.Equal(hash, engine.Logic.StateHash());
            long lastId = engine.Logic.Transactions.LastId;
            engine.Client().PublishCopy(Request(RequestType.AgreementPayment, "ALIPAY", "P3", 1_003, account: "A3"));
            Assert.True(engine.WaitUntilIdle(30_000));
            OutputEvent repeat = Assert.Single(recorder.Drain(), o => o.Kind == OutputKind.Answer);
            Assert.Equal((4L, true, TransactionStatus.Succeeded), (repeat.TransactionId, repeat.Duplicate, repeat.Status));
            Assert.Equal(lastId, engine.Logic.Transactions.LastId);
        }
    }
}
