using System.Globalization;
using Switch.BankSim;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
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
    public async Task Bank_links_send_batches_to_simulators_that_declare_them_and_the_books_agree()
    {
        await using RunningSwitch sw = await RunningSwitch.StartAsync();
        List<TransferRequest> requests = Payments("BATCH", 3_000, ["102", "103", "105", "308"]);

        List<TransferResult> answers = await TransactAsync(sw, requests);

        Assert.Equal(requests.Count, answers.Count);
        Assert.All(answers, a => Assert.Equal(TransactionStatus.Succeeded, a.Status));
        AssertBooksAgree(sw.Host.Simulators.Select(s => s.Ledger), answers);
        Assert.Equal(0, sw.Host.Engine.Logic.PositionSumFen());
        List<EndpointLink> used = sw.Host.Connector.Links.Where(l => l.Answered > 0).ToList();
        Assert.NotEmpty(used);
        // Each endpoint declared it reads batches; what queued while a message was written went out in one.
        Assert.All(used, l => Assert.Equal(ExchangeBatch.MaxElements, l.RequestBatchMax));
        long sent = used.Sum(l => l.Sent), messages = used.Sum(l => l.MessagesSent);
        Assert.True(messages < sent, $"{sent} requests in {messages} messages: none batched");
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
