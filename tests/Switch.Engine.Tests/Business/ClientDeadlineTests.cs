using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Engine.Tests.Support;
using static Switch.Engine.Tests.Support.LogicHarness;

namespace Switch.Engine.Tests.Business;

/// <summary>Issue 11, part 6: a request whose client's deadline passed before it was journaled never executes; one
/// journaled in time runs to an outcome. The check compares two stamps of the journaled record.</summary>
public sealed class ClientDeadlineTests
{
    private static InputEvent Payment(string orderNo, long deadlineUs, long journaledUs)
    {
        InputEvent e = Request(RequestType.AgreementPayment, "ALIPAY", orderNo, 1_000);
        e.ClientDeadlineUs = deadlineUs;
        e.JournaledUs = journaledUs;
        return e;
    }

    [Fact]
    public void A_request_journaled_at_or_after_its_deadline_is_refused_and_leaves_nothing()
    {
        var h = new LogicHarness();
        ulong before = h.Logic.StateHash();
        AssertReject(h.Send(Payment("LATE", deadlineUs: h.NowUs - 1, journaledUs: h.NowUs)), RejectCode.DeadlinePassed, RequestField.None);
        AssertReject(h.Send(Payment("LATE", deadlineUs: h.NowUs, journaledUs: h.NowUs)), RejectCode.DeadlinePassed, RequestField.None);
        Assert.Equal(RejectCategory.DeadlineExceeded, RejectCodes.Category(RejectCode.DeadlinePassed));
        Assert.Equal(before, h.Logic.StateHash());
        Assert.Equal(0, h.Logic.Transactions.LastId);
        AssertReject(h.Query("LATE"), RejectCode.OrderNotFound, RequestField.OrderNo); // nothing kept: the number is free

        // Sent again in time, it executes.
        OutputEvent request = Single(h.Send(Payment("LATE", deadlineUs: h.NowUs + 1, journaledUs: h.NowUs)), OutputKind.BankRequest);
        Assert.Equal(TransactionStatus.Succeeded,
            Single(h.BankAnswer(request.TransactionId, BankOperation.Debit, BankReply.Succeeded), OutputKind.Answer).Status);
    }

    [Fact]
    public void Once_journaled_in_time_it_runs_to_an_outcome_however_late_the_bank_is()
    {
        var h = new LogicHarness();
        OutputEvent request = Single(h.Send(Payment("P1", deadlineUs: h.NowUs + 1_000, journaledUs: h.NowUs)), OutputKind.BankRequest);
        h.Tick(5_000); // long past the client's deadline: the switch still owes it an outcome
        OutputEvent final = Single(h.BankAnswer(request.TransactionId, BankOperation.Debit, BankReply.Succeeded), OutputKind.Feed);
        Assert.Equal(TransactionStatus.Succeeded, final.Status);
        Assert.Equal(TransactionStatus.Succeeded, Single(h.Query("P1"), OutputKind.Answer).Status);
    }

    [Fact]
    public void No_deadline_means_none()
    {
        var h = new LogicHarness();
        Single(h.Send(Payment("P1", deadlineUs: 0, journaledUs: h.NowUs)), OutputKind.BankRequest);
    }

    [Fact]
    public void The_journaler_stamps_the_record_and_replay_decides_the_same()
    {
        using var dir = new TempDirectory();
        var clock = new ManualClock(StartUs);
        ulong hash;
        List<OutputEvent> answers;
        var recorder = new OutputRecorder();
        using (SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(dir.Path, clock), TestConfigs.Small(), recorder))
        {
            engine.Client().PublishCopy(Payment("EXPIRED", deadlineUs: clock.NowUs(), journaledUs: 0)); // the journaler's stamp is now: passed
            engine.Client().PublishCopy(Payment("IN-TIME", deadlineUs: clock.NowUs() + 1_000_000, journaledUs: 0));
            Assert.True(engine.WaitUntilIdle(30_000));
            answers = recorder.Drain();
            hash = engine.Logic.StateHash();
            Assert.Equal(1, engine.Logic.Transactions.LastId);
        }
        Assert.Contains(answers, o => o.Kind == OutputKind.Answer && o.OrderNo.ToString() == "EXPIRED" && o.Reject == RejectCode.DeadlinePassed);
        Assert.Contains(answers, o => o.Kind == OutputKind.BankRequest && o.OrderNo.ToString() == "IN-TIME");
        clock.Advance(60_000_000); // a replay much later decides from the record, not from the clock
        using (SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(dir.Path, clock), TestConfigs.Small(), new OutputRecorder()))
        {
            Assert.Equal(hash, engine.Logic.StateHash());
            Assert.True(engine.Logic.TryGetOrder("ALIPAY", "IN-TIME", out _));
            Assert.False(engine.Logic.TryGetOrder("ALIPAY", "EXPIRED", out _));
        }
    }
}
