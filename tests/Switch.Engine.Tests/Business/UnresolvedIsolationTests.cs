using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Tests.Support;
using static Switch.Engine.Tests.Support.LogicHarness;

namespace Switch.Engine.Tests.Business;

/// <summary>A transaction that stays unresolved holds back only its own bank's new work, and only at the bank's bound
/// (issue 11, part 1): the table parks it when its slot is needed, and every lookup still finds it.</summary>
public sealed class UnresolvedIsolationTests
{
    private static SwitchConfig Config(int capacity, int maxUnresolvedPerBank = 4096)
    {
        SwitchConfig config = TestConfigs.Small(transactionCapacity: capacity);
        return config with { Rules = config.Rules with { MaxUnresolvedPerBank = maxUnresolvedPerBank } };
    }

    [Fact]
    public void A_stuck_transaction_is_parked_and_the_table_keeps_serving_everyone_else()
    {
        var h = new LogicHarness(Config(capacity: 16));
        OutputEvent stuck = Single(h.Pay("STUCK", 100, bank: "308", account: "A0"), OutputKind.BankRequest);
        h.Tick(1_500); // past its deadline: unknown, queried from now on
        Assert.Equal(TransactionStatus.Unknown, h.Logic.Transactions.ById(stuck.TransactionId).Status);

        for (int i = 0; i < 200; i++)
        {
            Assert.Equal(TransactionStatus.Succeeded, h.PayAndSettle($"P{i}", 100).Status); // 12 tables' worth
        }
        Assert.True(h.Logic.Transactions.TryFind(stuck.TransactionId, out int index));
        Assert.True(h.Logic.Transactions.IsParked(index));
        Assert.Equal(1, h.Logic.Transactions.ParkedCount);
        Assert.Equal(1, h.Logic.BankByCode(308).Unresolved);
        Assert.Equal(TransactionStatus.Unknown, Single(h.Query("STUCK"), OutputKind.Answer).Status); // found by order number
        Assert.True(Single(h.Pay("STUCK", 100, bank: "308", account: "A0"), OutputKind.Answer).Duplicate); // a repeat too

        // Its follow-ups go on while parked; the bank's answer makes it final and it leaves for the archive.
        List<OutputEvent> asked = h.Tick(5_000);
        Assert.Contains(asked, o => o.Kind == OutputKind.BankRequest && o.TransactionId == stuck.TransactionId && o.Operation == BankOperation.Query);
        OutputEvent feed = Single(h.BankAnswer(stuck.TransactionId, BankOperation.Query, BankReply.Succeeded), OutputKind.Feed);
        Assert.Equal(TransactionStatus.Succeeded, feed.Status);
        Assert.Equal(0, h.Logic.Transactions.ParkedCount);
        Assert.False(h.Logic.Transactions.TryFind(stuck.TransactionId, out _));
        Assert.Equal(0, h.Logic.BankByCode(308).Unresolved);
        Assert.True(h.Logic.TryGetOrder("ALIPAY", "STUCK", out Transaction archived));
        Assert.Equal((stuck.TransactionId, TransactionStatus.Succeeded), (archived.Id, archived.Status));
        Assert.Equal(TransactionStatus.Succeeded, Single(h.Query("STUCK"), OutputKind.Answer).Status);
        Assert.Equal(-100 - 200 * 100, h.Logic.BankByCode(308).PositionFen + h.Logic.BankByCode(102).PositionFen);
    }

    [Fact]
    public void At_its_bound_only_that_banks_new_requests_are_refused_naming_the_bank_and_the_bound()
    {
        var h = new LogicHarness(Config(capacity: 16, maxUnresolvedPerBank: 3));
        var stuck = new List<long>();
        for (int i = 0; i < 3; i++)
        {
            stuck.Add(Single(h.Pay($"S{i}", 100, bank: "308", account: $"A{i}"), OutputKind.BankRequest).TransactionId);
        }
        List<OutputEvent> refused = h.Pay("S3", 100, bank: "308", account: "A3");
        AssertReject(refused, RejectCode.BankUnresolvedLimit, RequestField.Bank);
        Assert.Equal(308, refused[0].BankCode);
        Assert.Equal("bank 308 limit 3", refused[0].Reason.ToString());
        Assert.Equal(RejectCategory.ResourceExhausted, RejectCodes.Category(RejectCode.BankUnresolvedLimit));
        Assert.True(Single(h.Pay("S0", 100, bank: "308", account: "A0"), OutputKind.Answer).Duplicate); // a repeat still answers
        Assert.False(h.Logic.TryGetOrder("ALIPAY", "S3", out _)); // the refused one left nothing behind

        // Other banks carry on, through many turns of the table, with 308's three parked.
        for (int i = 0; i < 100; i++)
        {
            Assert.Equal(TransactionStatus.Succeeded, h.PayAndSettle($"P{i}", 100).Status);
            Assert.Equal(TransactionStatus.Succeeded, h.PayAndSettle($"T{i}", 100, institution: "TENPAY").Status);
        }
        Assert.Equal(3, h.Logic.Transactions.ParkedCount);

        // One answer frees one place, for 308 alone.
        h.BankAnswer(stuck[1], BankOperation.Debit, BankReply.Failed, "INSUFFICIENT_FUNDS");
        Assert.Equal(2, h.Logic.Transactions.ParkedCount);
        Single(h.Pay("S3", 100, bank: "308", account: "A3"), OutputKind.BankRequest);
        AssertReject(h.Pay("S4", 100, bank: "308", account: "A4"), RejectCode.BankUnresolvedLimit, RequestField.Bank);
    }

