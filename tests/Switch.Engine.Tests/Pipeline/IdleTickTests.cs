using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Pipeline;

/// <summary>The engine's own ticker journals a tick only when something is due: an idle switch's journal stands still,
/// and a deadline, a follow-up and a scheduled close still fire on time.</summary>
public sealed class IdleTickTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly ManualClock _clock = new(LogicHarness.StartUs);

    public void Dispose() => _dir.Dispose();

    private SwitchEngine Start(OutputRecorder outputs) =>
        SwitchEngine.Start(EngineTestOptions.For(_dir.Path, _clock) with { TickIntervalMs = 5 }, TestConfigs.Small(), outputs);

    [Fact]
    public void An_idle_switch_journals_no_ticks_and_a_due_deadline_still_fires()
    {
        var outputs = new OutputRecorder();
        using SwitchEngine engine = Start(outputs);
        // The first tick reads the batch schedule; then nothing is due until the next local day.
        WaitFor(() => engine.Logic.EventsApplied >= 1, "the first tick");
        Thread.Sleep(300); // 60 timer periods with nothing due
        Assert.True(engine.WaitUntilIdle(30_000));
        Assert.Equal(1, engine.Logic.EventsApplied);

        engine.Client().PublishCopy(LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", "WAITS", 100));
        Assert.True(engine.WaitUntilIdle(30_000));
        Assert.Contains(outputs.Drain(), o => o.Kind == OutputKind.BankRequest && o.OrderNo.ToString() == "WAITS");
        Thread.Sleep(300); // the deadline is a second of engine time away, and the engine's clock stands still
        Assert.True(engine.WaitUntilIdle(30_000));
        Assert.Equal(2, engine.Logic.EventsApplied);

        // The bank's deadline comes: one tick makes the outcome unknown and sends a query when its back-off is due.
        _clock.Advance(1_000_000);
        WaitFor(() => engine.Logic.EventsApplied >= 3, "the deadline's tick");
        Assert.True(engine.WaitUntilIdle(30_000));
        Assert.True(engine.Logic.TryGetOrder("ALIPAY", "WAITS", out Transaction waits));
        Assert.Equal(TransactionStatus.Unknown, waits.Status);
        long applied = engine.Logic.EventsApplied;
        _clock.Advance(600_000); // past the first query back-off (500 ms)
        WaitFor(() => outputs.Outputs.Any(o => o.Kind == OutputKind.BankRequest && o.Operation == BankOperation.Query), "the query");
        Assert.True(engine.WaitUntilIdle(30_000));
        Assert.InRange(engine.Logic.EventsApplied - applied, 1, 2); // one tick (two if a timer fired between the advance and the apply)
    }

    [Fact]
    public void The_start_of_a_day_is_due_so_views_that_roll_over_by_day_see_an_event()
    {
        using SwitchEngine engine = Start(new OutputRecorder());
        WaitFor(() => engine.Logic.EventsApplied >= 1, "the first tick");
        Assert.True(engine.WaitUntilIdle(30_000));
        long due = engine.Logic.NextTickDueUs();
        Assert.True(due > _clock.NowUs() && due - _clock.NowUs() <= 86_400_000_000L, $"next due {due}, now {_clock.NowUs()}");
        _clock.Advance(due - _clock.NowUs());
        WaitFor(() => engine.Logic.EventsApplied >= 2, "the day's tick");
    }

    private static void WaitFor(Func<bool> condition, string what)
    {
        long deadline = Environment.TickCount64 + 30_000;
        while (!condition())
        {
            Assert.True(Environment.TickCount64 < deadline, $"{what} did not come within 30 s");
            Thread.Sleep(5);
        }
    }
}
