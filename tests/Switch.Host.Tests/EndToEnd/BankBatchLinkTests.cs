using System.Globalization;
using System.Runtime.CompilerServices;
using Switch.BankSim;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Grpc.Server;
using Switch.Host.Banks;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;

namespace Switch.Host.Tests.EndToEnd;

/// <summary>The switch's bank links and the Exchange batch form (bank.proto), over loopback against real simulators:
/// batches to an endpoint that declares them, single messages to one that does not, and the books agreeing.</summary>
public sealed class BankBatchLinkTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    /// <summary>Sends the payments on one Transact stream as fast as it takes them and returns every answer.</summary>
    private static async Task<List<TransferResult>> TransactAsync(RunningSwitch sw, IReadOnlyList<TransferRequest> requests)
    {
        using var cts = new CancellationTokenSource(Bound);
        CallOptions options = As(AlipayKey, (int)Bound.TotalMilliseconds) with { CancellationToken = cts.Token };
        using var call = sw.Channel.DuplexStreaming(InstitutionMethods.Transact, options);
        var answers = new List<TransferResult>();
        Task reading = Task.Run(async () =>
        {
            await foreach (TransferResult r in call.ResponseStream.ReadAllAsync(cts.Token)) answers.Add(r);
        });
        foreach (TransferRequest request in requests) await call.RequestStream.WriteAsync(request);
        await call.RequestStream.CompleteAsync();
        await reading.WaitAsync(Bound);
        return answers;
    }

    private static List<TransferRequest> Payments(string tag, int count, string[] banks) => Enumerable.Range(0, count).Select(i => new TransferRequest
    {
        Kind = RequestKind.AgreementPayment, OrderNo = $"{tag}-{i}", AmountFen = 100 + i, Currency = "CNY", Bank = banks[i % banks.Length],
        Account = "62220202" + i.ToString("D8", CultureInfo.InvariantCulture),
    }).ToList();

    /// <summary>Each bank's books hold exactly the transactions the switch says succeeded, with their amounts.</summary>
    private static void AssertBooksAgree(IEnumerable<BankLedger> books, IReadOnlyList<TransferResult> answers)
    {
        Dictionary<long, BankLedgerEntry> executed = books.Distinct().SelectMany(l => l.Snapshot()).ToDictionary(e => e.TransactionId);
        Assert.Equal(answers.Count, executed.Count);
        Assert.All(answers, a => Assert.Equal(a.AmountFen, executed[a.TransactionId].AmountFen));
    }

    [Fact]
    public async Task Bank_links_send_what_is_queued_in_batches_to_simulators_that_declare_them_and_the_books_agree()
    {
        // The test hook holds every debit routed to ICBC-DC1 for 300 ms between the engine's output and the link, so a
        // burst reaches the link's queue at once, as it does when the output thread hands over a batch.
        string data = Path.Combine(Path.GetTempPath(), "switch-host-test-" + Guid.NewGuid().ToString("N"));
        await using RunningSwitch sw = await RunningSwitch.StartAsync(TestConfig(data) with { LinkStall = new LinkStall("ICBC-DC1", 300) }, data);
        EndpointLink dc1 = sw.Host.Connector.Links.Single(l => l.Name == "ICBC-DC1");
        var probes = new List<TransferResult>();
        for (int i = 0; dc1.RequestBatchMax == 1; i++)
        {
            // Until DC1 has answered once: its first answer brings its declaration.
            Assert.True(i < 200, "ICBC-DC1 never declared its batch");
            probes.Add(await sw.PayAsync(Payment($"HANDSHAKE-{i}", 100, "102", "6222020299991" + i.ToString("D3", CultureInfo.InvariantCulture))));
        }
        Assert.Equal(ExchangeBatch.MaxElements, dc1.RequestBatchMax);
        long sentBefore = dc1.Sent, messagesBefore = dc1.MessagesSent;
        List<TransferRequest> requests = Payments("BATCH", 2_000, ["102", "103", "105", "308"]);

        List<TransferResult> answers = await TransactAsync(sw, requests);

        Assert.Equal(requests.Count, answers.Count);
        Assert.All(answers, a => Assert.Equal(TransactionStatus.Succeeded, a.Status));
        AssertBooksAgree(sw.Host.Simulators.Select(s => s.Ledger), [.. probes, .. answers]);
        Assert.Equal(0, sw.Host.Engine.Logic.PositionSumFen());
        long sent = dc1.Sent - sentBefore, messages = dc1.MessagesSent - messagesBefore;
        Assert.True(sent > 100 && messages < sent / 2, $"ICBC-DC1: {sent} requests in {messages} messages");
        Assert.All(sw.Host.Connector.Links.Where(l => l.Answered > 0), l => Assert.Equal(ExchangeBatch.MaxElements, l.RequestBatchMax));
    }

    [Fact]
    public async Task A_bank_endpoint_that_reads_single_messages_only_gets_single_messages_and_its_books_agree()
    {
        string data = Path.Combine(Path.GetTempPath(), "switch-host-test-" + Guid.NewGuid().ToString("N"));
        var books = new BankLedger();
        await using BankSimulatorServer dc1 = await BankSimulatorServer.StartAsync(new BankSimulatorOptions { BatchMax = 1 }, ledger: books);
        await using BankSimulatorServer dc2 = await BankSimulatorServer.StartAsync(new BankSimulatorOptions { BatchMax = 1 }, ledger: books);
        await using RunningSwitch sw = await RunningSwitch.StartAsync(WithBankAt(TestConfig(data), 102, dc1.Address, dc2.Address), data);
        TransferResult probe = await WaitUntilUpAsync(sw, "102");
        List<TransferRequest> requests = Payments("SINGLE", 1_000, ["102"]);

        List<TransferResult> answers = await TransactAsync(sw, requests);

        Assert.Equal(requests.Count, answers.Count);
        Assert.All(answers, a => Assert.Equal(TransactionStatus.Succeeded, a.Status));
        AssertBooksAgree([books], [probe, .. answers]);
        List<EndpointLink> bank102 = sw.Host.Connector.Links.Where(l => l.BankCode == 102).ToList();
        Assert.Equal(requests.Count + 1, bank102.Sum(l => l.Answered));
        Assert.All(bank102, l => Assert.Equal((1, l.Sent), (l.RequestBatchMax, l.MessagesSent)));
    }

    [Fact]
    public async Task A_malformed_answer_batch_from_a_bank_is_refused_whole_and_the_link_reconnects()
    {
        // A bank endpoint that answers each request message with a batch carrying a field of a single answer beside
        // it (BATCH_MIXED), claiming success: the switch must take none of it.
        var exchanges = new StrongBox<int>();
        await using GrpcServer bank = await StartOwnBankAsync(exchanges, async (requests, responses) =>
        {
            await foreach (BankRequest request in requests.ReadAllAsync())
            {
                var malformed = new BankResponse { Reason = "beside the batch" };
                foreach (BankRequest r in request.Batch.Count > 0 ? request.Batch : [request])
                {
                    malformed.Batch.Add(new BankResponse { TransactionId = r.TransactionId, Operation = r.Operation, Reply = BankReply.Succeeded });
                }
                await responses.WriteAndFlushAsync(malformed);
            }
        });
        await using RunningSwitch sw = await StartWithBankAsync(bank);

        TransferResult? paid = null;
        DateTime bound = DateTime.UtcNow + Bound;
        for (int i = 0; paid is null; i++)
        {
            try
            {
                paid = await sw.PayAsync(Payment($"MALFORMED-{i}", 100, "102", "6222020299990001"));
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && DateTime.UtcNow < bound)
            {
                await Task.Delay(50); // the connector has not reached the endpoint yet
            }
        }

        // Never succeeded on the malformed message's word: unknown at the deadline, then failed once the bank has no record.
        Assert.NotEqual(TransactionStatus.Succeeded, paid.Status);
        EndpointLink link = sw.Host.Connector.Links.Single(l => l.BankCode == 102);
        Assert.Equal(0, link.Answered);
        while (Volatile.Read(ref exchanges.Value) < 2)
        {
            Assert.True(DateTime.UtcNow < bound, "the link did not reopen its Exchange stream after the malformed answer");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task An_answer_batch_with_a_wrong_field_in_its_seventh_answer_is_refused_whole_and_none_of_it_is_applied()
    {
        // A bank endpoint that collects ten requests, then answers all ten in one batch claiming success, the seventh
        // with no reply: the switch must apply none of the ten (ExchangeBatch.AnswerProblem names the element and field).
        const int Count = 10;
        var exchanges = new StrongBox<int>();
        BankResponse? sent = null;
        await using GrpcServer bank = await StartOwnBankAsync(exchanges, async (requests, responses) =>
        {
            var held = new List<BankRequest>();
            await foreach (BankRequest request in requests.ReadAllAsync())
            {
                held.AddRange(request.Batch.Count > 0 ? request.Batch : [request]);
                if (held.Count < Count) continue;
                var answers = new BankResponse();
                foreach (BankRequest r in held.Take(Count))
                {
                    answers.Batch.Add(new BankResponse { TransactionId = r.TransactionId, Operation = r.Operation, Reply = BankReply.Succeeded });
                }
                answers.Batch[6].Reply = BankReply.Unspecified;
                sent = answers;
                held.RemoveRange(0, Count);
                await responses.WriteAndFlushAsync(answers);
            }
        });
        await using RunningSwitch sw = await StartWithBankAsync(bank);
        DateTime bound = DateTime.UtcNow + Bound;
        while (!sw.Host.Connector.Links.Single(l => l.BankCode == 102).IsUp || Volatile.Read(ref exchanges.Value) == 0)
        {
            Assert.True(DateTime.UtcNow < bound, "the link did not open its Exchange stream");
            await Task.Delay(50);
        }

        TransferResult[] paid = await Task.WhenAll(Enumerable.Range(0, Count).Select(i =>
            sw.PayAsync(Payment($"SEVENTH-{i}", 100 + i, "102", "62220202999900" + i.ToString("D2", CultureInfo.InvariantCulture)))));

        // None succeeded on the refused batch's word (the other nine claimed success): each was resolved by query instead.
        Assert.All(paid, p => Assert.NotEqual(TransactionStatus.Succeeded, p.Status));
        Assert.Equal(0, sw.Host.Connector.Links.Single(l => l.BankCode == 102).Answered);
        Assert.NotNull(sent);
        Assert.Equal("BATCH_ELEMENT_INVALID: element 6 of a batch of 10 answers (counting from 0): reply must be SUCCEEDED, FAILED, " +
            "NOT_FOUND or PENDING, got 0; none of it was taken", ExchangeBatch.Problem(sent, ExchangeBatch.MaxElements)?.Status.Detail);
    }

    /// <summary>A bank endpoint of the test's own: probes answered NOT_FOUND; each Exchange call declares batches of 16,
    /// is counted in <paramref name="exchanges"/> and answered by <paramref name="exchange"/>.</summary>
    private static Task<GrpcServer> StartOwnBankAsync(StrongBox<int> exchanges,
        Func<ServerRequestStream<BankRequest>, ServerResponseStream<BankResponse>, Task> exchange)
    {
        var router = new GrpcRouter()
            .MapUnary(BankEndpointMethods.Query, (r, _) => ValueTask.FromResult(new BankResponse
            {
                TransactionId = r.TransactionId, Operation = BankOperation.Query, Reply = BankReply.NotFound,
            }))
            .MapDuplexStreaming(BankEndpointMethods.Exchange, async (requests, responses, context) =>
            {
                Interlocked.Increment(ref exchanges.Value);
                context.ResponseHeaders.Add(ExchangeBatch.BankBatchMaxHeader, "16");
                await exchange(requests, responses);
            });
        return GrpcServer.StartAsync(router, new GrpcEndpointOptions { Address = System.Net.IPAddress.Loopback, Port = 0 });
    }

    /// <summary>A switch whose bank 102 is <paramref name="bank"/>, with a 1 s bank timeout (then it asks by query).</summary>
    private static Task<RunningSwitch> StartWithBankAsync(GrpcServer bank)
    {
        string data = Path.Combine(Path.GetTempPath(), "switch-host-test-" + Guid.NewGuid().ToString("N"));
        return RunningSwitch.StartAsync(WithBankAt(TestConfig(data, rules: r => r with { BankTimeoutMs = 1_000 }), 102, bank.Address), data);
    }

    /// <summary>Payments to the bank until one succeeds (the connector reaches endpoints after start); that one.</summary>
    private static async Task<TransferResult> WaitUntilUpAsync(RunningSwitch sw, string bank)
    {
        DateTime bound = DateTime.UtcNow + Bound;
        for (int i = 0; ; i++)
        {
            try
            {
                TransferResult r = await sw.PayAsync(Payment($"UP-{bank}-{i}", 100, bank, "6222020299990000"));
                if (r.Status == TransactionStatus.Succeeded) return r;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable)
            {
            }
            Assert.True(DateTime.UtcNow < bound, $"bank {bank} takes no traffic");
            await Task.Delay(50);
        }
    }
}
