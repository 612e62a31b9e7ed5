using System.Net;
using System.Text.Json;
using Google.Protobuf;
using Switch.Grpc.Client;
using Switch.Grpc.Server;
using Switch.Grpc.Tests.Interop;

namespace Switch.Grpc.Tests;

/// <summary>grpc-js client against our server, and our client against the grpc-js server.</summary>
public sealed class InteropTests : IClassFixture<NodeInteropFixture>, IAsyncLifetime
{
    private readonly NodeInteropFixture _node;
    private readonly InteropService _service = new();
    private GrpcServer _server = null!;

    public InteropTests(NodeInteropFixture node) => _node = node;

    public async Task InitializeAsync()
    {
        var router = _service.Map(new GrpcRouter(_service.Options(maxReceiveMessageBytes: 2 * 1024 * 1024)));
        _server = await GrpcServer.StartAsync(router, new GrpcEndpointOptions { Address = IPAddress.Loopback, Port = 0 }).Bounded();
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private Task<JsonElement> TheirClient(string scenario) => _node.RunClientAsync($"127.0.0.1:{_server.Port}", scenario);

    private GrpcChannel OurClient(GrpcChannelOptions? options = null) => GrpcChannel.ForAddress("http://" + _node.ServerTarget, options);

    private static int Code(JsonElement r) => PeerChecks.Code(r);

    // ---- their client, our server ----

    [Fact]
    public async Task Their_unary_with_metadata()
    {
        var r = await TheirClient("unary");
        Assert.True(r.GetProperty("ok").GetBoolean(), r.ToString());
        Assert.Equal("hello from node", r.GetProperty("text").GetString());
        Assert.Equal("from-node", r.GetProperty("echo").GetString());
    }

    [Fact]
    public async Task Their_bidi_streaming_thousands()
    {
        var r = await TheirClient("bidi");
        Assert.True(r.GetProperty("ok").GetBoolean(), r.ToString());
        Assert.Equal(5000, r.GetProperty("count").GetInt32());
        Assert.True(r.GetProperty("inOrder").GetBoolean());
    }

    [Fact]
    public async Task Their_bidi_error_mid_stream()
    {
        var r = await TheirClient("bidi_error");
        Assert.Equal((int)StatusCode.FailedPrecondition, Code(r));
        Assert.Equal("precondition failed: b", r.GetProperty("details").GetString());
    }

    [Fact]
    public async Task Their_server_streaming()
    {
        var r = await TheirClient("server_stream");
        Assert.True(r.GetProperty("ok").GetBoolean(), r.ToString());
        Assert.Equal(1000, r.GetProperty("count").GetInt32());
    }

    [Fact]
    public async Task Their_deadline_is_enforced_by_our_server()
    {
        await PeerChecks.TheirDeadlineEnforcedAsync(await TheirClient("deadline"), _service);
    }

    [Fact]
    public async Task Their_client_sees_our_status_message_and_trailers()
    {
        var r = await TheirClient("error");
        Assert.Equal((int)StatusCode.NotFound, Code(r));
        Assert.Equal("no such account: Zürich 100%", r.GetProperty("details").GetString());
        Assert.Equal("yes", r.GetProperty("failTrailer").GetString());
    }

    [Fact]
    public async Task Their_client_sees_unknown_for_a_crashing_handler()
    {
        var r = await TheirClient("unknown_exception");
        Assert.Equal((int)StatusCode.Unknown, Code(r));
        Assert.DoesNotContain("secret", r.GetProperty("details").GetString());
    }

    [Fact]
    public async Task Their_1MB_message_both_ways()
    {
        var r = await TheirClient("large_ok");
        Assert.True(r.GetProperty("ok").GetBoolean(), r.ToString());
        Assert.Equal(1024 * 1024, r.GetProperty("payloadBytes").GetInt32());
    }

    [Fact]
    public async Task Their_message_over_our_max_is_resource_exhausted()
    {
        var r = await TheirClient("large_over");
        Assert.Equal((int)StatusCode.ResourceExhausted, Code(r));
    }

    // ---- our client, their server ----

    [Fact]
    public async Task Our_unary_with_metadata()
    {
        using var channel = OurClient();
        await PeerChecks.OurUnaryWithMetadataAsync(channel);
    }

    [Fact]
    public async Task Our_bidi_streaming_thousands_with_batched_writes()
    {
        const int count = 10_000;
        using var channel = OurClient();
        using var call = channel.DuplexStreaming(InteropMethods.Bidi);
        var writer = Task.Run(async () =>
        {
            for (int i = 0; i < count; i++)
                await call.RequestStream.WriteAsync(new EchoRequest { Text = "b" + i }); // Auto-flushes at the buffer bound.
            await call.RequestStream.CompleteAsync();
        });
        int received = 0;
        await foreach (var reply in call.ResponseStream.ReadAllAsync().WithCancellation(new CancellationTokenSource(TestUtil.Bound).Token))
        {
            Assert.Equal(received, reply.Index);
            Assert.Equal("b" + received, reply.Text);
            received++;
        }
        await writer.Bounded();
        Assert.Equal(count, received);
        Assert.Equal(StatusCode.OK, call.GetStatus().Code);
    }

    [Fact]
    public async Task Our_server_streaming()
    {
        using var channel = OurClient();
        using var call = channel.ServerStreaming(InteropMethods.ServerStream, new EchoRequest { Count = 2000 });
        int n = 0;
        await foreach (var reply in call.ResponseStream.ReadAllAsync().WithCancellation(new CancellationTokenSource(TestUtil.Bound).Token))
            Assert.Equal(n++, reply.Index);
        Assert.Equal(2000, n);
    }

    [Fact]
    public async Task Our_client_reads_their_error_status_and_trailers()
    {
        using var channel = OurClient();
        var e = await TestUtil.ExpectStatus(StatusCode.PermissionDenied, () =>
            channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { FailCode = 7, FailMessage = "denied: ü 50%" }));
        Assert.Equal("denied: ü 50%", e.Status.Detail);
        Assert.Equal("yes", e.Trailers.GetValue("x-fail"));
    }

