using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Tests.Support;
using static Switch.Engine.Tests.Support.LogicHarness;

namespace Switch.Engine.Tests.Business;

/// <summary>One test per rule of the business logic, driven event by event.</summary>
public sealed class LogicRulesTests
{
    private readonly LogicHarness _h = new();

    [Fact]
    public void Agreement_payment_debits_the_payers_bank_and_credits_the_reserve_less_the_fee()
    {
        List<OutputEvent> sent = _h.Pay("P1", 100_000, echo: "flow-7");
        OutputEvent request = Single(sent, OutputKind.BankRequest);
        Assert.Equal(BankOperation.Debit, request.Operation);
        Assert.Equal(102, request.BankCode);
        Assert.Equal(1, request.Attempt);
        Assert.DoesNotContain(sent, o => o.Kind == OutputKind.Answer); // no answer before the bank's

        List<OutputEvent> done = _h.BankAnswer(request.TransactionId, BankOperation.Debit, BankReply.Succeeded);
        OutputEvent answer = Single(done, OutputKind.Answer);
        OutputEvent feed = Single(done, OutputKind.Feed);
        Assert.Equal(TransactionStatus.Succeeded, answer.Status);
        Assert.Equal("flow-7", answer.Echo.ToString());
        Assert.Equal(1, feed.FeedNo);
        Assert.Equal(100, answer.FeeFen); // 10 bps of 1000.00 CNY

        Assert.Equal(-100_000, _h.Logic.BankByCode(102).PositionFen);
        Assert.Equal(99_900, _h.Logic.InstitutionByCode("ALIPAY").PositionFen);
        Assert.Equal(100, _h.Logic.SwitchFeeFen);
    }

    [Fact]
    public void Payout_credits_the_payees_bank_and_charges_the_reserve_amount_plus_fee()
    {
        OutputEvent request = Single(_h.Payout("O1", 200_000), OutputKind.BankRequest);
        Assert.Equal(BankOperation.Credit, request.Operation);
        Assert.Equal(103, request.BankCode);
        _h.BankAnswer(request.TransactionId, BankOperation.Credit, BankReply.Succeeded);
        Assert.Equal(200_000, _h.Logic.BankByCode(103).PositionFen);
        Assert.Equal(-(200_000 + 101), _h.Logic.InstitutionByCode("ALIPAY").PositionFen); // 5 bps + 1 fen
        Assert.Equal(101, _h.Logic.SwitchFeeFen);
    }

    [Fact]
    public void Failed_transfer_moves_no_money_and_carries_the_banks_reason()
    {
        OutputEvent answer = _h.PayAndSettle("P1", 50_000, BankReply.Failed);
        Assert.Equal(TransactionStatus.Failed, answer.Status);
        Assert.Equal(0, _h.Logic.InstitutionByCode("ALIPAY").PositionFen);
        Assert.Equal(0, _h.Logic.SwitchFeeFen);

        OutputEvent request = Single(_h.Pay("P2", 10), OutputKind.BankRequest);
        OutputEvent failed = Single(_h.BankAnswer(request.TransactionId, BankOperation.Debit, BankReply.Failed, "INSUFFICIENT_FUNDS"), OutputKind.Answer);
        Assert.Equal("INSUFFICIENT_FUNDS", failed.Reason.ToString());
    }

    [Fact]
    public void Bank_is_named_by_code_or_by_cnaps_branch_code()
    {
        OutputEvent byCnaps = Single(_h.Pay("P1", 100, bank: "308584000013"), OutputKind.BankRequest);
        Assert.Equal(308, byCnaps.BankCode);
        AssertReject(_h.Pay("P2", 100, bank: "999"), RejectCode.UnknownBank, RequestField.Bank);
        AssertReject(_h.Pay("P3", 100, bank: "10"), RejectCode.InvalidField, RequestField.Bank);
        AssertReject(_h.Pay("P4", 100, bank: "30858400001X"), RejectCode.InvalidField, RequestField.Bank);
        AssertReject(_h.Pay("P5", 100, bank: ""), RejectCode.MissingField, RequestField.Bank);
    }

