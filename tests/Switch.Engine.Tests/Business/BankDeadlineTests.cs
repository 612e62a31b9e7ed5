using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Tests.Support;
using static Switch.Engine.Tests.Support.LogicHarness;

namespace Switch.Engine.Tests.Business;

/// <summary>Issue 11, part 2: one deadline, decided by the logic from the event stamp, carried to the bank; "no record"
/// is final only once the bank can no longer execute the request.</summary>
public sealed class BankDeadlineTests
{
    private readonly LogicHarness _h = new();
    private long TimeoutUs => _h.Logic.Config.Rules.BankTimeoutMs * 1_000L;

    [Fact]
    public void The_bank_request_carries_the_deadline_the_logic_arms()
    {
        long sentAt = _h.NowUs;
        OutputEvent request = Single(_h.Pay("P1", 100), OutputKind.BankRequest);
        Assert.Equal(sentAt + TimeoutUs, request.BankDeadlineUs);

        _h.Tick(_h.Logic.Config.Rules.BankTimeoutMs - 1);
        Assert.Empty(_h.Tick(0).FindAll(o => o.Kind == OutputKind.Answer)); // not yet
        OutputEvent unknown = Single(_h.Tick(1), OutputKind.Answer); // at that very instant
        Assert.Equal(TransactionStatus.Unknown, unknown.Status);

        // A query gets a deadline of its own, from the tick that sends it.
        List<OutputEvent> asked = _h.Tick(_h.Logic.Config.Rules.QueryBackoffInitialMs);
        OutputEvent query = Single(asked, OutputKind.BankRequest);
        Assert.Equal(BankOperation.Query, query.Operation);
        Assert.Equal(_h.NowUs + TimeoutUs, query.BankDeadlineUs);
        Assert.True(query.BankDeadlineUs > request.BankDeadlineUs);

        // Asked after the deadline the request was sent with: "no record" means it never executed.
        OutputEvent failed = Single(_h.BankAnswer(request.TransactionId, BankOperation.Query, BankReply.NotFound), OutputKind.Feed);
        Assert.Equal(TransactionStatus.Failed, failed.Status);
        Assert.Equal("BANK_NOT_RECEIVED", failed.Reason.ToString());
    }

    [Fact]
    public void A_no_record_answer_to_a_query_never_sent_changes_nothing()
    {
        OutputEvent request = Single(_h.Pay("P1", 100), OutputKind.BankRequest);
        long unmatched = _h.Logic.UnmatchedBankResults;
        Assert.Empty(_h.BankAnswer(request.TransactionId, BankOperation.Query, BankReply.NotFound));
        Assert.Equal(unmatched + 1, _h.Logic.UnmatchedBankResults);
        Assert.Equal(TransactionStatus.Dispatched, _h.Logic.Transactions.ById(request.TransactionId).Status);
        Assert.Equal(1, _h.Logic.BankByCode(102).Endpoints.Sum(e => e.InFlight));
        // The bank's real answer still settles it.
        Assert.Equal(TransactionStatus.Succeeded,
            Single(_h.BankAnswer(request.TransactionId, BankOperation.Debit, BankReply.Succeeded), OutputKind.Answer).Status);
        Assert.Equal(0, _h.Logic.BankByCode(102).Endpoints.Sum(e => e.InFlight));
    }
}
