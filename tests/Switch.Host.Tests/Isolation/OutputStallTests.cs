using Switch.BankSim;
using Switch.Contracts.V1;
using Switch.Engine.Business;
using Switch.Grpc.Client;
using Switch.Host.Banks;
using Switch.Host.Configuration;
using Switch.Host.Tests.EndToEnd;
using Switch.Host.Tests.Faults;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;

namespace Switch.Host.Tests.Isolation;

/// <summary>
/// Issue 11, part 2, over real sockets: a stall between the logic and one endpoint (the SWITCH_TEST_LINK_STALL hook)
/// longer than the deadline plus the first query back-off. The query reaches the bank before the request; the bank has
/// no record, and the request, arriving past the deadline the logic decided, is refused: no transaction ends FAILED
/// that the bank executed, none SUCCEEDED that it did not.
/// </summary>
public sealed class OutputStallTests
{
    private const int BankTimeoutMs = 1_000;
    private const int StallMs = 2_500;

    [Fact]
    public async Task A_request_held_past_its_deadline_is_refused_by_the_bank_and_the_switch_says_failed()
    {
        var books = new BankLedger();
        var options = new BankSimulatorOptions { BankCodes = [102], Latency = new LatencyModel.Uniform(1, 5) };
        await using BankSimulatorServer dc1 = await BankSimulatorServer.StartAsync(options with { Seed = 1 }, ledger: books);
        await using BankSimulatorServer dc2 = await BankSimulatorServer.StartAsync(options with { Seed = 2 }, ledger: books);
        HostConfig config = TestConfig("", rules: r => r with
        {
            BankTimeoutMs = BankTimeoutMs, QueryBackoffInitialMs = 200, QueryBackoffMaxMs = 400, BatchCloseTimes = [],
        });
        config = WithBankAt(config, 102, dc1.Address, dc2.Address) with { LinkStall = LinkStall.Parse($"ICBC-DC1:{StallMs}") };
        await using RunningSwitch sw = await RunningSwitch.StartAsync(config);
        Bank icbc = sw.Host.Engine.Logic.BankByCode(102);
        await FaultyBankRig.WaitUntilAsync(() => icbc.Endpoints.All(e => e.Reachable), "ICBC reachable");

        TransferResult[] answers = await Task.WhenAll(Enumerable.Range(0, 24).Select(i =>
            sw.PayAsync(Payment($"S-{i}", 100 + i, account: $"62220000{i:D8}"))));
        var final = new Dictionary<long, TransferResult>();
        foreach (TransferResult answer in answers)
        {
            TransferResult result = answer;
            await FaultyBankRig.WaitUntilAsync(async () =>
            {
                result = await sw.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = answer.OrderNo }, As(AlipayKey));
                return result.Status is TransactionStatus.Succeeded or TransactionStatus.Failed;
            }, $"{answer.OrderNo} final");
            final[answer.TransactionId] = result;
        }
        List<long> stalled = final.Keys.Where(id => sw.Host.Engine.Logic.TryGetOrder("ALIPAY", final[id].OrderNo, out var tx) && tx.EndpointIndex == 0).ToList();
        Assert.True(stalled.Count > 0, "no payment went to the stalled endpoint");
        // Every held request reaches DC1 in the end (refused there as late, or executed: the books say which).
        await FaultyBankRig.WaitUntilAsync(() => books.Counts.RefusedLate + stalled.Count(id => books.TryGet(id, out _)) >= stalled.Count,
            $"{stalled.Count} held requests delivered");

        foreach ((long id, TransferResult result) in final)
        {
            bool executed = books.TryGet(id, out BankLedgerEntry entry) && entry is { Outcome: BankOutcome.Succeeded, Reversed: false };
            Assert.True(executed == (result.Status == TransactionStatus.Succeeded),
                $"{result.OrderNo}: the switch says {result.Status}, the bank executed={executed}");
        }
        Assert.True(books.Counts.RefusedLate >= stalled.Count); // the held ones, past the deadline the logic decided
        Assert.Contains(final.Values, r => r.Status == TransactionStatus.Failed && r.BankReason == "BANK_NOT_RECEIVED");
        Assert.Contains(final.Values, r => r.Status == TransactionStatus.Succeeded);
        Assert.Equal(0, sw.Host.Engine.Logic.PositionSumFen());
    }

    [Theory]
    [InlineData("ICBC-DC1")]
    [InlineData("ICBC-DC1:0")]
    [InlineData("ICBC-DC1:-5")]
    [InlineData(":100")]
    [InlineData("ICBC-DC1:600001")]
    [InlineData("ICBC-DC1:1e3")]
    public void A_malformed_stall_is_refused(string text)
    {
        var e = Assert.Throws<ArgumentException>(() => LinkStall.Parse(text));
        Assert.StartsWith("SWITCH_TEST_LINK_STALL: expected ENDPOINT:MS", e.Message);
    }
}