    [Theory]
    [InlineData(0, RejectCode.InvalidAmount)]
    [InlineData(-1, RejectCode.InvalidAmount)]
    [InlineData(long.MinValue, RejectCode.InvalidAmount)]
    [InlineData(5_000_001, RejectCode.AmountOverLimit)]
    [InlineData(long.MaxValue, RejectCode.AmountOverLimit)]
    public void Amount_must_be_positive_and_within_the_single_limit(long amountFen, RejectCode expected)
    {
        AssertReject(_h.Pay("P1", amountFen), expected, RequestField.Amount);
        Assert.Equal(0, _h.Logic.Transactions.LastId);
    }

    [Fact]
    public void Each_malformed_field_is_rejected_precisely_and_changes_nothing()
    {
        ulong before = _h.Logic.StateHash();
        AssertReject(_h.Send(Request(RequestType.AgreementPayment, "NOBODY", "P1", 100)), RejectCode.UnknownInstitution, RequestField.Institution);
        AssertReject(_h.Send(Request(RequestType.AgreementPayment, "", "P1", 100)), RejectCode.MissingField, RequestField.Institution);
        AssertReject(_h.Send(Request(RequestType.AgreementPayment, new string('A', 17), "P1", 100)), RejectCode.FieldTooLong, RequestField.Institution);
        AssertReject(_h.Send(Request(RequestType.AgreementPayment, "ALIPAY", "", 100)), RejectCode.MissingField, RequestField.OrderNo);
        AssertReject(_h.Send(Request(RequestType.AgreementPayment, "ALIPAY", new string('9', 33), 100)), RejectCode.FieldTooLong, RequestField.OrderNo);
        AssertReject(_h.Send(Request(RequestType.AgreementPayment, "ALIPAY", "P 1", 100)), RejectCode.InvalidField, RequestField.OrderNo);
        AssertReject(_h.Send(Request(RequestType.AgreementPayment, "ALIPAY", "P\u00011", 100)), RejectCode.InvalidField, RequestField.OrderNo);
        AssertReject(_h.Send(Request(RequestType.AgreementPayment, "ALIPAY", "P1", 100, currency: "USD")), RejectCode.UnsupportedCurrency, RequestField.Currency);
        AssertReject(_h.Send(Request(RequestType.AgreementPayment, "ALIPAY", "P1", 100, currency: "")), RejectCode.MissingField, RequestField.Currency);
        AssertReject(_h.Send(Request(RequestType.AgreementPayment, "ALIPAY", "P1", 100, account: "")), RejectCode.MissingField, RequestField.Account);
        AssertReject(_h.Send(Request(RequestType.AgreementPayment, "ALIPAY", "P1", 100, account: new string('6', 33))), RejectCode.FieldTooLong, RequestField.Account);
        AssertReject(_h.Send(Request(RequestType.AgreementPayment, "ALIPAY", "P1", 100, echo: new string('e', 65))), RejectCode.FieldTooLong, RequestField.Echo);
        AssertReject(_h.Send(Request(RequestType.AgreementPayment, "ALIPAY", "P1", 100, echo: "a\nb")), RejectCode.InvalidField, RequestField.Echo);
        AssertReject(_h.Send(Request((RequestType)77, "ALIPAY", "P1", 100)), RejectCode.UnsupportedRequestType, RequestField.RequestType);
        Assert.Equal(before, _h.Logic.StateHash());
        Assert.Equal(0, _h.Logic.Transactions.LastId);
    }

    [Fact]
    public void Echo_may_hold_any_printable_utf8_and_comes_back_untouched()
    {
        OutputEvent answer = _h.PayAndSettleWithEcho("P1", "渠道-甲/批次#3");
        Assert.Equal("渠道-甲/批次#3", answer.Echo.ToString());
    }

    [Fact]
    public void Repeated_order_with_same_content_returns_the_first_outcome_and_executes_once()
    {
        OutputEvent first = _h.PayAndSettle("P1", 1_000);
        List<OutputEvent> again = _h.Pay("P1", 1_000);
        OutputEvent repeat = Single(again, OutputKind.Answer);
        Assert.DoesNotContain(again, o => o.Kind == OutputKind.BankRequest);
        Assert.True(repeat.Duplicate);
        Assert.Equal(first.TransactionId, repeat.TransactionId);
        Assert.Equal(TransactionStatus.Succeeded, repeat.Status);
        Assert.Equal(1, _h.Logic.Transactions.LastId);
        Assert.Equal(999, _h.Logic.InstitutionByCode("ALIPAY").PositionFen); // once, fee 1 fen
    }