    [Fact]
    public void A_refund_counts_against_its_originals_bank()
    {
        var h = new LogicHarness(Config(capacity: 16, maxUnresolvedPerBank: 1));
        Single(h.Pay("ORIG", 1_000, bank: "308"), OutputKind.BankRequest);
        h.BankAnswer(1, BankOperation.Debit, BankReply.Succeeded);
        Single(h.Pay("S0", 100, bank: "308", account: "A1"), OutputKind.BankRequest); // 308 at its bound
        AssertReject(h.Refund("R1", "ORIG", 100), RejectCode.BankUnresolvedLimit, RequestField.Bank);
        Single(h.Payout("O1", 100, bank: "103"), OutputKind.BankRequest); // another bank's work goes on
        h.BankAnswer(2, BankOperation.Debit, BankReply.Succeeded);
        OutputEvent refund = Single(h.Refund("R1", "ORIG", 100), OutputKind.BankRequest);
        Assert.Equal(308, refund.BankCode);
    }

    [Fact]
    public void More_in_flight_than_the_table_holds_parks_dispatched_ones_and_every_deadline_still_fires()
    {
        var h = new LogicHarness(Config(capacity: 16));
        var ids = new List<long>();
        for (int i = 0; i < 60; i++) // no tick meanwhile: the deadline queue (16) overflows too
        {
            ids.Add(Single(h.Pay($"P{i}", 100, account: $"A{i}"), OutputKind.BankRequest).TransactionId);
        }
        Assert.Equal(44, h.Logic.Transactions.ParkedCount);
        Assert.Equal(60, h.Logic.BankByCode(102).Unresolved);
        List<OutputEvent> unknown = h.Tick(1_500).FindAll(o => o.Kind == OutputKind.Answer);
        Assert.Equal(ids, unknown.Select(o => o.TransactionId).Order());
        Assert.All(unknown, o => Assert.Equal(TransactionStatus.Unknown, o.Status));
        foreach (long id in ids)
        {
            h.BankAnswer(id, BankOperation.Query, BankReply.Succeeded);
        }
        Assert.Equal(0, h.Logic.Transactions.ParkedCount);
        Assert.Equal(0, h.Logic.BankByCode(102).Unresolved);
        Assert.Equal(-6_000, h.Logic.BankByCode(102).PositionFen);
    }

    [Fact]
    public void Replay_rebuilds_the_parked_table_and_the_state_hash_covers_it()
    {
        SwitchConfig config = Config(capacity: 16, maxUnresolvedPerBank: 8);
        var live = new LogicHarness(config);
        var inputs = new List<InputEvent>();
        void Record() => inputs.Add(live.LastApplied);
        for (int i = 0; i < 5; i++)
        {
            live.Pay($"S{i}", 100, bank: "308", account: $"A{i}");
            Record();
        }
        for (int i = 0; i < 40; i++)
        {
            OutputEvent request = Single(live.Pay($"P{i}", 100), OutputKind.BankRequest);
            Record();
            live.BankAnswer(request.TransactionId, BankOperation.Debit, BankReply.Succeeded);
            Record();
        }
        live.Tick(1_500);
        Record();
        live.BankAnswer(2, BankOperation.Query, BankReply.Failed, "ACCOUNT_FROZEN");
        Record();
        Assert.Equal(4, live.Logic.Transactions.ParkedCount);

        var replay = new SwitchLogic(config, new CollectingSink());
        foreach (InputEvent input in inputs)
        {
            InputEvent e = input;
            replay.Apply(ref e);
        }
        Assert.Equal(live.Logic.StateHash(), replay.StateHash());

        // A different parked outcome is a different hash.
        var other = new SwitchLogic(config, new CollectingSink());
        foreach (InputEvent input in inputs.Take(inputs.Count - 1))
        {
            InputEvent e = input;
            other.Apply(ref e);
        }
        Assert.NotEqual(live.Logic.StateHash(), other.StateHash());
    }

    [Theory]
    [InlineData(0, "rules.maxUnresolvedPerBank: 1 to 1048576, got 0")]
    [InlineData(2_000_000, "rules.maxUnresolvedPerBank: 1 to 1048576, got 2000000")]
    [InlineData(1 << 21, "rules.maxUnresolvedPerBank: 1 to 1048576, got 2097152")]
    [InlineData(1 << 20, "rules.maxUnresolvedPerBank: times the 3 banks at most 2097152 (the parked table, 344 bytes a slot), got 1048576")]
    public void The_bound_is_validated_naming_the_field(int bound, string message)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigValidator.Validate(Config(capacity: 16, maxUnresolvedPerBank: bound)));
        Assert.Equal("configuration: " + message, e.Message);
    }
}
