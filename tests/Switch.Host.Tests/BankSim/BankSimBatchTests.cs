using Switch.BankSim;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Tests.EndToEnd;

namespace Switch.Host.Tests.BankSim;

/// <summary>The Exchange stream's batch form (bank.proto) against the simulator over loopback: one message carrying
/// many requests, answered in one message; mixed with the single form; malformed batches refused whole.</summary>
public sealed class BankSimBatchTests
{
    private static readonly Metadata SwitchReadsBatches =
        new Metadata().Add(ExchangeBatch.SwitchBatchMaxHeader, ExchangeBatch.Format(ExchangeBatch.MaxElements));

    /// <summary>Every answer message as received, the status and the endpoint's declared batch header.</summary>
    private static async Task<(List<BankResponse> Messages, Status Status, string? Declared)> ExchangeMessagesAsync(BankUnderTest bank,
        IReadOnlyList<BankRequest> messages, Metadata? headers = null)
    {
        var (received, status, responseHeaders) = await DuplexMessages.ExchangeAsync(bank.Channel, BankEndpointMethods.Exchange, messages,
            new CallOptions { Headers = headers });
        return (received, status, responseHeaders?.GetValue(ExchangeBatch.BankBatchMaxHeader));
    }

    private static BankRequest Batch(IEnumerable<BankRequest> requests)
    {
        var message = new BankRequest();
        message.Batch.AddRange(requests);
        return message;
    }

    private static IEnumerable<BankResponse> Flatten(IEnumerable<BankResponse> messages) =>
        messages.SelectMany(m => m.Batch.Count > 0 ? m.Batch : [m]);

    [Fact]
    public async Task A_batch_of_a_thousand_requests_is_answered_in_one_message()
    {
        await using var bank = await BankUnderTest.StartAsync(new BankSimulatorOptions { Latency = new LatencyModel.Fixed(20) });
        const int N = 1000;
        List<BankRequest> requests = Enumerable.Range(1, N).Select(i => i % 4 == 0 ? Requests.Credit(i, 100 + i) : Requests.Debit(i, 100 + i)).ToList();

        var (messages, status, declared) = await ExchangeMessagesAsync(bank, [Batch(requests)], SwitchReadsBatches);

        Assert.Equal(StatusCode.OK, status.Code);
        Assert.Equal(ExchangeBatch.Format(ExchangeBatch.MaxElements), declared);
        BankResponse only = Assert.Single(messages);
        Assert.Equal(N, only.Batch.Count);
        Assert.Equal(0, only.TransactionId); // The batch form carries nothing beside its elements.
        Assert.Equal(Enumerable.Range(1, N).Select(i => (long)i), only.Batch.Select(a => a.TransactionId).Order());
        Assert.All(only.Batch, a => Assert.Equal(BankReply.Succeeded, a.Reply));
        Assert.Equal(N, bank.Ledger.Counts.Executed);
        Assert.Equal(requests.Sum(r => r.Operation == BankOperation.Credit ? r.AmountFen : -r.AmountFen), bank.Ledger.NetFen());
    }

    [Fact]
    public async Task With_no_latency_a_batch_is_answered_in_the_order_of_its_requests_those_answered_at_once_included()
    {
        // Due on arrival, every request goes to the session's first-in-first-out ring, not its priority queue (whose heap
        // gave equal due times back out of order): answers keep the requests' order, the invalid ones' (amount 0, answered
        // FAILED at once) among them. A second message of queries after the first: each sees what the first executed.
        await using var bank = await BankUnderTest.StartAsync(new BankSimulatorOptions { Latency = LatencyModel.Immediate });
        const int N = 3000;
        List<BankRequest> requests = Enumerable.Range(1, N).Select(i => i % 10 == 0 ? Requests.Debit(i, 0) : Requests.Debit(i, 100 + i)).ToList();
        List<BankRequest> queries = Enumerable.Range(1, N).Select(i => Requests.Query(i)).ToList();

        var (messages, status, _) = await ExchangeMessagesAsync(bank, [Batch(requests), Batch(queries)], SwitchReadsBatches);

        Assert.Equal(StatusCode.OK, status.Code);
        List<BankResponse> answers = Flatten(messages).ToList();
        Assert.Equal(Enumerable.Range(1, N).Concat(Enumerable.Range(1, N)).Select(i => (long)i), answers.Select(a => a.TransactionId));
        Assert.Equal(Enumerable.Range(1, N).Select(i => i % 10 == 0 ? BankReply.Failed : BankReply.Succeeded), answers.Take(N).Select(a => a.Reply));
        Assert.Equal(Enumerable.Range(1, N).Select(i => i % 10 == 0 ? BankReply.NotFound : BankReply.Succeeded), answers.Skip(N).Select(a => a.Reply));
        Assert.Equal(N - N / 10, bank.Ledger.Counts.Executed);
        Assert.Equal(N / 10, bank.Ledger.Counts.Invalid);
    }

