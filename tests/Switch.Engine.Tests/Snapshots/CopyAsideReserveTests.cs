using Switch.Engine.Archive;
using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Engine.Snapshots;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Snapshots;

/// <summary>
/// The pages a snapshot's copy-aside takes are reserved when the engine starts (<see cref="AsideReserve{T}"/>): the
/// first snapshot, taken while the engine is at load, copies pages of the arrays touched at random (the daily usage, the
/// archive's filter) and of the ring aside, and allocates none of them on the logic thread. Before, the first snapshot
/// of a process rented every one from an empty pool: an allocation (and its page faults) each.
/// </summary>
public sealed class CopyAsideReserveTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly ManualClock _clock = new(LogicHarness.StartUs);

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_snapshot_taken_at_load_copies_pages_aside_into_the_reserve_and_allocates_none()
    {
        // A ring of 2 pages and a parked table of 1 (a few park: a bank's endpoint takes 64 at a time), 8 pages of daily usage,
        // a filter of 16 pages a generation; at 1 MiB a second the writer takes seconds over them while the load goes on.
        // At most 56,000 payments: the filter's first generation (87,381 keys) takes them all, so none is cleared (a
        // generation cleared while a snapshot is written is copied aside whole, beyond the reserve's one generation).
        SwitchConfig small = TestConfigs.Small(transactionCapacity: 2048);
        SwitchConfig config = small with { Rules = small.Rules with { MaxUnresolvedPerBank = 256 } };
        EngineOptions options = EngineTestOptions.For(_dir.Path, _clock) with
        {
            Archive = ArchiveSizing.Small with { FilterBytes = ArchiveSizing.FilterGenerations * 64L * 2048 },
            Snapshots = new SnapshotOptions { Enabled = true, EveryEvents = 0, AtBatchClose = false, AtStop = false, WriteMiBPerSecond = 1 },
        };
        var outputs = new OutputRecorder();
        using SwitchEngine engine = SwitchEngine.Start(options, config, outputs);
        Assert.True(engine.WaitAsideReserved(TimeSpan.FromSeconds(30)), "the copy-aside reserve was not filled");
        Assert.True(engine.AsideReservedBytes > 0);
        var load = new Load(engine, outputs);
        load.Pay(6_000); // the ring wraps: answered payments leave it for the archive and its filter

        Task<SnapshotResult> snapshot = engine.RequestSnapshotAsync();
        // At load while the writer copies: new accounts' usage and archived orders' filter bits land at random.
        for (int round = 0; round < 100 && !snapshot.IsCompleted; round++) load.Pay(500);
        SnapshotResult taken = snapshot.WaitOrThrow();

        Assert.True(taken.PagesCopiedAside >= 8, $"only {taken.PagesCopiedAside} pages copied aside: the load did not run while the snapshot was written");
        Assert.Equal(0, taken.PagesAllocatedAside);
        Assert.Equal(0, taken.BytesAllocatedAside);
        Assert.Null(engine.Fault);
    }

    [Theory]
    // The defaults: 112 MiB of daily usage and a ring of 344 MiB, at 64 MiB/s: the ring's end is written 7.1 s in.
    [InlineData(180_000, 64, 456L << 20, 1024, 1024)] // the design peak: 1,282 thousand transactions, more than the ring
    [InlineData(5_000, 64, 456L << 20, 1024, 36)]     // 35,625 transactions: 35 pages, and the one it was in
    [InlineData(180_000, 0, 456L << 20, 1024, 1024)]  // no budget: the writer's speed unknown, the whole ring
    [InlineData(0, 64, 456L << 20, 1024, 0)]          // no ring reserve asked for
    public void The_ring_reserve_is_the_pages_the_logic_fills_while_the_writer_gets_to_the_ring_end(long perSecond, int writeMiBPerSecond,
        long throughRingBytes, int ringPages, int expected)
    {
        Assert.Equal(expected, SwitchLogic.RingAsidePages(perSecond, writeMiBPerSecond, throughRingBytes, ringPages));
    }

    /// <summary>Payments from 3,000 accounts, each one's bank request answered before the next batch: nothing parks.</summary>
    private sealed class Load(SwitchEngine engine, OutputRecorder outputs)
    {
        private long _n;

        public void Pay(int count)
        {
            for (int i = 0; i < count; i++)
            {
                long n = ++_n;
                engine.Client().PublishCopy(LogicHarness.Request(RequestType.AgreementPayment, n % 3 == 0 ? "TENPAY" : "ALIPAY", $"O{n}", 100,
                    bank: n % 2 == 0 ? "102" : "308", account: $"62220202{n * 7_919 % 3_000:D8}"));
                if (n % 100 == 0) Answer();
            }
            Answer();
        }

        private void Answer()
        {
            Assert.True(engine.WaitUntilIdle(30_000), "engine did not go idle");
            Assert.Null(engine.Fault);
            foreach (OutputEvent o in outputs.Drain())
            {
                if (o.Kind != OutputKind.BankRequest) continue;
                var answer = new InputEvent { Kind = EventKind.BankResult, TransactionId = o.TransactionId, Operation = o.Operation, Reply = BankReply.Succeeded };
                engine.Client().PublishCopy(answer);
            }
            Assert.True(engine.WaitUntilIdle(30_000), "engine did not go idle");
        }
    }
}
