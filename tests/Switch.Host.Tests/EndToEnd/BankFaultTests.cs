using Switch.Contracts.V1;
using Switch.Engine.Business;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Configuration;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;

namespace Switch.Host.Tests.EndToEnd;

/// <summary>Banks that go silent or away: unknown outcomes resolved by query, traffic moved off a dead endpoint.</summary>
public sealed class BankFaultTests
{
    [Fact]
    public async Task An_unanswered_payment_is_unknown_at_the_deadline_and_the_bank_query_makes_it_final()
    {
        HostConfig config = TestConfig("", new SimulatedBanksConfig { Latency = "0", FailureRate = 0, NoAnswerRate = 1.0 },
            // A deadline generous enough that a loaded test machine still delivers the request before it (a request
            // refused as late would be NOT_FOUND, i.e. failed): this test is about silence, not lateness.
            rules => rules with { BankTimeoutMs = 1_500, QueryBackoffInitialMs = 100, QueryBackoffMaxMs = 400 });
        await using RunningSwitch sw = await RunningSwitch.StartAsync(config);

        TransferResult answer = await sw.PayAsync(Payment("U-1", 5_000));
        Assert.Equal(TransactionStatus.Unknown, answer.Status);

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using ServerStreamingCall<TransferResult> feed = sw.Channel.ServerStreaming(InstitutionMethods.Outcomes,
            new OutcomesRequest { AfterFeedNo = 0 }, As(AlipayKey) with { Timeout = null, CancellationToken = cts.Token });
        TransferResult final = (await feed.ResponseStream.ReadAsync())!;
        Assert.Equal("U-1", final.OrderNo);
        Assert.Equal(TransactionStatus.Succeeded, final.Status); // the bank executed it, it just never said so
        Assert.Equal(1, final.FeedNo);

        TransferResult queried = await sw.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = "U-1" }, As(AlipayKey));
        Assert.Equal(TransactionStatus.Succeeded, queried.Status);
    }

    [Fact]
    public async Task A_dead_endpoint_is_marked_down_and_its_traffic_goes_to_the_banks_other_endpoint()
    {
        await using RunningSwitch sw = await RunningSwitch.StartAsync();
        // Simulators start in configuration order: bank 102 (ICBC) has DC1 (95%) then DC2 (5%).
        var icbcDc1 = sw.Host.Simulators[0];
        var icbcDc2 = sw.Host.Simulators[1];
        await sw.PayAsync(Payment("WARM", 100));
        await icbcDc1.DisposeAsync(); // the data centre goes away: connections now refused

        Bank icbc = sw.Host.Engine.Logic.BankByCode(102);
        await WaitUntil(() => !icbc.Endpoints[0].Reachable, "ICBC-DC1 marked unreachable");

        long before = icbcDc2.ExecutedHere;
        for (int i = 0; i < 40; i++)
        {
            TransferResult r = await sw.PayAsync(Payment($"MOVE-{i}", 100 + i, account: $"62220000{i:D8}"));
            Assert.Equal(TransactionStatus.Succeeded, r.Status);
        }
        Assert.Equal(before + 40, icbcDc2.ExecutedHere);

        // The data centre comes back on the same address: the probe finds it and its share returns.
        await using var revived = await Switch.BankSim.BankSimulatorServer.StartAsync(icbcDc1.Options with { Port = icbcDc1.Address.Port });
        await WaitUntil(() => icbc.Endpoints[0].Reachable, "ICBC-DC1 marked reachable again");
        for (int i = 0; i < 40; i++)
        {
            await sw.PayAsync(Payment($"BACK-{i}", 100 + i, account: $"62230000{i:D8}"));
        }
        Assert.True(revived.ExecutedHere > 20, $"only {revived.ExecutedHere} of 40 went back to DC1 (95% weight)");
    }

    [Fact]
    public async Task With_no_endpoint_up_the_bank_is_unavailable_at_once_and_other_banks_keep_working()
    {
        await using RunningSwitch sw = await RunningSwitch.StartAsync();
        await sw.Host.Simulators[0].DisposeAsync();
        await sw.Host.Simulators[1].DisposeAsync();
        Bank icbc = sw.Host.Engine.Logic.BankByCode(102);
        await WaitUntil(() => icbc.Endpoints.All(e => !e.Reachable), "both ICBC endpoints unreachable");

        RpcException e = await Assert.ThrowsAsync<RpcException>(() => sw.PayAsync(Payment("NONE", 100)));
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.StartsWith("BANK_UNAVAILABLE: bank", e.Status.Detail);
        Assert.Equal(TransactionStatus.Succeeded, (await sw.PayAsync(Payment("ABC", 100, bank: "103"))).Status);
    }

    private static async Task WaitUntil(Func<bool> condition, string what)
    {
        long deadline = Environment.TickCount64 + 20_000;
        while (!condition())
        {
            if (Environment.TickCount64 > deadline) throw new TimeoutException($"timed out waiting for: {what}");
            await Task.Delay(20);
        }
    }
}
