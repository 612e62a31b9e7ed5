using Switch.BankSim;
using Switch.Contracts.V1;
using Switch.Grpc;

namespace Switch.Host.Tests.BankSim;

public sealed class BankSimUnaryTests
{
    [Fact]
    public async Task Debit_then_query_returns_succeeded()
    {
        await using var bank = await BankUnderTest.StartAsync(new BankSimulatorOptions { Latency = LatencyModel.Parse("uniform:0-2") });

        var debit = await bank.CallAsync(BankEndpointMethods.Debit, Requests.Debit(1, 12_345));
        Assert.Equal((1L, BankOperation.Debit, BankReply.Succeeded), (debit.TransactionId, debit.Operation, debit.Reply));

        var query = await bank.CallAsync(BankEndpointMethods.Query, Requests.Query(1));
        Assert.Equal((BankOperation.Query, BankReply.Succeeded), (query.Operation, query.Reply));

        var entry = Assert.Single(bank.Ledger.Snapshot());
        Assert.Equal((1L, BankOperation.Debit, 12_345L, BankOutcome.Succeeded, false),
            (entry.TransactionId, entry.Operation, entry.AmountFen, entry.Outcome, entry.Reversed));
        Assert.Equal(-12_345L, bank.Ledger.NetFen());
        Assert.Equal(1, bank.Ledger.Counts.Executed);
    }

    [Fact]
    public async Task Query_of_an_unknown_transaction_is_not_found()
    {
        await using var bank = await BankUnderTest.StartAsync();
        var query = await bank.CallAsync(BankEndpointMethods.Query, Requests.Query(99));
        Assert.Equal(BankReply.NotFound, query.Reply);
    }

    [Fact]
    public async Task Repeated_debit_of_the_same_id_executes_once()
    {
        await using var bank = await BankUnderTest.StartAsync(new BankSimulatorOptions { FailureRate = 0.5, Seed = 3 });

        var first = await bank.CallAsync(BankEndpointMethods.Debit, Requests.Debit(7));
        for (int i = 0; i < 5; i++)
        {
            var again = await bank.CallAsync(BankEndpointMethods.Debit, Requests.Debit(7));
            Assert.Equal((first.Reply, first.Reason), (again.Reply, again.Reason)); // The recorded outcome, not a new roll.
        }
        Assert.Single(bank.Ledger.Snapshot());
        var counts = bank.Ledger.Counts;
        Assert.Equal(1, counts.Executed + counts.Failed);

        // Same id, different amount: refused, the record untouched.
        var reused = await bank.CallAsync(BankEndpointMethods.Debit, Requests.Debit(7, amountFen: 1));
        Assert.Equal((BankReply.Failed, BankReasons.TransactionIdReused), (reused.Reply, reused.Reason));
        Assert.True(bank.Ledger.TryGet(7, out var entry));
        Assert.Equal(10_000L, entry.AmountFen);
    }

    [Fact]
    public async Task Failure_rate_one_declines_everything_with_a_reason_and_executes_nothing()
    {
        await using var bank = await BankUnderTest.StartAsync(new BankSimulatorOptions { FailureRate = 1.0 });
        string[] reasons = [BankReasons.InsufficientFunds, BankReasons.AccountClosed, BankReasons.LimitExceeded];

        for (long id = 1; id <= 20; id++)
        {
            var method = id % 2 == 0 ? BankEndpointMethods.Debit : BankEndpointMethods.Credit;
            var request = id % 2 == 0 ? Requests.Debit(id) : Requests.Credit(id);
            var response = await bank.CallAsync(method, request);
            Assert.Equal(BankReply.Failed, response.Reply);
            Assert.Contains(response.Reason, reasons);

            var query = await bank.CallAsync(BankEndpointMethods.Query, Requests.Query(id));
            Assert.Equal((BankReply.Failed, response.Reason), (query.Reply, query.Reason));
        }
        Assert.Equal(0, bank.Ledger.Counts.Executed);
        Assert.Equal(20, bank.Ledger.Counts.Failed);
        Assert.All(bank.Ledger.Snapshot(), e => Assert.Equal(BankOutcome.Failed, e.Outcome));
        Assert.Equal(0L, bank.Ledger.NetFen());
    }