    [Fact]
    public void Repeat_while_in_flight_returns_the_current_status_without_a_second_bank_call()
    {
        _h.Pay("P1", 1_000);
        List<OutputEvent> again = _h.Pay("P1", 1_000);
        Assert.Equal(TransactionStatus.Dispatched, Single(again, OutputKind.Answer).Status);
        Assert.DoesNotContain(again, o => o.Kind == OutputKind.BankRequest);
    }

    [Fact]
    public void Repeated_order_with_different_content_is_a_conflict()
    {
        _h.PayAndSettle("P1", 1_000);
        AssertReject(_h.Pay("P1", 1_001), RejectCode.DuplicateOrderConflict, RequestField.OrderNo);
        AssertReject(_h.Pay("P1", 1_000, bank: "103"), RejectCode.DuplicateOrderConflict, RequestField.OrderNo);
        AssertReject(_h.Pay("P1", 1_000, account: "6222000000000000"), RejectCode.DuplicateOrderConflict, RequestField.OrderNo);
        AssertReject(_h.Payout("P1", 1_000), RejectCode.DuplicateOrderConflict, RequestField.OrderNo);
        Assert.Equal(1, _h.Logic.Transactions.LastId);
    }

    [Fact]
    public void Order_numbers_are_scoped_per_institution()
    {
        _h.PayAndSettle("SAME", 1_000, institution: "ALIPAY");
        OutputEvent other = _h.PayAndSettle("SAME", 2_000, institution: "TENPAY");
        Assert.Equal(TransactionStatus.Succeeded, other.Status);
        Assert.Equal(2, _h.Logic.Transactions.LastId);
        Assert.Equal(2_000, Single(_h.Query("SAME", "TENPAY"), OutputKind.Answer).AmountFen);
    }

    [Fact]
    public void Query_answers_the_current_status_and_never_another_institutions_order()
    {
        _h.PayAndSettle("P1", 1_000);
        OutputEvent mine = Single(_h.Query("P1"), OutputKind.Answer);
        Assert.Equal(TransactionStatus.Succeeded, mine.Status);
        Assert.False(mine.Duplicate);
        AssertReject(_h.Query("P1", "TENPAY"), RejectCode.OrderNotFound, RequestField.OrderNo);
        AssertReject(_h.Query("NOPE"), RejectCode.OrderNotFound, RequestField.OrderNo);
    }

    [Fact]
    public void Refunds_may_be_partial_but_never_exceed_the_original()
    {
        _h.PayAndSettle("P1", 10_000);
        OutputEvent r1 = Single(_h.Refund("R1", "P1", 4_000), OutputKind.BankRequest);
        Assert.Equal(BankOperation.Credit, r1.Operation);
        Assert.Equal(102, r1.BankCode); // back to the original payer's bank
        Assert.Equal("6222020200112233", r1.Account.ToString());
        // 4000 is reserved while in flight: 7000 more would exceed.
        AssertReject(_h.Refund("R2", "P1", 7_000), RejectCode.RefundExceedsOriginal, RequestField.Amount);
        _h.BankAnswer(r1.TransactionId, BankOperation.Credit, BankReply.Succeeded);
        OutputEvent r3 = Single(_h.Refund("R3", "P1", 6_000), OutputKind.BankRequest);
        _h.BankAnswer(r3.TransactionId, BankOperation.Credit, BankReply.Succeeded);
        AssertReject(_h.Refund("R4", "P1", 1), RejectCode.OriginalFullyRefunded, RequestField.OriginalOrderNo);

        _h.Logic.TryGetOrder("ALIPAY", "P1", out Transaction original);
        Assert.Equal(10_000, original.RefundedFen);
        Assert.Equal(0, _h.Logic.BankByCode(102).PositionFen); // debited 10000, refunded 10000
    }

    [Fact]
    public void A_failed_refund_releases_its_reservation()
    {
        _h.PayAndSettle("P1", 10_000);
        OutputEvent r1 = Single(_h.Refund("R1", "P1", 10_000), OutputKind.BankRequest);
        _h.BankAnswer(r1.TransactionId, BankOperation.Credit, BankReply.Failed, "ACCOUNT_CLOSED");
        Assert.Single(_h.Refund("R2", "P1", 10_000), o => o.Kind == OutputKind.BankRequest);
    }