    [Fact]
    public async Task Our_client_reads_their_streaming_error_after_messages()
    {
        using var channel = OurClient();
        using var call = channel.ServerStreaming(InteropMethods.ServerStream, new EchoRequest { Count = 3, FailCode = 10, FailMessage = "aborted" });
        int n = 0;
        var e = await TestUtil.ExpectStatus(StatusCode.Aborted, async () =>
        {
            await foreach (var _ in call.ResponseStream.ReadAllAsync()) n++;
        });
        Assert.Equal(3, n);
        Assert.Equal("aborted", e.Status.Detail);
    }

    [Fact]
    public async Task Our_deadline_against_their_server()
    {
        using var channel = OurClient();
        await PeerChecks.OurDeadlineAsync(channel);
    }

    [Fact]
    public async Task Our_large_messages_against_their_limits()
    {
        using var channel = OurClient(new GrpcChannelOptions { MaxReceiveMessageBytes = 512 * 1024 });
        var ok = await channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { Payload = ByteString.CopyFrom(new byte[1024 * 1024]), ReplyBytes = 100 }).Bounded();
        Assert.Equal(100, ok.Payload.Length);
        await TestUtil.ExpectStatus(StatusCode.ResourceExhausted, () => // Over their 2 MB receive limit.
            channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { Payload = ByteString.CopyFrom(new byte[3 * 1024 * 1024]) }));
        await TestUtil.ExpectStatus(StatusCode.ResourceExhausted, () => // Over our 512 KB receive limit.
            channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { ReplyBytes = 1024 * 1024 }));
    }

    [Fact]
    public async Task Our_client_gets_unimplemented_from_them()
    {
        using var channel = OurClient();
        await TestUtil.ExpectStatus(StatusCode.Unimplemented, () => channel.UnaryAsync(InteropMethods.Missing, new EchoRequest()));
    }
}
