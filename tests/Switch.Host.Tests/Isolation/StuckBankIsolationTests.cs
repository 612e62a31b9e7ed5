using Switch.BankSim;
using Switch.Contracts.V1;
using Switch.Engine.Business;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Configuration;
using Switch.Host.Tests.EndToEnd;
using Switch.Host.Tests.Faults;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;

namespace Switch.Host.Tests.Isolation;

/// <summary>
/// Issue 11, part 1, over real sockets: one debit to bank 308 stays unknown while 308's stand-alone simulators are
/// away; payments to a healthy bank go on through several turns of the transaction table, and the stuck debit becomes
/// final once 308 is back.
/// </summary>
public sealed class StuckBankIsolationTests
{
    private const int StuckBank = 308;

    [Theory]
    [InlineData(64)]
    [InlineData(4_096)]
    public async Task One_unresolved_transaction_holds_back_nothing_but_its_own_bank(int transactionCapacity)
    {
        var books = new BankLedger();
        // 308 executes what it gets and never answers, so its debit is unknown at the deadline.
        var silent = new BankSimulatorOptions { NoAnswerRate = 1.0, BankCodes = [StuckBank], MaxSilenceMs = 1_000 };
        BankSimulatorServer dc1 = await BankSimulatorServer.StartAsync(silent with { Seed = 1 }, ledger: books);
        BankSimulatorServer dc2 = await BankSimulatorServer.StartAsync(silent with { Seed = 2 }, ledger: books);
        try
        {
            HostConfig config = TestConfig("", rules: r => r with
            {
                TransactionCapacity = transactionCapacity,
                BankTimeoutMs = 1_000,
                // 308 answers queries even while silent on debits: the first query waits until 308 is away.
                QueryBackoffInitialMs = 5_000,
                QueryBackoffMaxMs = 5_000,
                ReverseAfterMs = 600_000, // the outage outlasts the test: queries, not a reversal, settle it
                MaxUnresolvedPerBank = 16,
                BatchCloseTimes = [],
            });
            await using RunningSwitch sw = await RunningSwitch.StartAsync(WithBankAt(config, StuckBank, dc1.Address, dc2.Address));
            Bank bank308 = sw.Host.Engine.Logic.BankByCode(StuckBank);
            await FaultyBankRig.WaitUntilAsync(() => bank308.Endpoints.All(e => e.Reachable), "308 reachable");

            TransferResult stuck = await sw.PayAsync(Payment("STUCK-308", 5_000, bank: "308", account: "6225880000000001"));
            Assert.Equal(TransactionStatus.Unknown, stuck.Status);
            Assert.Equal(1, books.Count); // 308 executed it, and said nothing

            // 308 at its bound: only its new requests are refused, naming the bank and the bound.
            TransferResult[] more = await Task.WhenAll(Enumerable.Range(0, 15).Select(i =>
                sw.PayAsync(Payment($"MORE-308-{i}", 100, bank: "308", account: $"62258800{i:D8}"))));
            Assert.All(more, r => Assert.Equal(TransactionStatus.Unknown, r.Status));
            RpcException refused = await Assert.ThrowsAsync<RpcException>(() => sw.PayAsync(Payment("OVER-308", 100, bank: "308", account: "6225889999999999")));
            Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
            Assert.StartsWith("BANK_UNRESOLVED_LIMIT: bank ", refused.Status.Detail);
            Assert.EndsWith("(bank 308 limit 16)", refused.Status.Detail);
            Assert.Equal(TransactionStatus.Succeeded, (await sw.PayAsync(Payment("OTHER", 100, bank: "103", account: "6228480000000001"))).Status);

            await dc1.DisposeAsync(); // 308 goes away: its queries go unanswered
            await dc2.DisposeAsync();
            await FaultyBankRig.WaitUntilAsync(() => bank308.Endpoints.All(e => !e.Reachable), "308 unreachable");

            // Three turns of the table (at least 192) to the healthy bank 102, eight at a time: every one succeeds.
            int payments = Math.Max(192, 3 * transactionCapacity);
            int next = 0;
            var failures = new List<string>();
            var late = new List<string>();
            await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
            {
                for (int i; (i = Interlocked.Increment(ref next)) <= payments;)
                {
                    try
                    {
                        TransferResult r = await sw.PayAsync(Payment($"H-{i}", 100 + i % 50, bank: "102", account: $"6222{i:D12}"));
                        // UNKNOWN: 102 answered after its deadline (a loaded test machine): not held back, settled by a query below.
                        if (r.Status == TransactionStatus.Unknown) lock (late) late.Add(r.OrderNo);
                        else if (r.Status != TransactionStatus.Succeeded) lock (failures) failures.Add($"H-{i}: {r.Status}");
                    }
                    catch (RpcException e)
                    {
                        lock (failures) failures.Add($"H-{i}: {e.Status.Detail}");
                    }
                }
            }));
            Assert.Empty(failures);
            // A late one ends as 102's books say: executed (late answer) is SUCCEEDED; refused past its deadline by 102
            // itself (the loaded machine queued it there: never executed) is FAILED. Either way 308 held back nothing.
            BankLedger books102 = sw.Host.Simulators.First(s => s.Options.BankCodes.Contains(102)).Ledger;
            foreach (string orderNo in late)
            {
                TransferResult settled = default!;
                await FaultyBankRig.WaitUntilAsync(async () =>
                {
                    settled = await sw.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = orderNo }, As(AlipayKey));
                    return settled.Status != TransactionStatus.Unknown;
                }, $"{orderNo} settled");
                bool executed = books102.TryGet(settled.TransactionId, out BankLedgerEntry entry)
                    && entry is { Outcome: BankOutcome.Succeeded, Reversed: false };
                Assert.Equal(executed ? TransactionStatus.Succeeded : TransactionStatus.Failed, settled.Status);
                if (!executed) Assert.True(books102.Counts.RefusedLate > 0, $"{orderNo} failed, yet bank 102 refused nothing as late");
            }
            Assert.True(late.Count < payments / 10, $"{late.Count} of {payments} payments to the healthy bank went past its deadline");
            Assert.True(sw.Host.Engine.Logic.Transactions.LastId > transactionCapacity);
            Assert.Equal(TransactionStatus.Unknown,
                (await sw.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = "STUCK-308" }, As(AlipayKey))).Status);

            // 308 comes back on its ports and books, answering now: the stuck debit becomes final, as its books say.
            dc1 = await BankSimulatorServer.StartAsync(silent with { Seed = 1, Port = dc1.Address.Port, NoAnswerRate = 0 }, ledger: books);
            dc2 = await BankSimulatorServer.StartAsync(silent with { Seed = 2, Port = dc2.Address.Port, NoAnswerRate = 0 }, ledger: books);
            foreach (TransferResult sent in more.Prepend(stuck))
            {
                TransferResult final = sent;
                await FaultyBankRig.WaitUntilAsync(async () =>
                {
                    final = await sw.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = sent.OrderNo }, As(AlipayKey));
                    return final.Status is TransactionStatus.Succeeded or TransactionStatus.Failed;
                }, $"{sent.OrderNo} final");
                Assert.True(books.TryGet(sent.TransactionId, out BankLedgerEntry entry)); // executed before 308 went away
                Assert.Equal((TransactionStatus.Succeeded, BankOutcome.Succeeded), (final.Status, entry.Outcome));
            }
            Assert.Equal(0, sw.Host.Engine.Logic.BankByCode(StuckBank).Unresolved);
            Assert.Equal(0, sw.Host.Engine.Logic.PositionSumFen());
            // 308 takes new work again.
            Assert.Equal(TransactionStatus.Succeeded, (await sw.PayAsync(Payment("BACK-308", 100, bank: "308", account: "6225880000000002"))).Status);
        }
        finally
        {
            await dc1.DisposeAsync();
            await dc2.DisposeAsync();
        }
    }
}