    [Fact]
    public void Refund_of_unknown_failed_pending_or_non_payment_orders_is_rejected()
    {
        AssertReject(_h.Refund("R1", "NOPE", 1), RejectCode.OriginalNotFound, RequestField.OriginalOrderNo);
        _h.PayAndSettle("F1", 100, BankReply.Failed);
        AssertReject(_h.Refund("R2", "F1", 1), RejectCode.OriginalNotRefundable, RequestField.OriginalOrderNo);
        _h.Pay("PENDING", 100);
        AssertReject(_h.Refund("R3", "PENDING", 1), RejectCode.OriginalNotRefundable, RequestField.OriginalOrderNo);
        OutputEvent payout = Single(_h.Payout("O1", 100), OutputKind.BankRequest);
        _h.BankAnswer(payout.TransactionId, BankOperation.Credit, BankReply.Succeeded);
        AssertReject(_h.Refund("R4", "O1", 1), RejectCode.OriginalNotRefundable, RequestField.OriginalOrderNo);
        AssertReject(_h.Refund("R5", "", 1), RejectCode.MissingField, RequestField.OriginalOrderNo);
        _h.PayAndSettle("P9", 100);
        AssertReject(_h.Refund("R6", "P9", 1, institution: "TENPAY"), RejectCode.OriginalNotFound, RequestField.OriginalOrderNo);
    }

    [Fact]
    public void Weights_route_by_stable_hash_and_a_change_applies_from_the_next_transaction()
    {
        var h = new LogicHarness(TestConfigs.Small(transactionCapacity: 4096));
        var counts = new int[2];
        for (int i = 0; i < 2_000; i++)
        {
            counts[h.PayRouted($"P{i}")]++;
        }
        // 95% / 5% split: binomial, n=2000, p=0.05: mean 100, sd ~9.7; 6 sd either way.
        Assert.InRange(counts[1], 40, 160);

        Assert.Equal(RejectCode.None, Single(h.SetWeights(102, 0, 10_000), OutputKind.CommandAnswer).Reject);
        for (int i = 0; i < 50; i++)
        {
            Assert.Equal(1, h.PayRouted($"Q{i}"));
        }
    }

    [Fact]
    public void Routing_is_the_same_in_every_engine_for_the_same_ids()
    {
        var other = new LogicHarness();
        for (int i = 0; i < 200; i++)
        {
            Assert.Equal(_h.PayRouted($"P{i}"), other.PayRouted($"P{i}"));
        }
    }

    [Fact]
    public void A_down_endpoints_share_goes_to_the_others_and_no_endpoint_up_is_bank_unavailable()
    {
        _h.SetState(102, 0, EndpointState.Down);
        for (int i = 0; i < 100; i++)
        {
            Assert.Equal(1, _h.PayRouted($"P{i}"));
        }
        _h.SetState(102, 1, EndpointState.Draining);
        AssertReject(_h.Pay("X1", 100), RejectCode.BankUnavailable, RequestField.Bank);
        _h.SetState(102, 0, EndpointState.Up);
        Assert.Equal(0, Single(_h.Pay("X2", 100), OutputKind.BankRequest).EndpointIndex);
    }

    [Fact]
    public void Bad_operator_commands_are_rejected_and_change_nothing()
    {
        ulong before = _h.Logic.StateHash();
        Assert.Equal(RejectCode.InvalidWeights, Single(_h.SetWeights(102, 5_000, 4_000), OutputKind.CommandAnswer).Reject);
        Assert.Equal(RejectCode.InvalidWeights, Single(_h.SetWeights(102, 11_000, -1_000), OutputKind.CommandAnswer).Reject);
        Assert.Equal(RejectCode.InvalidWeights, Single(_h.SetWeights(102, 10_000), OutputKind.CommandAnswer).Reject);
        Assert.Equal(RejectCode.UnknownBank, Single(_h.SetWeights(999, 5_000, 5_000), OutputKind.CommandAnswer).Reject);
        Assert.Equal(RejectCode.UnknownEndpoint, Single(_h.SetState(102, 2, EndpointState.Down), OutputKind.CommandAnswer).Reject);
        Assert.Equal(RejectCode.InvalidField, Single(_h.SetState(102, 0, (EndpointState)9), OutputKind.CommandAnswer).Reject);
        Assert.Equal(before, _h.Logic.StateHash());
    }

