using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Configuration;
using Switch.Host.Gateway;
using Switch.Host.Tests.EndToEnd;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;

namespace Switch.Host.Tests.Limits;

/// <summary>The limits as an institution meets them: a real switch, real sockets, our gRPC client.</summary>
public sealed class LimitsOverTheWireTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static CallOptions WithKey(string? key) => new()
    {
        Headers = key is null ? new Metadata() : new Metadata().Add(InstitutionMethods.ApiKeyHeader, key),
        Timeout = TimeSpan.FromSeconds(10),
    };

    [Fact]
    public async Task An_address_that_keeps_failing_authentication_is_refused_before_hashing_and_a_clean_start_is_never_slowed()
    {
        await using RunningSwitch running = await RunningSwitch.StartAsync();
        var failures = new AuthFailureLimiter(burst: 5, perMinute: 1, maxAddresses: 64);
        await using LimitedGateway port = await LimitedGateway.StartAsync(running, GatewayLimits.Default, failures);
        long warm = await LimitedGateway.WarmUpAsync(running);

        // Before any failure the limiter costs nothing visible: a good key is served.
        Assert.Equal(TransactionStatus.Succeeded,
            (await port.Channel.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("AUTH-0", 100), WithKey(AlipayKey))).Status);
        Assert.False(failures.AnyTracked);

        for (int i = 0; i < 5; i++)
        {
            RpcException wrong = await Assert.ThrowsAsync<RpcException>(() =>
                port.Channel.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("AUTH-X", 100), WithKey(i % 2 == 0 ? "guess-" + i : null)));
            Assert.Equal(StatusCode.Unauthenticated, wrong.StatusCode);
        }
        // The sixth attempt is refused without looking at the key, on every RPC, a correct key included.
        RpcException refused = await Assert.ThrowsAsync<RpcException>(() =>
            port.Channel.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("AUTH-1", 100), WithKey("guess-again")));
        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        Assert.Matches(@"^too many failed authentications from this address; retry after \d+ s$", refused.Status.Detail);
        RpcException evenGood = await Assert.ThrowsAsync<RpcException>(() =>
            port.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = "AUTH-0" }, WithKey(AlipayKey)));
        Assert.Equal(StatusCode.ResourceExhausted, evenGood.StatusCode);
        RpcException onStream = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using ServerStreamingCall<TransferResult> call = port.Channel.ServerStreaming(InstitutionMethods.Outcomes, new OutcomesRequest(), WithKey(AlipayKey));
            await call.ResponseStream.ReadAsync().AsTask().WaitAsync(Bound);
        });
        Assert.Equal(StatusCode.ResourceExhausted, onStream.StatusCode);
        Assert.Equal(1, failures.Tracked);

        // The host's own port has its own limiter: the same address is served there, and nothing reached the engine.
        TransferResult stored = await running.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = "AUTH-0" }, As(AlipayKey));
        Assert.Equal(TransactionStatus.Succeeded, stored.Status);
        Assert.Equal(warm + 1, running.Host.Engine.Logic.Transactions.LastId);
    }

    [Fact]
    public async Task An_institution_over_its_rate_gets_resource_exhausted_the_other_is_served_and_the_refused_order_is_untouched()
    {
        await using RunningSwitch running = await RunningSwitch.StartAsync();
        // One token a second after a burst of 6: the test's few calls can never earn a token by being slow.
        var limits = new GatewayLimits { RequestsPerSecond = 1, BurstRequests = 6 };
        await using LimitedGateway port = await LimitedGateway.StartAsync(running, limits);
        long warm = await LimitedGateway.WarmUpAsync(running);

        // Sequential calls until refused: the burst goes first; a slow machine may earn a token or two meanwhile.
        RpcException? over = null;
        int served = 0;
        string refusedOrder = "";
        for (int i = 0; i < 50 && over is null; i++)
        {
            try
            {
                TransferResult r = await port.Channel.UnaryAsync(InstitutionMethods.AgreementPayment, Payment($"RL-A-{i}", 100 + i, account: $"A{i}"), As(AlipayKey));
                Assert.Equal(TransactionStatus.Succeeded, r.Status);
                served++;
            }
            catch (RpcException e)
            {
                over = e;
                refusedOrder = $"RL-A-{i}";
            }
        }
        Assert.NotNull(over);
        Assert.True(served >= 6, $"only {served} served before the refusal: {over.Status}");
        Assert.Equal(StatusCode.ResourceExhausted, over.StatusCode);
        Assert.StartsWith("institution rate limit of 1 requests/s (burst 6) reached; retry after ", over.Status.Detail);
        long transactionsBefore = running.Host.Engine.Logic.Transactions.LastId;
        Assert.Equal(warm + served, transactionsBefore);

        // The other institution, with the same load, is served in full.
        Task<TransferResult>[] tenpay = Enumerable.Range(0, 6)
            .Select(i => port.Channel.UnaryAsync(InstitutionMethods.AgreementPayment, Payment($"RL-T-{i}", 100 + i, account: $"T{i}"), As(TenpayKey))).ToArray();
        Assert.All(await Task.WhenAll(tenpay).WaitAsync(Bound), r => Assert.Equal(TransactionStatus.Succeeded, r.Status));

        // The refused request never reached the engine: no transaction for it, and the order number is free.
        Assert.Equal(transactionsBefore + 6, running.Host.Engine.Logic.Transactions.LastId);
        RpcException unknown = await Assert.ThrowsAsync<RpcException>(() =>
            running.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = refusedOrder }, As(AlipayKey)));
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        TransferResult later = await running.PayAsync(Payment(refusedOrder, 888, account: "A-over"));
        Assert.Equal(TransactionStatus.Succeeded, later.Status);
        Assert.False(later.Duplicate);
        Assert.Equal(888, later.AmountFen);
        Assert.Equal(0, running.Host.Engine.Logic.PositionSumFen());
    }

    [Fact]
    public async Task The_in_flight_cap_refuses_unary_calls_while_a_stream_holds_the_places_and_spares_the_other_institution()
    {
        string dir = Path.Combine(Path.GetTempPath(), "switch-limits-" + Guid.NewGuid().ToString("N"));
        // A slow bank keeps requests unanswered long enough to observe them in flight.
        HostConfig config = TestConfig(dir, new SimulatedBanksConfig { Latency = "fixed:1500", FailureRate = 0 });
        await using RunningSwitch running = await RunningSwitch.StartAsync(config);
        var limits = new GatewayLimits { MaxInFlight = 4 };
        await using LimitedGateway port = await LimitedGateway.StartAsync(running, limits);
        long warm = await LimitedGateway.WarmUpAsync(running);

        using DuplexStreamingCall<TransferRequest, TransferResult> stream = port.Channel.DuplexStreaming(InstitutionMethods.Transact, As(AlipayKey, 60_000));
        Task<List<TransferResult>> reading = Task.Run(async () =>
        {
            var results = new List<TransferResult>();
            await foreach (TransferResult r in stream.ResponseStream.ReadAllAsync()) results.Add(r);
            return results;
        });
        for (int i = 0; i < 4; i++)
        {
            TransferRequest r = Payment($"IF-S-{i}", 100 + i, account: $"S{i}");
            r.Kind = RequestKind.AgreementPayment;
            await stream.RequestStream.WriteAsync(r);
        }
        await stream.RequestStream.FlushAsync();
        await PollUntil(() => port.Gateway.Limiter.InFlight(0) == 4, () => $"in flight {port.Gateway.Limiter.InFlight(0)}, engine answered {reading.IsCompleted}");

        RpcException full = await Assert.ThrowsAsync<RpcException>(() =>
            port.Channel.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("IF-U-1", 500, account: "U1"), As(AlipayKey)));
        Assert.Equal(StatusCode.ResourceExhausted, full.StatusCode);
        Assert.Equal("institution in-flight limit of 4 unanswered requests reached; wait for answers before sending more", full.Status.Detail);
        Assert.Equal(0, port.Gateway.Limiter.InFlight(1));
        TransferResult other = await port.Channel.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("IF-T-1", 500, account: "T1"), As(TenpayKey));
        AssertServed(other);

        await stream.RequestStream.CompleteAsync();
        List<TransferResult> results = await reading.WaitAsync(Bound);
        Assert.Equal(4, results.Count);
        Assert.All(results, AssertServed);
        await PollUntil(() => port.Gateway.Limiter.InFlight(0) == 0);

        // The refused order never reached the engine: it is free to use now, with the same content.
        TransferResult later = await port.Channel.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("IF-U-1", 500, account: "U1"), As(AlipayKey));
        AssertServed(later);
        Assert.False(later.Duplicate);
        Assert.Equal(warm + 6, running.Host.Engine.Logic.Transactions.LastId);
    }

    /// <summary>
    /// Reached the engine and was executed: on a loaded machine the slow bank may pass the switch's bank timeout,
    /// and the answer is then UNKNOWN (resolved later) rather than SUCCEEDED; either way it was not refused.
    /// </summary>
    private static void AssertServed(TransferResult r) =>
        Assert.True(r.Status is TransactionStatus.Succeeded or TransactionStatus.Unknown or TransactionStatus.Processing, $"{r.OrderNo}: {r.Status} {r.RejectCode}");

    private static async Task PollUntil(Func<bool> condition, Func<string>? state = null)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"condition not reached within the bound; {state?.Invoke()}");
            await Task.Delay(10);
        }
    }
}