    [Fact]
    public async Task With_no_latency_more_than_the_due_now_ring_holds_waits_in_the_priority_queue_and_is_answered_once()
    {
        // Three messages of the largest batch, all due on arrival: whatever the ring (one batch) cannot hold goes to the
        // priority queue; every request is executed and answered once.
        await using var bank = await BankUnderTest.StartAsync(new BankSimulatorOptions { Latency = LatencyModel.Immediate });
        const int PerMessage = ExchangeBatch.MaxElements, Messages = 3;
        List<BankRequest> batches = Enumerable.Range(0, Messages)
            .Select(m => Batch(Enumerable.Range(1 + m * PerMessage, PerMessage).Select(i => Requests.Debit(i, 100 + i)))).ToList();

        var (messages, status, _) = await ExchangeMessagesAsync(bank, batches, SwitchReadsBatches);

        Assert.Equal(StatusCode.OK, status.Code);
        Assert.Equal(Enumerable.Range(1, Messages * PerMessage).Select(i => (long)i), Flatten(messages).Select(a => a.TransactionId).Order());
        Assert.Equal(Messages * PerMessage, bank.Ledger.Counts.Executed);
    }

    [Fact]
    public async Task Batches_larger_than_the_room_left_are_taken_in_part_and_the_rest_after_the_writer_frees_room()
    {
        // A bound of 8 waiting answers and batches of 5 that wait up to 2 ms each: most batches find only part of the room
        // they need, go in partly, and the reader waits for the writer before the rest: every request still answered once.
        await using var bank = await BankUnderTest.StartAsync(new BankSimulatorOptions { MaxPendingPerStream = 8, Latency = LatencyModel.Parse("uniform:0-2"), Seed = 7 });
        const int Messages = 300, PerMessage = 5;
        List<BankRequest> messages = Enumerable.Range(0, Messages)
            .Select(m => Batch(Enumerable.Range(1 + m * PerMessage, PerMessage).Select(i => Requests.Debit(i, 100 + i)))).ToList();

        var (received, status, declared) = await ExchangeMessagesAsync(bank, messages, SwitchReadsBatches);

        Assert.Equal(StatusCode.OK, status.Code);
        Assert.Equal(ExchangeBatch.Format(8), declared);
        Assert.Equal(Enumerable.Range(1, Messages * PerMessage).Select(i => (long)i), Flatten(received).Select(a => a.TransactionId).Order());
        Assert.All(Flatten(received), a => Assert.Equal(BankReply.Succeeded, a.Reply));
        Assert.Equal(Messages * PerMessage, bank.Ledger.Counts.Executed);
    }

    [Fact]
    public async Task Single_messages_and_batches_mix_on_one_stream_and_a_switch_that_declares_nothing_gets_single_answers()
    {
        await using var bank = await BankUnderTest.StartAsync();
        BankRequest[] messages =
        [
            Requests.Debit(1),
            Batch([Requests.Debit(2), Requests.Credit(3), Requests.Debit(4)]),
            Requests.Credit(5),
            Batch([Requests.Query(1), Requests.Reverse(4)]),
        ];

        var (answers, status, declared) = await ExchangeMessagesAsync(bank, messages, headers: null);

        Assert.Equal(StatusCode.OK, status.Code);
        Assert.Equal(ExchangeBatch.Format(ExchangeBatch.MaxElements), declared); // The bank reads batches either way.
        Assert.All(answers, a => Assert.Empty(a.Batch)); // But answers one by one to a switch that did not declare it reads batches.
        Assert.Equal(7, answers.Count);
        Assert.All(answers, a => Assert.Equal(BankReply.Succeeded, a.Reply));
        Assert.Equal(5, bank.Ledger.Counts.Executed);
        Assert.True(bank.Ledger.TryGet(4, out BankLedgerEntry reversed) && reversed.Reversed);
        Assert.Equal(-10_000 + 10_000 - 10_000 + 10_000, bank.Ledger.NetFen()); // 1 and 2 debited, 3 and 5 credited, 4 reversed.
    }