    [Fact]
    public void Endpoint_in_flight_cap_rejects_with_resource_exhausted_instead_of_queueing()
    {
        _h.SetWeights(102, 10_000, 0);
        for (int i = 0; i < 64; i++)
        {
            Single(_h.Pay($"P{i}", 100, account: $"A{i}"), OutputKind.BankRequest);
        }
        List<OutputEvent> over = _h.Pay("P64", 100, account: "A64");
        AssertReject(over, RejectCode.EndpointBusy, RequestField.Bank);
        Assert.Equal(RejectCategory.ResourceExhausted, RejectCodes.Category(over[0].Reject));
        _h.BankAnswer(1, BankOperation.Debit, BankReply.Succeeded);
        Single(_h.Pay("P65", 100, account: "A65"), OutputKind.BankRequest);
    }

    [Fact]
    public void Net_debit_cap_bounds_payouts_including_those_in_flight()
    {
        // ALIPAY's cap is 10,000.00 CNY; payout fee 5 bps + 1 fen.
        Single(_h.Payout("O1", 600_000), OutputKind.BankRequest);
        AssertReject(_h.Payout("O2", 400_000), RejectCode.NetDebitCapExceeded, RequestField.Amount); // 600301 + 400201 > cap
        Single(_h.Payout("O3", 399_000), OutputKind.BankRequest);

        // Money coming in raises the room.
        _h.PayAndSettle("P1", 1_000_000);
        Single(_h.Payout("O4", 900_000), OutputKind.BankRequest);
    }

    [Fact]
    public void Daily_account_limit_is_reserved_before_the_call_released_on_failure_and_resets_next_day()
    {
        // 20,000.00 CNY a day per payer account through a bank.
        OutputEvent a = Single(_h.Pay("P1", 1_500_000), OutputKind.BankRequest);
        AssertReject(_h.Pay("P2", 600_000), RejectCode.DailyLimitExceeded, RequestField.Amount); // reserved while in flight
        Single(_h.Pay("P3", 600_000, account: "6222999999999999"), OutputKind.BankRequest); // another account
        Single(_h.Pay("P4", 600_000, bank: "103"), OutputKind.BankRequest); // another bank
        _h.BankAnswer(a.TransactionId, BankOperation.Debit, BankReply.Failed, "INSUFFICIENT_FUNDS");
        OutputEvent b = Single(_h.Pay("P5", 2_000_000), OutputKind.BankRequest); // released
        _h.BankAnswer(b.TransactionId, BankOperation.Debit, BankReply.Succeeded);
        AssertReject(_h.Pay("P6", 1), RejectCode.DailyLimitExceeded, RequestField.Amount);
        _h.Tick(24 * 3_600_000);
        Single(_h.Pay("P7", 1), OutputKind.BankRequest);
    }

    [Fact]
    public void No_answer_by_the_deadline_makes_it_unknown_then_the_bank_query_decides()
    {
        OutputEvent request = Single(_h.Pay("P1", 1_000), OutputKind.BankRequest);
        Assert.Empty(_h.Tick(999));
        OutputEvent unknown = Single(_h.Tick(1), OutputKind.Answer);
        Assert.Equal(TransactionStatus.Unknown, unknown.Status);
        Assert.Equal(0, _h.Logic.BankByCode(102).Endpoints[request.EndpointIndex].InFlight);

        OutputEvent query = Single(_h.Tick(500), OutputKind.BankRequest);
        Assert.Equal(BankOperation.Query, query.Operation);
        _h.BankAnswer(request.TransactionId, BankOperation.Query, BankReply.Pending);
        OutputEvent query2 = Single(_h.Tick(1_000), OutputKind.BankRequest); // back-off 500 → 1000 ms
        Assert.Equal(2, query2.Attempt);
        Assert.Empty(_h.Tick(1_999));
        Assert.Single(_h.Tick(1), o => o.Kind == OutputKind.BankRequest); // then 2000 ms

        List<OutputEvent> done = _h.BankAnswer(request.TransactionId, BankOperation.Query, BankReply.Succeeded);
        OutputEvent final = Single(done, OutputKind.Feed);
        Assert.DoesNotContain(done, o => o.Kind == OutputKind.Answer); // the request was answered once: "unknown"
        Assert.Equal(TransactionStatus.Succeeded, final.Status);
        Assert.Equal(1, final.FeedNo);
        Assert.Empty(_h.Tick(60_000)); // no more follow-ups
    }

