using System.Text.Json;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Grpc.Health;
using Switch.Grpc.Health.V1;
using Switch.Host.Admin;
using Switch.Host.Tests.Admin;
using Switch.Host.Tests.EndToEnd;
using ServingStatus = Switch.Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace Switch.Host.Tests.Cluster;

/// <summary>
/// The "not the primary" contract over real sockets: a switch whose role is set to standby refuses every institution
/// and operator call UNAVAILABLE "NOT_PRIMARY: ..." with the primary named in a trailer (a header on HTTP), changes
/// nothing, says NOT_SERVING, and ends the streams that were open when it left office.
/// </summary>
public sealed class NotPrimaryTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    /// <summary>Where the (fictional) primary is: every refusal must name the right one of these.</summary>
    private static readonly PrimaryAddresses Elsewhere = new(
        new Uri("http://10.20.30.40:7001"), new Uri("https://10.20.30.40:7003"), new Uri("http://10.20.30.40:7002"));

    private const string Prefix = "NOT_PRIMARY: this node is a standby; the primary is ";

    [Fact]
    public async Task A_standby_refuses_every_kind_of_call_naming_the_primary_and_changes_nothing()
    {
        await using RunningSwitch sw = await AdminClient.StartAsync();
        using var admin = new AdminClient(sw);
        await admin.WaitAllTakeTrafficAsync("102");
        TransferResult before = await sw.PayAsync(RunningSwitch.Payment("NP-BEFORE", 1_00));
        Assert.Equal(TransactionStatus.Succeeded, before.Status);
        BankView bankBefore = await admin.BankAsync("102");
        int auditBefore = (await admin.OperatorAuditAsync()).Count;

        sw.Host.Role.BecomeStandby(Elsewhere);
        Assert.False(sw.Host.Role.IsPrimary);

        // Institution port: unary payment and query.
        AssertRefused(await Assert.ThrowsAsync<RpcException>(() => sw.PayAsync(RunningSwitch.Payment("NP-UNARY", 2_00))),
            RoleState.PrimaryTrailer, "http://10.20.30.40:7001");
        AssertRefused(await Assert.ThrowsAsync<RpcException>(() => sw.Channel.UnaryAsync(InstitutionMethods.Query,
            new TransferRequest { OrderNo = "NP-BEFORE" }, RunningSwitch.As(RunningSwitch.AlipayKey))), RoleState.PrimaryTrailer, "http://10.20.30.40:7001");

        // A Transact stream: the request written is never taken.
        using (var call = sw.Channel.DuplexStreaming(InstitutionMethods.Transact, RunningSwitch.As(RunningSwitch.AlipayKey)))
        {
            try
            {
                await call.RequestStream.WriteAsync(StreamPayment("NP-STREAM", 3_00));
                await call.RequestStream.CompleteAsync();
            }
            catch (RpcException)
            {
                // The refusal may close the stream before the write: the status comes with the read.
            }
            AssertRefused(await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.ReadAsync()),
                RoleState.PrimaryTrailer, "http://10.20.30.40:7001");
        }

        // The outcome feed.
        using (var feed = sw.Channel.ServerStreaming(InstitutionMethods.Outcomes, new OutcomesRequest(), RunningSwitch.As(RunningSwitch.AlipayKey)))
        {
            AssertRefused(await Assert.ThrowsAsync<RpcException>(async () => await feed.ResponseStream.ReadAsync()),
                RoleState.PrimaryTrailer, "http://10.20.30.40:7001");
        }

        // Admin gRPC: a read, a change, a stream; each names the primary's admin gRPC address.
        AssertRefused(await Assert.ThrowsAsync<RpcException>(() => admin.CallAsync(AdminMethods.ListBanks, new ListBanksRequest())),
            RoleState.PrimaryAdminTrailer, "https://10.20.30.40:7003");
        AssertRefused(await Assert.ThrowsAsync<RpcException>(() => admin.CallAsync(AdminMethods.SetEndpointState,
            new SetEndpointStateRequest { Bank = "102", Endpoint = bankBefore.Endpoints[0].Name, State = EndpointAdminState.Down, Reason = "np" })),
            RoleState.PrimaryAdminTrailer, "https://10.20.30.40:7003");
        using (var watch = admin.Grpc.ServerStreaming(AdminMethods.WatchStats, new StatsRequest(), AdminClient.As(AdminClient.OpsKey)))
        {
            AssertRefused(await Assert.ThrowsAsync<RpcException>(async () => await watch.ResponseStream.ReadAsync()),
                RoleState.PrimaryAdminTrailer, "https://10.20.30.40:7003");
        }

        // Admin HTTP: 503, the JSON body, the header naming the primary's admin HTTP address.
        using (var post = new HttpRequestMessage(HttpMethod.Post, "/api/v1/SetEndpointState"))
        {
            post.Headers.Add(AdminMethods.OperatorKeyHeader, AdminClient.OpsKey);
            post.Content = new StringContent($$"""{"bank":"102","endpoint":"{{bankBefore.Endpoints[0].Name}}","state":"ENDPOINT_ADMIN_STATE_DOWN","reason":"np"}""");
            using HttpResponseMessage response = await admin.Http.SendAsync(post);
            Assert.Equal(503, (int)response.StatusCode);
            Assert.Equal("http://10.20.30.40:7002", Assert.Single(response.Headers.GetValues(RoleState.PrimaryAdminTrailer)));
            using JsonDocument body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            Assert.Equal("UNAVAILABLE", body.RootElement.GetProperty("code").GetString());
            Assert.Equal(Prefix + "http://10.20.30.40:7002", body.RootElement.GetProperty("message").GetString());
            Assert.Equal("http://10.20.30.40:7002", body.RootElement.GetProperty("primary").GetString());
        }

        // Health: NOT_SERVING on both gRPC ports and /readyz, so load balancers skip it; liveness and /metrics stay up.
        Assert.Equal(NodeState.Standby, sw.Host.Health.State);
        Assert.Equal(ServingStatus.NotServing, (await sw.Channel.UnaryAsync(HealthService.Check, new HealthCheckRequest())).Status);
        Assert.Equal(ServingStatus.NotServing, (await admin.Grpc.UnaryAsync(HealthService.Check, new HealthCheckRequest())).Status);
        using (HttpResponseMessage ready = await admin.Http.GetAsync(AdminWebServer.ReadinessPath))
        {
            Assert.Equal((503, "standby\n"), ((int)ready.StatusCode, await ready.Content.ReadAsStringAsync()));
        }
        Assert.Equal(200, (int)(await admin.Http.GetAsync(AdminWebServer.LivenessPath)).StatusCode);
        Assert.Equal(200, (int)(await admin.Http.GetAsync("/metrics")).StatusCode);

        // Back in office: nothing refused was taken, nothing changed.
        sw.Host.Role.BecomePrimary();
        Assert.Equal(ServingStatus.Serving, (await sw.Channel.UnaryAsync(HealthService.Check, new HealthCheckRequest())).Status);
        foreach (string order in new[] { "NP-UNARY", "NP-STREAM" })
        {
            RpcException unknown = await Assert.ThrowsAsync<RpcException>(() => sw.Channel.UnaryAsync(InstitutionMethods.Query,
                new TransferRequest { OrderNo = order }, RunningSwitch.As(RunningSwitch.AlipayKey)));
            Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        }
        Assert.Equal(bankBefore.Endpoints[0].State, (await admin.BankAsync("102")).Endpoints[0].State);
        Assert.Equal(auditBefore, (await admin.OperatorAuditAsync()).Count);
        Assert.Equal(TransactionStatus.Succeeded, (await sw.PayAsync(RunningSwitch.Payment("NP-AFTER", 4_00))).Status);
    }

    [Fact]
    public async Task A_standby_that_knows_no_primary_says_an_election_is_under_way_and_sends_no_trailer()
    {
        await using RunningSwitch sw = await RunningSwitch.StartAsync();
        sw.Host.Role.BecomeStandby(null);
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => sw.PayAsync(RunningSwitch.Payment("NP-NONE", 1_00)));
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.Equal("NOT_PRIMARY: this node is a standby; the primary is unknown (election under way)", e.Status.Detail);
        Assert.Null(e.Trailers.GetValue(RoleState.PrimaryTrailer));
    }

    [Fact]
    public async Task Streams_open_when_the_node_leaves_office_end_with_not_primary_and_the_primary_named()
    {
        await using RunningSwitch sw = await AdminClient.StartAsync();
        using var admin = new AdminClient(sw);
        await admin.WaitAllTakeTrafficAsync("102");
        using var cts = new CancellationTokenSource(Bound);
        CallOptions streaming = RunningSwitch.As(RunningSwitch.AlipayKey) with { Timeout = null, CancellationToken = cts.Token };

        // A Transact stream that has been answered once, an outcome feed that delivered that outcome, a stats watch.
        using var transact = sw.Channel.DuplexStreaming(InstitutionMethods.Transact, streaming);
        await transact.RequestStream.WriteAsync(StreamPayment("NP-OPEN-1", 1_00));
        await transact.RequestStream.FlushAsync();
        TransferResult first = (await transact.ResponseStream.ReadAsync().AsTask().WaitAsync(Bound))!;
        Assert.Equal(("NP-OPEN-1", TransactionStatus.Succeeded), (first.OrderNo, first.Status));
        using var feed = sw.Channel.ServerStreaming(InstitutionMethods.Outcomes, new OutcomesRequest(), streaming);
        Assert.NotNull(await feed.ResponseStream.ReadAsync().AsTask().WaitAsync(Bound));
        using var watch = admin.Grpc.ServerStreaming(AdminMethods.WatchStats, new StatsRequest(),
            AdminClient.As(AdminClient.OpsKey) with { Timeout = null, CancellationToken = cts.Token });
        Assert.NotNull(await watch.ResponseStream.ReadAsync().AsTask().WaitAsync(Bound));

        sw.Host.Role.BecomeStandby(Elsewhere);

        AssertRefused(await Assert.ThrowsAsync<RpcException>(() => DrainAsync(() => transact.ResponseStream.ReadAsync())), RoleState.PrimaryTrailer, "http://10.20.30.40:7001");
        AssertRefused(await Assert.ThrowsAsync<RpcException>(() => DrainAsync(() => feed.ResponseStream.ReadAsync())), RoleState.PrimaryTrailer, "http://10.20.30.40:7001");
        AssertRefused(await Assert.ThrowsAsync<RpcException>(() => DrainAsync(() => watch.ResponseStream.ReadAsync())), RoleState.PrimaryAdminTrailer, "https://10.20.30.40:7003");
    }

    [Fact]
    public async Task A_call_that_reaches_the_primarys_handlers_after_the_node_left_office_is_refused_there_too()
    {
        // The port swaps its methods for the refusal when the role changes; a call that began on the old ones must
        // still not be taken. Here the primary's methods are served on a port of their own that never swaps.
        await using RunningSwitch sw = await RunningSwitch.StartAsync();
        NodeRole role = NodeRole.StartingAsStandby(Elsewhere);
        var gateway = new Gateway.InstitutionGateway(sw.Host.EngineClient, new Gateway.ApiKeyAuthenticator(sw.Host.Engine.Logic.Config), sw.Host.Feeds,
            maxInFlightPerStream: 64, role: role);
        await using Grpc.Server.GrpcServer server = await Grpc.Server.GrpcServer.StartAsync(gateway.Map(new Grpc.Server.GrpcRouter()),
            new Grpc.Server.GrpcEndpointOptions { Port = 0 });
        using var channel = GrpcChannel.ForAddress(server.Address);

        AssertRefused(await Assert.ThrowsAsync<RpcException>(() => channel.UnaryAsync(InstitutionMethods.AgreementPayment,
            RunningSwitch.Payment("NP-LATE", 1_00), RunningSwitch.As(RunningSwitch.AlipayKey))), RoleState.PrimaryTrailer, "http://10.20.30.40:7001");
        using (var call = channel.DuplexStreaming(InstitutionMethods.Transact, RunningSwitch.As(RunningSwitch.AlipayKey)))
        {
            AssertRefused(await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.ReadAsync()),
                RoleState.PrimaryTrailer, "http://10.20.30.40:7001");
        }
        RpcException unknown = await Assert.ThrowsAsync<RpcException>(() => sw.Channel.UnaryAsync(InstitutionMethods.Query,
            new TransferRequest { OrderNo = "NP-LATE" }, RunningSwitch.As(RunningSwitch.AlipayKey)));
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
    }

    /// <summary>Reads until the stream ends (an outcome or a stats reply may already be on its way when the role changes).</summary>
    private static async Task DrainAsync<T>(Func<ValueTask<T?>> read) where T : class
    {
        while (await read().AsTask().WaitAsync(Bound) is not null)
        {
        }
    }

    /// <summary>A payment as a Transact stream sends it: the kind named (a unary method implies it).</summary>
    private static TransferRequest StreamPayment(string orderNo, long amountFen)
    {
        TransferRequest request = RunningSwitch.Payment(orderNo, amountFen);
        request.Kind = RequestKind.AgreementPayment;
        return request;
    }

    private static void AssertRefused(RpcException e, string trailer, string primary)
    {
        Assert.True(e.StatusCode == StatusCode.Unavailable, e.ToString());
        Assert.Equal(Prefix + primary, e.Status.Detail);
        Assert.Equal(primary, e.Trailers.GetValue(trailer));
    }
}
