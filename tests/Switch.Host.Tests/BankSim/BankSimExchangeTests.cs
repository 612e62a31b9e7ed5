using Switch.BankSim;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;

namespace Switch.Host.Tests.BankSim;

public sealed class BankSimExchangeTests
{
    [Fact]
    public async Task Thousands_of_requests_on_one_stream_are_all_answered_exactly_once()
    {
        await using var bank = await BankUnderTest.StartAsync(new BankSimulatorOptions { Latency = LatencyModel.Parse("uniform:0-3"), Seed = 42 });
        const int Transactions = 4000;
        var requests = new List<BankRequest>();
        for (long id = 1; id <= Transactions; id++)
            requests.Add(id % 3 == 0 ? Requests.Credit(id, 100 + id) : Requests.Debit(id, 100 + id));

        var answers = await bank.ExchangeAsync(requests);

        Assert.Equal(Transactions, answers.Count);
        var byId = answers.GroupBy(a => a.TransactionId).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(Transactions, byId.Count);
        Assert.All(byId.Values, count => Assert.Equal(1, count));
        Assert.All(answers, a => Assert.Equal(BankReply.Succeeded, a.Reply));
        Assert.All(answers, a => Assert.Equal(a.TransactionId % 3 == 0 ? BankOperation.Credit : BankOperation.Debit, a.Operation));

        Assert.Equal(Transactions, bank.Ledger.Counts.Executed);
        long expectedNet = requests.Sum(r => r.Operation == BankOperation.Credit ? r.AmountFen : -r.AmountFen);
        Assert.Equal(expectedNet, bank.Ledger.NetFen());
    }

    [Fact]
    public async Task Queries_and_reversals_on_the_stream_see_the_ledger()
    {
        await using var bank = await BankUnderTest.StartAsync();
        await bank.ExchangeAsync([Requests.Debit(1), Requests.Debit(2)]);

        var answers = await bank.ExchangeAsync([Requests.Query(1), Requests.Query(3), Requests.Reverse(2), Requests.Reverse(4)]);
        var byKey = answers.ToDictionary(a => (a.TransactionId, a.Operation));
        Assert.Equal(BankReply.Succeeded, byKey[(1, BankOperation.Query)].Reply);
        Assert.Equal(BankReply.NotFound, byKey[(3, BankOperation.Query)].Reply);
        Assert.Equal(BankReply.Succeeded, byKey[(2, BankOperation.Reverse)].Reply);
        Assert.Equal(BankReply.Succeeded, byKey[(4, BankOperation.Reverse)].Reply);

        var after = await bank.ExchangeAsync([Requests.Query(2), Requests.Debit(4)]);
        Assert.All(after, a => Assert.Equal((BankReply.Failed, BankReasons.Reversed), (a.Reply, a.Reason)));
        Assert.Equal(2, bank.Ledger.Counts.Executed);
    }

    [Fact]
    public async Task A_request_past_its_deadline_is_neither_executed_nor_answered()
    {
        await using var bank = await BankUnderTest.StartAsync(new BankSimulatorOptions { Latency = new LatencyModel.Fixed(300) });

        var expired = Requests.Debit(1);
        expired.DeadlineUnixUs = Requests.UnixMicrosFromNow(TimeSpan.FromSeconds(-1)); // Already passed on arrival.
        var expiresWhileQueued = Requests.Debit(2);
        expiresWhileQueued.DeadlineUnixUs = Requests.UnixMicrosFromNow(TimeSpan.FromMilliseconds(50)); // Passes during the 300 ms latency.
        var inTime = Requests.Debit(3);
        inTime.DeadlineUnixUs = Requests.UnixMicrosFromNow(TimeSpan.FromMinutes(5));
        var noDeadline = Requests.Debit(4); // 0: no per-message deadline.

        var answers = await bank.ExchangeAsync([expired, expiresWhileQueued, inTime, noDeadline]);

        Assert.Equal([3L, 4L], answers.Select(a => a.TransactionId).Order());
        Assert.False(bank.Ledger.TryGet(1, out _));
        Assert.False(bank.Ledger.TryGet(2, out _));
        Assert.Equal(2, bank.Ledger.Counts.RefusedLate);
        Assert.Equal(2, bank.Ledger.Counts.Executed);

        var query = await bank.CallAsync(BankEndpointMethods.Query, Requests.Query(1));
        Assert.Equal(BankReply.NotFound, query.Reply);
    }

