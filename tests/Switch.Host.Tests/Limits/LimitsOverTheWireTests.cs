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

    private const string YeepayKey = "demo-yeepay-key";

    [Fact]
    public async Task A_correct_key_after_twenty_bad_keys_from_its_address_is_served_and_the_next_bad_key_is_answered_late()
    {
        await using RunningSwitch running = await RunningSwitch.StartAsync();
        var failures = new AuthFailureLimiter(GatewayLimits.Default);
        await using LimitedGateway port = await LimitedGateway.StartAsync(running, GatewayLimits.Default, failures);
        long warm = await LimitedGateway.WarmUpAsync(running);
        Assert.False(failures.AnyTracked);

        for (int i = 0; i < GatewayLimits.Default.AuthFailureBurst; i++)
        {
            RpcException wrong = await Assert.ThrowsAsync<RpcException>(() =>
                port.Channel.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("AUTH-X", 100), WithKey(i % 2 == 0 ? "guess-" + i : null)));
            Assert.Equal(StatusCode.Unauthenticated, wrong.StatusCode);
        }
        Assert.Equal(1, failures.Tracked);
        // TENPAY, from the same address, right after: its correct key is checked and served, on every kind of call.
        Assert.Equal(TransactionStatus.Succeeded,
            (await port.Channel.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("AUTH-T", 100), WithKey(TenpayKey))).Status);
        using (ServerStreamingCall<TransferResult> feed = port.Channel.ServerStreaming(InstitutionMethods.Outcomes, new OutcomesRequest(), WithKey(TenpayKey)))
        {
            TransferResult first = (await feed.ResponseStream.ReadAsync().AsTask().WaitAsync(Bound))!;
            Assert.Equal("AUTH-T", first.OrderNo);
        }
        // The budget is spent: the next bad key is still judged (UNAUTHENTICATED), only later, never refused unread.
        Task<TransferResult> late = port.Channel.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("AUTH-Y", 100), WithKey("guess-again"));
        await WaitUntilAsync(() => failures.Delayed("ipv4:127.0.0.1") == 1);
        Assert.Equal(StatusCode.Unauthenticated, (await Assert.ThrowsAsync<RpcException>(() => late)).StatusCode);
        Assert.Equal(0, failures.Delayed("ipv4:127.0.0.1"));
        Assert.Equal(warm + 1, running.Host.Engine.Logic.Transactions.LastId); // nothing but TENPAY's payment reached the engine
    }

    [Fact]
    public async Task A_neighbour_retrying_a_stale_key_every_50_ms_never_gets_a_correct_client_on_its_address_refused()
    {
        await using RunningSwitch running = await RunningSwitch.StartAsync();
        var limits = GatewayLimits.Default with { AuthFailureBurst = 5, AuthFailuresPerMinute = 1, AuthFailureDelayMs = 100 };
        var failures = new AuthFailureLimiter(limits);
        await using LimitedGateway port = await LimitedGateway.StartAsync(running, limits, failures);
        await LimitedGateway.WarmUpAsync(running);

        using var stop = new CancellationTokenSource();
        int neighbourFailures = 0;
        Task neighbour = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                RpcException e = await Assert.ThrowsAsync<RpcException>(() =>
                    port.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = "STALE" }, WithKey("demo-yeepay-key-of-last-year")));
                Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
                Interlocked.Increment(ref neighbourFailures);
                await Task.Delay(50);
            }
        });
        await WaitUntilAsync(() => Volatile.Read(ref neighbourFailures) > limits.AuthFailureBurst); // past its budget: in the tarpit
        for (int i = 0; i < 60; i++)
        {
            TransferResult paid = await port.Channel.UnaryAsync(InstitutionMethods.AgreementPayment,
                Payment($"YEE-{i}", 100, account: $"6222{i:D12}"), WithKey(YeepayKey));
            Assert.Equal(TransactionStatus.Succeeded, paid.Status);
            if (i % 10 == 0) await Task.Delay(50);
        }
        stop.Cancel();
        await neighbour.WaitAsync(Bound);
        Assert.True(neighbourFailures > limits.AuthFailureBurst + 1, $"{neighbourFailures} stale attempts");
    }

    [Fact]
    public async Task A_flood_of_guesses_from_one_address_is_judged_at_the_tarpits_pace_and_the_rest_refused_unread()
    {
        await using RunningSwitch running = await RunningSwitch.StartAsync();
        var limits = GatewayLimits.Default with { AuthFailureBurst = 3, AuthFailuresPerMinute = 1, AuthFailureDelayMs = 3_000, AuthDelayedPerAddress = 4 };
        await using LimitedGateway port = await LimitedGateway.StartAsync(running, limits, new AuthFailureLimiter(limits));
        // Within the budget: answered at once.
        for (int i = 0; i < limits.AuthFailureBurst; i++)
        {
            Assert.Equal(StatusCode.Unauthenticated, (await Assert.ThrowsAsync<RpcException>(() =>
                port.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = "G" }, WithKey("guess-" + i)))).StatusCode);
        }
        // 40 at once: four wait in the tarpit and are judged late; the others are refused without their key being read.
        RpcException[] answers = await Task.WhenAll(Enumerable.Range(0, 40).Select(i => Assert.ThrowsAsync<RpcException>(() =>
            port.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = "G" }, WithKey("flood-" + i)))));
        int judged = answers.Count(e => e.StatusCode == StatusCode.Unauthenticated);
        RpcException[] refused = answers.Where(e => e.StatusCode == StatusCode.ResourceExhausted).ToArray();
        Assert.Equal(40, judged + refused.Length);
        Assert.InRange(judged, 1, limits.AuthDelayedPerAddress + 1); // + one failure the budget may earn back meanwhile
        Assert.All(refused, e => Assert.StartsWith("AUTH_THROTTLED: 4 failed authentications from this address are waiting", e.Status.Detail));
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        DateTime deadline = DateTime.UtcNow + Bound;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met within the bound");
            await Task.Delay(5);
        }
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
        Task<List<TransferResult>> reading = ReadAllAsync(stream);
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

    [Fact]
    public async Task A_streams_batches_larger_than_its_window_its_in_flight_cap_and_its_burst_are_paced_through_each_request_answered_once()
    {
        string dir = Path.Combine(Path.GetTempPath(), "switch-limits-" + Guid.NewGuid().ToString("N"));
        await using RunningSwitch running = await RunningSwitch.StartAsync(TestConfig(dir));
        // The port's window is 64 a stream; a message of 150 is taken in parts as places, in-flight room and tokens free up.
        var limits = new GatewayLimits { MaxInFlight = 40, RequestsPerSecond = 1_000, BurstRequests = 50 };
        await using LimitedGateway port = await LimitedGateway.StartAsync(running, limits);
        long warm = await LimitedGateway.WarmUpAsync(running);

        using DuplexStreamingCall<TransferRequest, TransferResult> stream = port.Channel.DuplexStreaming(InstitutionMethods.Transact, As(AlipayKey, 60_000));
        Task<List<TransferResult>> reading = ReadAllAsync(stream);
        const int messages = 2, perMessage = 150;
        for (int m = 0; m < messages; m++)
        {
            var batch = new TransferRequest();
            for (int i = 0; i < perMessage; i++)
            {
                TransferRequest r = Payment($"PACED-{m}-{i}", 100 + i, account: $"P{m}-{i}");
                r.Kind = RequestKind.AgreementPayment;
                batch.Batch.Add(r);
            }
            await stream.RequestStream.WriteAsync(batch);
        }
        await stream.RequestStream.CompleteAsync();
        List<TransferResult> results = await reading.WaitAsync(Bound);
        Assert.Equal(StatusCode.OK, stream.GetStatus().Code);

        Assert.Equal(messages * perMessage, results.Count);
        Assert.All(results, AssertServed);
        Assert.Equal(
            Enumerable.Range(0, messages).SelectMany(m => Enumerable.Range(0, perMessage).Select(i => $"PACED-{m}-{i}")).Order(),
            results.Select(r => r.OrderNo).Order());
        Assert.Equal(warm + messages * perMessage, running.Host.Engine.Logic.Transactions.LastId);
        await PollUntil(() => port.Gateway.Limiter.InFlight(0) == 0 && port.Gateway.Limiter.QueuedAnswers(0) == 0,
            () => $"in flight {port.Gateway.Limiter.InFlight(0)}, queued {port.Gateway.Limiter.QueuedAnswers(0)}");
    }

    /// <summary>Every answer of the stream as it comes, all of them once it ends.</summary>
    private static Task<List<TransferResult>> ReadAllAsync(DuplexStreamingCall<TransferRequest, TransferResult> stream) => Task.Run(async () =>
    {
        var results = new List<TransferResult>();
        await foreach (TransferResult r in stream.ResponseStream.ReadAllAsync()) results.Add(r);
        return results;
    });

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