    [Fact]
    public async Task No_answer_rate_one_times_out_at_the_switch_but_executes()
    {
        await using var bank = await BankUnderTest.StartAsync(new BankSimulatorOptions { NoAnswerRate = 1.0 });

        var e = await Assert.ThrowsAsync<RpcException>(() =>
            bank.CallAsync(BankEndpointMethods.Debit, Requests.Debit(5), timeout: TimeSpan.FromMilliseconds(300)));
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);

        Assert.True(bank.Ledger.TryGet(5, out var entry));
        Assert.Equal(BankOutcome.Succeeded, entry.Outcome);
        Assert.Equal(1, bank.Ledger.Counts.Unanswered);

        // Queries are always answered: this is how the switch resolves the unknown outcome.
        var query = await bank.CallAsync(BankEndpointMethods.Query, Requests.Query(5));
        Assert.Equal(BankReply.Succeeded, query.Reply);
    }

    [Fact]
    public async Task System_error_rate_one_fails_new_debits_and_credits_on_both_paths_without_executing_them()
    {
        await using var bank = await BankUnderTest.StartAsync(new BankSimulatorOptions { SystemErrorRate = 1.0 });

        var debit = await bank.CallAsync(BankEndpointMethods.Debit, Requests.Debit(21));
        Assert.Equal((BankReply.Failed, BankReasons.SystemError), (debit.Reply, debit.Reason));
        var answers = await bank.ExchangeAsync([Requests.Credit(22), Requests.Debit(23), Requests.Query(21)]);
        Assert.Equal([(22L, BankReply.Failed, BankReasons.SystemError), (23L, BankReply.Failed, BankReasons.SystemError)],
            answers.Where(a => a.Operation != BankOperation.Query).OrderBy(a => a.TransactionId).Select(a => (a.TransactionId, a.Reply, a.Reason)));
        // Nothing was executed or recorded, and a query says so: the failure was the endpoint's, not the customer's.
        Assert.Equal(BankReply.NotFound, Assert.Single(answers, a => a.Operation == BankOperation.Query).Reply);
        Assert.Equal((0, 3L, 0L, 0L), (bank.Ledger.Count, bank.Ledger.Counts.SystemErrors, bank.Ledger.Counts.Executed, bank.Ledger.Counts.Failed));
    }

    [Fact]
    public async Task The_behaviour_changes_while_serving_from_the_next_request_and_only_latency_and_rates_may_change()
    {
        await using var bank = await BankUnderTest.StartAsync(new BankSimulatorOptions { Seed = 4 });
        Assert.Equal(BankReply.Succeeded, (await bank.CallAsync(BankEndpointMethods.Debit, Requests.Debit(41))).Reply);

        bank.Server.Reconfigure(o => o with { SystemErrorRate = 1.0 });
        var failing = await bank.CallAsync(BankEndpointMethods.Debit, Requests.Debit(42));
        Assert.Equal((BankReply.Failed, BankReasons.SystemError), (failing.Reply, failing.Reason));

        bank.Server.Reconfigure(o => o with { SystemErrorRate = 0, Latency = new LatencyModel.Fixed(1_000) });
        var late = await Assert.ThrowsAsync<RpcException>(() =>
            bank.CallAsync(BankEndpointMethods.Debit, Requests.Debit(43), timeout: TimeSpan.FromMilliseconds(100)));
        Assert.Equal(StatusCode.DeadlineExceeded, late.StatusCode);

        bank.Server.Reconfigure(o => o with { Latency = LatencyModel.Immediate });
        Assert.Equal(BankReply.Succeeded, (await bank.CallAsync(BankEndpointMethods.Debit, Requests.Debit(44))).Reply);
        Assert.Equal((0.0, LatencyModel.Immediate), (bank.Server.Options.SystemErrorRate, bank.Server.Options.Latency));

        var port = Assert.Throws<BankOptionException>(() => bank.Server.Reconfigure(o => o with { Port = o.Port + 1 }));
        Assert.Equal("Port", port.ParamName);
        var seed = Assert.Throws<BankOptionException>(() => bank.Server.Reconfigure(o => o with { Seed = 99 }));
        Assert.Equal("Seed", seed.ParamName);
        Assert.Throws<BankOptionException>(() => bank.Server.Reconfigure(o => o with { FailureRate = 2 }));
        Assert.Equal(0, bank.Server.Options.FailureRate); // a refused change changes nothing

        await Requests.Eventually(() => bank.Ledger.Counts.RefusedLate == 1, "the slow debit refused as late");
        Assert.Equal([41L, 44L], bank.Ledger.Snapshot().Select(e => e.TransactionId));
    }

    [Fact]
    public async Task Endpoints_on_one_ledger_answer_for_each_other_and_a_restarted_one_keeps_its_records()
    {
        await using var dc1 = await BankUnderTest.StartAsync();
        // The second data centre, failing every new transaction, on the same books.
        await using var dc2 = await BankUnderTest.StartAsync(new BankSimulatorOptions { SystemErrorRate = 1.0 }, dc1.Ledger);
        Assert.Equal(BankReply.Succeeded, (await dc1.CallAsync(BankEndpointMethods.Debit, Requests.Debit(31, 700))).Reply);

        // DC2 knows what DC1 executed, and a repeat there is answered as recorded rather than failed.
        Assert.Equal(BankReply.Succeeded, (await dc2.CallAsync(BankEndpointMethods.Query, Requests.Query(31))).Reply);
        Assert.Equal(BankReply.Succeeded, (await dc2.CallAsync(BankEndpointMethods.Debit, Requests.Debit(31, 700))).Reply);
        Assert.Equal((1, 1L, 0L), (dc1.Ledger.Count, dc1.Ledger.Counts.Executed, dc1.Ledger.Counts.SystemErrors));

        // DC1 stops and starts again on its port with the bank's books: the record is still there, executed once.
        int port = dc1.Server.Address.Port;
        await dc1.Server.DisposeAsync();
        await using var again = await BankSimulatorServer.StartAsync(new BankSimulatorOptions { Port = port }, ledger: dc1.Ledger).WaitAsync(BankUnderTest.Bound);
        using var channel = Switch.Grpc.Client.GrpcChannel.ForAddress(again.Address);
        var repeat = await channel.UnaryAsync(BankEndpointMethods.Debit, Requests.Debit(31, 700)).WaitAsync(BankUnderTest.Bound);
        Assert.Equal(BankReply.Succeeded, repeat.Reply);
        Assert.Equal((1L, -700L), (again.Ledger.Counts.Executed, again.Ledger.NetFen()));
    }

    [Fact]
    public async Task Unary_request_whose_deadline_passes_during_the_latency_is_not_executed()
    {
        await using var bank = await BankUnderTest.StartAsync(new BankSimulatorOptions { Latency = new LatencyModel.Fixed(1_000) });

        var e = await Assert.ThrowsAsync<RpcException>(() =>
            bank.CallAsync(BankEndpointMethods.Debit, Requests.Debit(8), timeout: TimeSpan.FromMilliseconds(100)));
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);

        await Requests.Eventually(() => bank.Ledger.Counts.RefusedLate == 1, "the late debit counted as refused");
        Assert.False(bank.Ledger.TryGet(8, out _));
        Assert.Equal(0, bank.Ledger.Counts.Executed);
    }

    [Fact]
    public async Task Reverse_before_the_debit_bars_it()
    {
        await using var bank = await BankUnderTest.StartAsync();

        var reverse = await bank.CallAsync(BankEndpointMethods.Reverse, Requests.Reverse(11));
        Assert.Equal((BankOperation.Reverse, BankReply.Succeeded), (reverse.Operation, reverse.Reply));

        var debit = await bank.CallAsync(BankEndpointMethods.Debit, Requests.Debit(11));
        Assert.Equal((BankReply.Failed, BankReasons.Reversed), (debit.Reply, debit.Reason));

        var query = await bank.CallAsync(BankEndpointMethods.Query, Requests.Query(11));
        Assert.Equal((BankReply.Failed, BankReasons.Reversed), (query.Reply, query.Reason));

        Assert.True(bank.Ledger.TryGet(11, out var entry));
        Assert.Equal((BankOutcome.Barred, true), (entry.Outcome, entry.Reversed));
        Assert.Equal(0, bank.Ledger.Counts.Executed);
        Assert.Equal(0L, bank.Ledger.NetFen());
    }

    [Fact]
    public async Task Reverse_after_the_debit_undoes_it()
    {
        await using var bank = await BankUnderTest.StartAsync();

        Assert.Equal(BankReply.Succeeded, (await bank.CallAsync(BankEndpointMethods.Debit, Requests.Debit(12, 500))).Reply);
        Assert.Equal(-500L, bank.Ledger.NetFen());

        for (int i = 0; i < 2; i++) // Idempotent.
            Assert.Equal(BankReply.Succeeded, (await bank.CallAsync(BankEndpointMethods.Reverse, Requests.Reverse(12))).Reply);

        var query = await bank.CallAsync(BankEndpointMethods.Query, Requests.Query(12));
        Assert.Equal((BankReply.Failed, BankReasons.Reversed), (query.Reply, query.Reason));
        var repeat = await bank.CallAsync(BankEndpointMethods.Debit, Requests.Debit(12, 500));
        Assert.Equal((BankReply.Failed, BankReasons.Reversed), (repeat.Reply, repeat.Reason));

        Assert.True(bank.Ledger.TryGet(12, out var entry));
        Assert.Equal((BankOutcome.Succeeded, true), (entry.Outcome, entry.Reversed));
        Assert.Equal(0L, bank.Ledger.NetFen());
        Assert.Equal(1, bank.Ledger.Counts.Executed);
    }

    [Fact]
    public async Task Invalid_unary_requests_are_rejected_with_invalid_argument()
    {
        await using var bank = await BankUnderTest.StartAsync();
        (BankRequest Request, string Field)[] cases =
        [
            (Requests.Debit(1, amountFen: 0), "amount_fen"),
            (Requests.Debit(2, amountFen: -5), "amount_fen"),
            (Requests.Debit(3, account: ""), "account"),
            (Requests.Debit(0), "transaction_id"),
            (Requests.Credit(4), "operation"), // A credit sent to the Debit method.
        ];
        foreach (var (request, field) in cases)
        {
            var e = await Assert.ThrowsAsync<RpcException>(() => bank.CallAsync(BankEndpointMethods.Debit, request));
            Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
            Assert.Contains(field, e.Status.Detail);
        }
        // The method names the operation: an unset operation field is fine.
        var unset = Requests.Debit(5);
        unset.Operation = BankOperation.Unspecified;
        Assert.Equal(BankReply.Succeeded, (await bank.CallAsync(BankEndpointMethods.Debit, unset)).Reply);

        Assert.Equal(cases.Length, bank.Ledger.Counts.Invalid);
        Assert.Equal(1, bank.Ledger.Count);
    }

    [Fact]
    public async Task Several_endpoints_start_on_their_own_ports_with_their_own_ledgers()
    {
        var servers = await BankSimulatorServer.StartManyAsync(3, new BankSimulatorOptions { Seed = 10 }).WaitAsync(BankUnderTest.Bound);
        try
        {
            Assert.Equal(3, servers.Select(s => s.Address.Port).Distinct().Count());
            Assert.Equal([10, 11, 12], servers.Select(s => s.Options.Seed));
            using var channel = Switch.Grpc.Client.GrpcChannel.ForAddress(servers[1].Address);
            await channel.UnaryAsync(BankEndpointMethods.Credit, Requests.Credit(1)).WaitAsync(BankUnderTest.Bound);
            Assert.Equal([0, 1, 0], servers.Select(s => s.Ledger.Count));
        }
        finally
        {
            foreach (var server in servers) await server.DisposeAsync();
        }
    }
}
