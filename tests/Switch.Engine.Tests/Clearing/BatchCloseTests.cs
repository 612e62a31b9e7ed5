using Switch.Engine.Business;
using Switch.Engine.Clearing;
using Switch.Engine.Events;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Clearing;

/// <summary>Clearing batches in the logic: netting at close, batch membership, late results, the schedule, rejects.</summary>
public sealed class BatchCloseTests
{
    private static ClosedBatch Closed(List<OutputEvent> outputs)
    {
        var assembler = new ClosedBatchAssembler();
        ClosedBatch? batch = null;
        foreach (OutputEvent o in outputs) batch = assembler.Add(o) ?? batch;
        return batch ?? throw new Xunit.Sdk.XunitException("no BatchClosed output");
    }

    private static ParticipantPosition Position(ClosedBatch batch, string id) => batch.Positions.Single(p => p.Id == id);

    [Fact]
    public void Close_nets_every_participant_and_the_positions_sum_to_zero()
    {
        var h = new LogicHarness();
        OutputEvent paid = h.PayAndSettle("P1", 100_000); // ALIPAY fee 10 bps = 100
        Assert.Equal(1, paid.BatchId);
        OutputEvent payout = LogicHarness.Single(h.Payout("O1", 20_000), OutputKind.BankRequest); // fee 5 bps + 1 = 11
        OutputEvent paidOut = LogicHarness.Single(h.BankAnswer(payout.TransactionId, BankOperation.Credit, BankReply.Succeeded), OutputKind.Feed);
        Assert.Equal(1, paidOut.BatchId);
        h.PayAndSettle("P2", 5_000, BankReply.Failed);

        List<OutputEvent> outputs = h.CloseBatch("op-alice");
        ClosedBatch batch = Closed(outputs);
        Assert.Equal(1, batch.BatchId);
        Assert.Equal("op-alice", batch.ClosedBy);
        Assert.Equal(3, batch.TransactionCount); // the failed one belongs to the batch too
        Assert.Equal(3 + 2 + 1, batch.Positions.Count);

        Assert.Equal(new ParticipantPosition(ParticipantKind.Bank, "102", 100_000, 0, 0, -100_000, 1), Position(batch, "102"));
        Assert.Equal(new ParticipantPosition(ParticipantKind.Bank, "103", 0, 20_000, 0, 20_000, 1), Position(batch, "103"));
        Assert.Equal(new ParticipantPosition(ParticipantKind.Institution, "ALIPAY", 100 + 20_011, 100_000, 111, 100_000 - 100 - 20_011, 2), Position(batch, "ALIPAY"));
        Assert.Equal(new ParticipantPosition(ParticipantKind.SwitchFee, "SWITCH", 0, 111, 111, 111, 2), Position(batch, "SWITCH"));
        Assert.Equal(0, batch.Positions.Sum(p => p.NetFen));

        // The operator's answer names the batch it closed; the new batch starts from zero.
        OutputEvent answer = LogicHarness.Single(outputs, OutputKind.CommandAnswer);
        Assert.Equal(RejectCode.None, answer.Reject);
        Assert.Equal(1, answer.BatchId);
        Assert.Equal(2, h.Logic.OpenBatchId);
        Assert.All(h.Logic.Banks, b => Assert.Equal(0, b.PositionFen));
        Assert.All(h.Logic.Institutions, i => Assert.Equal(0, i.PositionFen));
        Assert.Equal(0, h.Logic.SwitchFeeFen);
        Assert.Equal(2, h.PayAndSettle("P3", 1_000).BatchId);
    }

    [Fact]
    public void A_batch_with_zero_transactions_closes_with_all_positions_zero()
    {
        var h = new LogicHarness();
        ClosedBatch first = Closed(h.CloseBatch());
        ClosedBatch second = Closed(h.CloseBatch());
        Assert.Equal((1, 2), (first.BatchId, second.BatchId));
        Assert.Equal(0, second.TransactionCount);
        Assert.All(second.Positions, p => Assert.Equal((0L, 0L, 0L), (p.DebitsFen, p.CreditsFen, p.Count)));
    }

