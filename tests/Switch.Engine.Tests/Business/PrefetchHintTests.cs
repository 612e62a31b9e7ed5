using Switch.Engine.Archive;
using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Business;

/// <summary><see cref="SwitchLogic.PrefetchFor"/> runs on events the logic has not checked yet (4 ahead in a batch): for
/// any of them it must throw nothing, allocate nothing and change nothing.</summary>
public sealed class PrefetchHintTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void The_hint_for_any_request_or_answer_changes_no_state_and_allocates_nothing()
    {
        // A full table with the archive on disk behind it (filter, handoff, store), so the hint reaches all it touches.
        using FasterTransactionArchive archive = FasterTransactionArchive.Create(_dir.Sub("archive"), ArchiveSizing.Small);
        var h = new LogicHarness(TestConfigs.Small(transactionCapacity: 1 << 10), archive);
        for (int i = 0; i < 1_500; i++) h.PayAndSettle($"ORD-{i}", 100 + i);
        string longText = new('9', 40);
        InputEvent[] events =
        [
            LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", "ORD-NEW", 100),
            LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", "ORD-7", 107), // an archived order
            LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", "ORD-1499", 1_599), // a retained one
            LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", "ORD-X", 100, bank: "102000000001"),
            LogicHarness.Request(RequestType.Payout, "ALIPAY", "ORD-Y", 100, bank: "103"),
            LogicHarness.Request(RequestType.Refund, "ALIPAY", "ORD-Z", 100, originalOrderNo: "ORD-7"),
            LogicHarness.Request(RequestType.Query, "ALIPAY", "ORD-7", 0),
            LogicHarness.Request(RequestType.AgreementPayment, "NOBODY", "ORD-A", 100),
            LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", "", 100, bank: "", account: ""),
            LogicHarness.Request(RequestType.AgreementPayment, longText, longText, 100, bank: longText, account: longText),
            LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", "ORD-B", 100, bank: "1x2"),
            LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", "ORD-C", 100, bank: "999"),
            LogicHarness.Request((RequestType)250, "ALIPAY", "ORD-D", 100),
            new InputEvent { Kind = EventKind.BankResult, TransactionId = 1 }, // evicted long ago
            new InputEvent { Kind = EventKind.BankResult, TransactionId = 1_500 },
            new InputEvent { Kind = EventKind.BankResult, TransactionId = long.MaxValue },
            new InputEvent { Kind = EventKind.BankResult, TransactionId = -1 },
            new InputEvent { Kind = EventKind.Tick },
        ];
        Assert.True(events[9].OrderNo.IsOverlong && events[9].Institution.IsOverlong);
        foreach (InputEvent e in events) h.Logic.PrefetchFor(in e); // compiled and run once before measuring
        ulong hash = h.Logic.StateHash();
        int outputs = h.Sink.Outputs.Count;

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int round = 0; round < 100; round++)
        {
            foreach (InputEvent e in events) h.Logic.PrefetchFor(in e);
        }
        long allocatedBytes = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocatedBytes);
        Assert.Equal(hash, h.Logic.StateHash());
        Assert.Equal(outputs, h.Sink.Outputs.Count);
    }
}