    [Fact]
    public async Task Over_twice_the_capacity_answers_bank_busy_and_executes_nothing_of_it()
    {
        await using var bank = await BankUnderTest.StartAsync(new BankSimulatorOptions { CapacityTps = 100, MaxQueueingDelayMs = 20 });
        const int Transactions = 1000; // One burst, far over 2x of 100 per second.
        var requests = Enumerable.Range(1, Transactions).Select(i => Requests.Debit(i)).ToList();

        var answers = await bank.ExchangeAsync(requests);

        Assert.Equal(Transactions, answers.Select(a => a.TransactionId).Distinct().Count());
        var busy = answers.Where(a => a.Reply == BankReply.Failed).ToList();
        Assert.NotEmpty(busy);
        Assert.Contains(answers, a => a.Reply == BankReply.Succeeded);
        Assert.All(busy, a => Assert.Equal(BankReasons.BankBusy, a.Reason));
        Assert.All(busy, a => Assert.False(bank.Ledger.TryGet(a.TransactionId, out _), $"busy {a.TransactionId} was recorded"));
        var counts = bank.Ledger.Counts;
        Assert.Equal(busy.Count, counts.Busy);
        Assert.Equal(Transactions - busy.Count, counts.Executed);
        Assert.Equal(counts.Executed, bank.Ledger.Count);
    }

    [Fact]
    public async Task Invalid_requests_on_the_stream_fail_with_invalid_request()
    {
        await using var bank = await BankUnderTest.StartAsync();
        var unknownOperation = Requests.Debit(1);
        unknownOperation.Operation = BankOperation.Unspecified;
        var undefinedOperation = Requests.Debit(2);
        undefinedOperation.Operation = (BankOperation)42;

        var answers = await bank.ExchangeAsync(
            [unknownOperation, undefinedOperation, Requests.Debit(3, amountFen: 0), Requests.Credit(4, account: " "), Requests.Query(0), Requests.Debit(5)]);

        var failed = answers.Where(a => a.Reply == BankReply.Failed).ToList();
        Assert.Equal(5, failed.Count);
        Assert.All(failed, a => Assert.Equal(BankReasons.InvalidRequest, a.Reason));
        Assert.Equal(BankReply.Succeeded, Assert.Single(answers, a => a.TransactionId == 5).Reply);
        Assert.Equal(5, bank.Ledger.Counts.Invalid);
        Assert.Equal(1, bank.Ledger.Count);
    }

    [Fact]
    public async Task Silent_answers_are_not_sent_on_the_stream_but_the_stream_still_completes()
    {
        await using var bank = await BankUnderTest.StartAsync(new BankSimulatorOptions { NoAnswerRate = 1.0 });
        var answers = await bank.ExchangeAsync([Requests.Debit(1), Requests.Credit(2), Requests.Query(1)]);

        var only = Assert.Single(answers);
        Assert.Equal((1L, BankOperation.Query, BankReply.Succeeded), (only.TransactionId, only.Operation, only.Reply));
        Assert.Equal(2, bank.Ledger.Counts.Unanswered);
        Assert.Equal(2, bank.Ledger.Counts.Executed);
    }

    [Fact]
    public async Task A_small_pending_limit_applies_back_pressure_without_losing_answers()
    {
        await using var bank = await BankUnderTest.StartAsync(new BankSimulatorOptions { MaxPendingPerStream = 4, Latency = LatencyModel.Parse("uniform:0-1") });
        var requests = Enumerable.Range(1, 500).Select(i => Requests.Debit(i)).ToList();

        var answers = await bank.ExchangeAsync(requests, flushEvery: 100);

        Assert.Equal(500, answers.Select(a => a.TransactionId).Distinct().Count());
        Assert.Equal(500, bank.Ledger.Counts.Executed);
    }

    [Fact]
    public async Task Closing_the_server_ends_an_open_stream()
    {
        var bank = await BankUnderTest.StartAsync(new BankSimulatorOptions { Latency = new LatencyModel.Fixed(60_000) });
        using var cts = new CancellationTokenSource(BankUnderTest.Bound);
        using var call = bank.Channel.DuplexStreaming(BankEndpointMethods.Exchange, new CallOptions { CancellationToken = cts.Token });
        await call.RequestStream.WriteAndFlushAsync(Requests.Debit(1));
        await Task.Delay(100); // Lets the server admit it; disposing sooner is fine too: either way it must never execute.

        await bank.DisposeAsync().AsTask().WaitAsync(BankUnderTest.Bound);

        var e = await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.ReadAsync(cts.Token).AsTask().WaitAsync(BankUnderTest.Bound));
        Assert.NotEqual(StatusCode.OK, e.StatusCode);
        Assert.False(bank.Ledger.TryGet(1, out _));
    }
}