    [Fact]
    public void A_closed_batch_says_when_it_opened_and_closed_through_its_own_named_stamps()
    {
        var h = new LogicHarness();
        h.NowUs = LogicHarness.StartUs + 5_000_000;
        OutputEvent first = LogicHarness.Single(h.CloseBatch(), OutputKind.BatchClosed);
        h.NowUs += 7_000_000;
        OutputEvent second = LogicHarness.Single(h.CloseBatch(), OutputKind.BatchClosed);
        Assert.Equal(LogicHarness.StartUs + 5_000_000, first.BatchClosedUs);
        // The next batch opens where the last one closed; the assembled batch reads the same stamps.
        Assert.Equal((first.BatchClosedUs, LogicHarness.StartUs + 12_000_000), (second.BatchOpenedUs, second.BatchClosedUs));
        var assembler = new ClosedBatchAssembler();
        ClosedBatch? batch = null;
        foreach (OutputEvent o in h.CloseBatch()) batch = assembler.Add(o) ?? batch;
        Assert.Equal(second.BatchClosedUs, batch!.OpenedUs);
    }

    [Fact]
    public void A_result_after_the_close_finalises_into_the_next_batch_and_the_closed_one_never_changes()
    {
        var h = new LogicHarness();
        OutputEvent request = LogicHarness.Single(h.Pay("LATE", 7_000), OutputKind.BankRequest);
        ClosedBatch first = Closed(h.CloseBatch());
        Assert.Equal(0, first.TransactionCount);
        Assert.Equal(0, Position(first, "102").NetFen);

        OutputEvent feed = LogicHarness.Single(h.BankAnswer(request.TransactionId, BankOperation.Debit, BankReply.Succeeded), OutputKind.Feed);
        Assert.Equal(2, feed.BatchId);
        Assert.True(h.Logic.TryGetOrder("ALIPAY", "LATE", out Transaction tx));
        Assert.Equal(2, tx.BatchId);
        // A repeated bank answer changes nothing anywhere.
        Assert.DoesNotContain(h.BankAnswer(request.TransactionId, BankOperation.Debit, BankReply.Succeeded), o => o.Kind == OutputKind.Feed);

        ClosedBatch second = Closed(h.CloseBatch());
        Assert.Equal(1, second.TransactionCount);
        Assert.Equal(-7_000, Position(second, "102").NetFen);
    }

    [Fact]
    public void The_net_debit_cap_is_about_the_open_batch()
    {
        var h = new LogicHarness();
        // ALIPAY's cap is 1,000,000: a payout of 900,000 (+ fee) fits, a second does not, until the batch closes.
        OutputEvent first = LogicHarness.Single(h.Payout("O1", 900_000), OutputKind.BankRequest);
        h.BankAnswer(first.TransactionId, BankOperation.Credit, BankReply.Succeeded);
        Assert.Equal(RejectCode.NetDebitCapExceeded, LogicHarness.Single(h.Payout("O2", 900_000), OutputKind.Answer).Reject);
        h.CloseBatch();
        LogicHarness.Single(h.Payout("O3", 900_000), OutputKind.BankRequest);
    }

    [Theory]
    [InlineData(null, RejectCode.MissingField)]
    [InlineData("", RejectCode.MissingField)]
    [InlineData("op alice", RejectCode.InvalidField)]
    [InlineData("op-0123456789012345678901234567890123456789", RejectCode.FieldTooLong)]
    public void A_close_without_a_valid_operator_is_rejected_and_changes_nothing(string? operatorId, RejectCode expected)
    {
        var h = new LogicHarness();
        h.PayAndSettle("P1", 1_000);
        ulong before = h.Logic.StateHash();
        List<OutputEvent> outputs = h.CloseBatch(operatorId);
        OutputEvent answer = Assert.Single(outputs);
        Assert.Equal(OutputKind.CommandAnswer, answer.Kind);
        Assert.Equal(expected, answer.Reject);
        Assert.Equal(RequestField.Operator, answer.RejectField);
        Assert.Equal(before, h.Logic.StateHash());
        Assert.Equal(1, h.Logic.OpenBatchId);
    }