    [Fact]
    public async Task A_bad_element_is_answered_failed_on_its_own_and_the_rest_of_its_batch_executes()
    {
        await using var bank = await BankUnderTest.StartAsync();

        var (messages, status, _) = await ExchangeMessagesAsync(bank,
            [Batch([Requests.Debit(1), Requests.Debit(2, amountFen: 0), Requests.Credit(3)])], SwitchReadsBatches);

        Assert.Equal(StatusCode.OK, status.Code);
        Dictionary<long, BankResponse> byId = Flatten(messages).ToDictionary(a => a.TransactionId);
        Assert.Equal((BankReply.Failed, BankReasons.InvalidRequest), (byId[2].Reply, byId[2].Reason));
        Assert.Equal(BankReply.Succeeded, byId[1].Reply);
        Assert.Equal(BankReply.Succeeded, byId[3].Reply);
        Assert.Equal(2, bank.Ledger.Counts.Executed);
        Assert.False(bank.Ledger.TryGet(2, out _));
    }

    public static TheoryData<string, BankRequest> Malformed()
    {
        BankRequest mixed = Batch([Requests.Debit(11), Requests.Debit(12)]);
        mixed.TransactionId = 13;
        BankRequest nested = Batch([Requests.Debit(11), Batch([Requests.Debit(12)])]);
        // Ten debits, the seventh with no operation: nothing to answer it with, so none of the ten is executed.
        BankRequest seventhWrong = Batch(Enumerable.Range(11, 10).Select(i => Requests.Debit(i)));
        seventhWrong.Batch[6].Operation = BankOperation.Unspecified;
        return new TheoryData<string, BankRequest>
        {
            { "BATCH_TOO_LARGE: a batch of 17 requests, over the 16", Batch(Enumerable.Range(11, 17).Select(i => Requests.Debit(i))) },
            { "BATCH_MIXED: a batch of 2 requests with fields of a single one beside it", mixed },
            { "BATCH_NESTED: element 1 of a batch of 2 requests is itself a batch", nested },
            { "BATCH_EMPTY: the message holds neither", new BankRequest() },
            { "BATCH_ELEMENT_INVALID: element 6 of a batch of 10 requests (counting from 0): operation must be DEBIT, CREDIT, QUERY or REVERSE, got 0; none of it was taken", seventhWrong },
        };
    }

    [Theory]
    [MemberData(nameof(Malformed))]
    public async Task A_malformed_message_ends_the_stream_with_its_precise_error_and_none_of_it_executes(string expected, BankRequest malformed)
    {
        await using var bank = await BankUnderTest.StartAsync(new BankSimulatorOptions { BatchMax = 16 });

        // Before it, a single request and a batch, both answered; after it, one never read.
        var (messages, status, declared) = await ExchangeMessagesAsync(bank,
            [Requests.Debit(1), Batch([Requests.Debit(2), Requests.Debit(3)]), malformed, Requests.Debit(4)], SwitchReadsBatches);

        Assert.Equal(StatusCode.InvalidArgument, status.Code);
        Assert.StartsWith(expected, status.Detail);
        Assert.Equal("16", declared);
        Assert.Equal([1L, 2L, 3L], Flatten(messages).Select(a => a.TransactionId).Order());
        Assert.Equal(3, bank.Ledger.Counts.Executed);
        Assert.Equal(3, bank.Ledger.Count);
    }

    [Fact]
    public async Task A_bank_that_reads_single_messages_only_declares_nothing_and_answers_singly()
    {
        await using var bank = await BankUnderTest.StartAsync(new BankSimulatorOptions { BatchMax = 1 });

        var (answers, status, declared) = await ExchangeMessagesAsync(bank, [Requests.Debit(1), Requests.Debit(2)], SwitchReadsBatches);

        Assert.Equal(StatusCode.OK, status.Code);
        Assert.Null(declared);
        Assert.Equal(2, answers.Count);
        Assert.All(answers, a => Assert.Empty(a.Batch));
    }
}