    [Fact]
    public void Queries_go_to_the_original_endpoint_first_then_to_each_endpoint_in_turn_so_a_silent_one_cannot_hold_the_outcome()
    {
        OutputEvent request = Single(_h.Pay("P1", 1_000), OutputKind.BankRequest);
        int original = request.EndpointIndex;
        int endpoints = _h.Logic.BankByCode(102).Endpoints.Length;
        Assert.True(endpoints >= 2, "the test bank needs a second endpoint");
        Single(_h.Tick(1_000), OutputKind.Answer); // unknown at the deadline
        var asked = new List<int>();
        foreach (int backOffMs in new[] { 500, 1_000, 2_000, 4_000 }) // each query as it falls due, before the reversal time
        {
            OutputEvent query = Single(_h.Tick(backOffMs), OutputKind.BankRequest);
            Assert.Equal(BankOperation.Query, query.Operation);
            asked.Add(query.EndpointIndex);
        }
        Assert.Equal(Enumerable.Range(0, asked.Count).Select(k => (original + k) % endpoints), asked);

        // An endpoint that cannot answer (unreachable) is skipped: the reversal, due now, goes to one that can.
        int unreachable = (original + asked.Count) % endpoints;
        _h.Reachability(102, unreachable, reachable: false);
        OutputEvent next = Single(_h.Tick(4_000), OutputKind.BankRequest);
        Assert.Equal(BankOperation.Reverse, next.Operation);
        Assert.NotEqual(unreachable, next.EndpointIndex);
    }

    [Fact]
    public void Query_back_off_is_bounded()
    {
        _h.Pay("P1", 1_000);
        _h.Tick(1_000);
        long lastDueMs = 0;
        for (int i = 0; i < 12; i++)
        {
            int waitedMs = 0;
            while (_h.Tick(100).Count == 0) waitedMs += 100;
            lastDueMs = waitedMs + 100;
        }
        Assert.Equal(4_000, lastDueMs); // QueryBackoffMaxMs
    }

    [Fact]
    public void A_bank_that_never_received_the_request_makes_it_failed_and_releases_limits()
    {
        OutputEvent request = Single(_h.Pay("P1", 2_000_000), OutputKind.BankRequest);
        _h.Tick(1_000);
        _h.Tick(500);
        OutputEvent final = Single(_h.BankAnswer(request.TransactionId, BankOperation.Query, BankReply.NotFound), OutputKind.Feed);
        Assert.Equal(TransactionStatus.Failed, final.Status);
        Assert.Equal("BANK_NOT_RECEIVED", final.Reason.ToString());
        Single(_h.Pay("P2", 2_000_000), OutputKind.BankRequest); // daily limit released
    }

    [Fact]
    public void A_debit_unknown_too_long_is_reversed_and_a_late_success_does_not_override_the_reversal()
    {
        OutputEvent request = Single(_h.Pay("P1", 1_000), OutputKind.BankRequest);
        _h.Tick(1_000); // unknown
        var operations = new List<BankOperation>();
        for (int i = 0; i < 120 && !operations.Contains(BankOperation.Reverse); i++)
        {
            operations.AddRange(_h.Tick(100).Where(o => o.Kind == OutputKind.BankRequest).Select(o => o.Operation));
        }
        Assert.Contains(BankOperation.Reverse, operations);
        Assert.Empty(_h.BankAnswer(request.TransactionId, BankOperation.Debit, BankReply.Succeeded)); // ignored while reversing
        OutputEvent final = Single(_h.BankAnswer(request.TransactionId, BankOperation.Reverse, BankReply.Succeeded), OutputKind.Feed);
        Assert.Equal(TransactionStatus.Failed, final.Status);
        Assert.Equal("REVERSED", final.Reason.ToString());
        Assert.Equal(0, _h.Logic.InstitutionByCode("ALIPAY").PositionFen);
    }

    [Fact]
    public void A_payout_unknown_is_never_reversed_only_queried()
    {
        _h.Payout("O1", 1_000);
        _h.Tick(1_000);
        var operations = new List<BankOperation>();
        for (int i = 0; i < 300; i++)
        {
            operations.AddRange(_h.Tick(100).Where(o => o.Kind == OutputKind.BankRequest).Select(o => o.Operation));
        }
        Assert.NotEmpty(operations);
        Assert.All(operations, op => Assert.Equal(BankOperation.Query, op));
    }