    [Fact]
    public void The_schedule_closes_on_the_first_tick_at_or_after_each_time_in_the_configured_zone()
    {
        SwitchConfig config = TestConfigs.Small();
        config = config with { Rules = config.Rules with { BatchCloseTimes = ["23:00", "11:30"], DayUtcOffsetHours = 8 } };
        var h = new LogicHarness(config);
        // StartUs is 2025-11-13 02:13:20 UTC = 10:13:20 at +8: next close 11:30 local (03:30 UTC).
        long elevenThirtyUs = new DateTimeOffset(2025, 11, 13, 3, 30, 0, TimeSpan.Zero).ToUnixTimeMilliseconds() * 1000;
        Assert.DoesNotContain(h.Tick(1), o => o.Kind == OutputKind.BatchClosed);
        h.PayAndSettle("P1", 1_000);
        h.NowUs = elevenThirtyUs - 1_000;
        Assert.DoesNotContain(h.Tick(0), o => o.Kind == OutputKind.BatchClosed);
        List<OutputEvent> atClose = h.Tick(1);
        ClosedBatch first = Closed(atClose);
        Assert.Equal("SCHEDULE", first.ClosedBy);
        Assert.Equal(elevenThirtyUs, first.ClosedUs);
        Assert.Equal(1, first.TransactionCount);
        Assert.DoesNotContain(atClose, o => o.Kind == OutputKind.CommandAnswer); // nobody to answer
        Assert.DoesNotContain(h.Tick(60_000), o => o.Kind == OutputKind.BatchClosed);
        // 23:00 local = 15:00 UTC.
        h.NowUs = elevenThirtyUs + (11 * 60 + 30) * 60_000_000L;
        Assert.Equal(2, Closed(h.Tick(0)).BatchId);
        // Missed closes (no ticks for two days) collapse into one.
        h.NowUs += 2 * 86_400_000_000L;
        Assert.Equal(3, Closed(h.Tick(0)).BatchId);
        Assert.DoesNotContain(h.Tick(1), o => o.Kind == OutputKind.BatchClosed);
    }

    [Theory]
    [InlineData("24:00")]
    [InlineData("9:00")]
    [InlineData("09:60")]
    [InlineData("09-00")]
    [InlineData("+9:00")]
    public void Bad_close_times_are_refused(string time)
    {
        SwitchConfig config = TestConfigs.Small();
        config = config with { Rules = config.Rules with { BatchCloseTimes = [time] } };
        ConfigException e = Assert.Throws<ConfigException>(() => ConfigValidator.Validate(config));
        Assert.Contains("batchCloseTimes", e.Message);
    }

    [Fact]
    public void Duplicate_close_times_are_refused()
    {
        SwitchConfig config = TestConfigs.Small();
        config = config with { Rules = config.Rules with { BatchCloseTimes = ["23:00", "23:00"] } };
        Assert.Throws<ConfigException>(() => ConfigValidator.Validate(config));
    }

    [Fact]
    public void The_close_command_round_trips_through_the_journal_codec()
    {
        var e = new InputEvent { Kind = EventKind.CloseBatch, TimestampUs = 42, CorrelationId = 7 };
        e.Operator.Set("op-bob");
        byte[] buffer = new byte[EventCodec.MaxEncodedBytes];
        int length = EventCodec.Encode(ref e, buffer);
        var decoded = new InputEvent();
        EventCodec.Decode(buffer.AsSpan(0, length), ref decoded);
        Assert.Equal((EventKind.CloseBatch, 42L, 7L, "op-bob"), (decoded.Kind, decoded.TimestampUs, decoded.CorrelationId, decoded.Operator.ToString()));
        Assert.Throws<FormatException>(() => EventCodec.Decode(buffer.AsSpan(0, length - 1), ref decoded));
    }
}
