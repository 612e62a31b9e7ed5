using System.Runtime.CompilerServices;
using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Business;

/// <summary>The verify mode catches a state that no longer adds up, naming the invariant, on the next event.</summary>
public sealed class InvariantVerifyTests
{
    [Fact]
    public void The_ring_and_table_structs_have_their_documented_sizes()
    {
        Assert.Equal(SwitchLogic.InputEventBytes, Unsafe.SizeOf<InputEvent>());
        Assert.Equal(SwitchLogic.OutputEventBytes, Unsafe.SizeOf<OutputEvent>());
        Assert.Equal(SwitchLogic.TransactionBytes, Unsafe.SizeOf<Transaction>());
        SwitchLogic.CheckStructSizes();
    }

    /// <summary>A harness with one payment at the bank (dispatched, its deadline armed) and one settled.</summary>
    private static (LogicHarness Harness, long PendingId) WithTraffic()
    {
        var h = new LogicHarness();
        h.Pay("SETTLED-1", 10_000);
        long settled = h.Logic.Transactions.LastId;
        h.BankAnswer(settled, BankOperation.Debit, BankReply.Succeeded);
        h.Pay("PENDING-1", 20_000);
        return (h, h.Logic.Transactions.LastId);
    }

    private static void AssertCaught(LogicHarness h, string invariant)
    {
        var e = Assert.Throws<InvariantException>(() => h.Tick(1));
        Assert.Equal(invariant, e.Invariant);
        Assert.Contains(invariant, e.Message);
        Assert.Contains("Tick", e.Message); // the event it broke on
    }

    [Fact]
    public void Positions_that_do_not_sum_to_zero_are_caught()
    {
        (LogicHarness h, _) = WithTraffic();
        h.Logic.Institutions[0].PositionFen += 1;
        AssertCaught(h, "positions sum to zero");
    }

    [Fact]
    public void An_in_flight_count_that_differs_from_the_table_is_caught()
    {
        (LogicHarness h, long id) = WithTraffic();
        ref Transaction tx = ref h.Logic.Transactions.ById(id);
        h.Logic.Banks[tx.BankIndex].Endpoints[tx.EndpointIndex].InFlight++;
        AssertCaught(h, "in-flight recount");
    }

    [Fact]
    public void An_in_flight_count_over_its_cap_is_caught()
    {
        (LogicHarness h, long id) = WithTraffic();
        ref Transaction tx = ref h.Logic.Transactions.ById(id);
        Endpoint endpoint = h.Logic.Banks[tx.BankIndex].Endpoints[tx.EndpointIndex];
        endpoint.InFlight = endpoint.InFlightCap + 1;
        AssertCaught(h, "in-flight within cap");
    }

    [Fact]
    public void An_unresolved_transaction_without_its_live_timer_is_caught()
    {
        (LogicHarness h, long id) = WithTraffic();
        h.Logic.Transactions.ById(id).TimerDueUs += 1; // the queued deadline no longer matches: no live timer
        AssertCaught(h, "one live timer per unresolved transaction");
    }

    [Fact]
    public void A_bank_unresolved_count_that_differs_from_the_table_is_caught()
    {
        (LogicHarness h, long id) = WithTraffic();
        h.Logic.Banks[h.Logic.Transactions.ById(id).BankIndex].Unresolved++;
        AssertCaught(h, "unresolved per bank");
    }

    [Fact]
    public void A_feed_count_ahead_of_the_feeds_sent_is_caught()
    {
        (LogicHarness h, _) = WithTraffic();
        h.Logic.Institutions[0].FeedCount++;
        AssertCaught(h, "feed numbering");
    }

    [Fact]
    public void Off_the_same_corruption_goes_unnoticed_by_the_recounts()
    {
        (LogicHarness h, long id) = WithTraffic();
        h.Logic.VerifyInvariants = false;
        h.Logic.Transactions.ById(id).TimerDueUs += 1;
        h.Tick(1); // no recount: nothing thrown
    }

    [Fact]
    public void A_breach_in_the_running_engine_faults_it_naming_the_invariant()
    {
        using var dir = new TempDirectory();
        using SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(dir.Path, new ManualClock(LogicHarness.StartUs)), TestConfigs.Small(), new OutputRecorder());
        Assert.True(engine.WaitUntilIdle(30_000));
        engine.Logic.Banks[0].PositionFen = 7; // quiescent: no event in flight
        engine.PublishTick();
        long deadline = Environment.TickCount64 + 30_000;
        while (engine.Fault is null && Environment.TickCount64 < deadline) Thread.Sleep(10);
        Assert.NotNull(engine.Fault);
        Assert.Contains("positions sum to zero", engine.Fault!.ToString());
    }
}