    [Fact]
    public void A_final_outcome_never_changes_and_a_contradiction_is_kept_as_a_discrepancy()
    {
        OutputEvent answer = _h.PayAndSettle("P1", 1_000);
        long position = _h.Logic.InstitutionByCode("ALIPAY").PositionFen;
        Assert.Empty(_h.BankAnswer(answer.TransactionId, BankOperation.Debit, BankReply.Succeeded));
        Assert.Equal(1, _h.Logic.DuplicateBankResults);
        Assert.Empty(_h.BankAnswer(answer.TransactionId, BankOperation.Query, BankReply.Failed, "NO_SUCH_TXN"));
        Assert.Equal(1, _h.Logic.DiscrepancyCount);
        Discrepancy d = Assert.Single(_h.Logic.Discrepancies);
        Assert.Equal(TransactionStatus.Succeeded, d.Final);
        Assert.Equal(TransactionStatus.Failed, d.Reported);
        _h.Logic.TryGetOrder("ALIPAY", "P1", out Transaction tx);
        Assert.Equal(TransactionStatus.Succeeded, tx.Status);
        Assert.Equal(position, _h.Logic.InstitutionByCode("ALIPAY").PositionFen);
    }

    [Fact]
    public void Answers_for_unknown_or_mismatched_transactions_are_counted_and_ignored()
    {
        OutputEvent request = Single(_h.Pay("P1", 1_000), OutputKind.BankRequest);
        ulong before = _h.Logic.StateHash();
        Assert.Empty(_h.BankAnswer(999, BankOperation.Debit, BankReply.Succeeded));
        Assert.Empty(_h.BankAnswer(request.TransactionId, BankOperation.Credit, BankReply.Succeeded)); // a debit, not a credit
        Assert.Empty(_h.BankAnswer(request.TransactionId, BankOperation.Debit, BankReply.Pending));
        Assert.Equal(3, _h.Logic.UnmatchedBankResults);
        Assert.Equal(before, _h.Logic.StateHash());
    }

    [Fact]
    public void Feed_numbers_run_1_2_3_per_institution_in_order_of_final_outcomes()
    {
        OutputEvent a = Single(_h.Pay("A", 100), OutputKind.BankRequest);
        OutputEvent b = Single(_h.Pay("B", 100, account: "X2"), OutputKind.BankRequest);
        OutputEvent c = _h.PayAndSettle("C", 100, institution: "TENPAY");
        Assert.Equal(1, c.FeedNo);
        Assert.Equal(1, Single(_h.BankAnswer(b.TransactionId, BankOperation.Debit, BankReply.Failed), OutputKind.Feed).FeedNo);
        Assert.Equal(2, Single(_h.BankAnswer(a.TransactionId, BankOperation.Debit, BankReply.Succeeded), OutputKind.Feed).FeedNo);
    }

    [Fact]
    public void Fee_rounding_is_floored_and_exact()
    {
        var inst = new LogicHarness().Logic.InstitutionByCode("TENPAY");
        Assert.Equal(2 + 0, inst.FeeFen(RequestType.AgreementPayment, 1)); // 8 bps of 1 fen floors to 0
        Assert.Equal(2 + 8, inst.FeeFen(RequestType.AgreementPayment, 10_000));
        Assert.Equal(2 + 3_999_999, inst.FeeFen(RequestType.AgreementPayment, 4_999_999_999));
    }

}

internal static class LogicHarnessExtensions
{
    /// <summary>Pays (a fresh account per order), settles at once, and returns the endpoint it was routed to.</summary>
    public static int PayRouted(this LogicHarness h, string orderNo)
    {
        OutputEvent request = LogicHarness.Single(h.Pay(orderNo, 100, account: "A" + orderNo), OutputKind.BankRequest);
        h.BankAnswer(request.TransactionId, BankOperation.Debit, BankReply.Succeeded);
        return request.EndpointIndex;
    }

    public static OutputEvent PayAndSettleWithEcho(this LogicHarness h, string orderNo, string echo)
    {
        OutputEvent request = LogicHarness.Single(h.Pay(orderNo, 100, echo: echo), OutputKind.BankRequest);
        return LogicHarness.Single(h.BankAnswer(request.TransactionId, BankOperation.Debit, BankReply.Succeeded), OutputKind.Answer);
    }
}
