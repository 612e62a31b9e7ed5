using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;
using Switch.Grpc.Client;
using Switch.Grpc.Server;
using Switch.Grpc.Tests.Interop;

namespace Switch.Grpc.Tests;

/// <summary>Our client against our server over real loopback sockets (cleartext HTTP/2, prior knowledge).</summary>
public sealed class LoopbackTests : IAsyncLifetime
{
    private readonly InteropService _service = new();
    private GrpcServer _server = null!;
    private GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        var router = _service.Map(new GrpcRouter(_service.Options(maxReceiveMessageBytes: 2 * 1024 * 1024)));
        _server = await GrpcServer.StartAsync(router, new GrpcEndpointOptions { Address = IPAddress.Loopback, Port = 0 }).Bounded();
        _channel = GrpcChannel.ForAddress(_server.Address);
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task Unary_round_trip()
    {
        var reply = await _channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { Text = "hello", Payload = ByteString.CopyFromUtf8("abc") }).Bounded();
        Assert.Equal("hello", reply.Text);
        Assert.Equal("abc", reply.Payload.ToStringUtf8());
    }

    [Fact]
    public async Task Many_concurrent_unary_calls_share_the_channel()
    {
        var calls = Enumerable.Range(0, 500).Select(async i =>
        {
            var reply = await _channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { Text = "c" + i });
            Assert.Equal("c" + i, reply.Text);
        });
        await Task.WhenAll(calls).Bounded();
    }

    [Fact]
    public async Task Server_streaming_delivers_every_message_then_ok()
    {
        using var call = _channel.ServerStreaming(InteropMethods.ServerStream, new EchoRequest { Text = "s", Count = 5000 });
        int expected = 0;
        await foreach (var reply in call.ResponseStream.ReadAllAsync().WithCancellation(new CancellationTokenSource(TestUtil.Bound).Token))
            Assert.Equal(expected++, reply.Index);
        Assert.Equal(5000, expected);
        Assert.Equal(StatusCode.OK, call.GetStatus().Code);
    }

    [Fact]
    public async Task Server_streaming_with_zero_messages_ends_ok()
    {
        using var call = _channel.ServerStreaming(InteropMethods.ServerStream, new EchoRequest { Count = 0 });
        Assert.Null(await call.ResponseStream.ReadAsync().Bounded());
        Assert.Equal(StatusCode.OK, call.GetStatus().Code);
    }

    [Fact]
    public async Task Server_streaming_error_after_messages_arrives_after_them()
    {
        using var call = _channel.ServerStreaming(InteropMethods.ServerStream,
            new EchoRequest { Count = 3, FailCode = (int)StatusCode.Aborted, FailMessage = "stopped after 3" });
        for (int i = 0; i < 3; i++) Assert.Equal(i, (await call.ResponseStream.ReadAsync().Bounded())!.Index);
        var e = await TestUtil.ExpectStatus(StatusCode.Aborted, () => call.ResponseStream.ReadAsync().AsTask());
        Assert.Equal("stopped after 3", e.Status.Detail);
    }

    [Fact]
    public async Task Client_streaming_sums_the_requests()
    {
        using var call = _channel.ClientStreaming(InteropMethods.ClientStream);
        for (int i = 0; i < 1000; i++)
            await call.RequestStream.WriteAsync(new EchoRequest { Payload = ByteString.CopyFrom(new byte[10]) });
        await call.RequestStream.CompleteAsync().Bounded();
        var reply = await call.ResponseAsync.Bounded();
        Assert.Equal("1000:10000", reply.Text);
    }

    [Fact]
    public async Task Bidi_streaming_with_batched_writes_echoes_thousands_in_order()
    {
        const int count = 20_000;
        using var call = _channel.DuplexStreaming(InteropMethods.Bidi);
        var writer = Task.Run(async () =>
        {
            for (int i = 0; i < count; i++)
            {
                await call.RequestStream.WriteAsync(new EchoRequest { Text = i.ToString() });
                if (i % 256 == 255) await call.RequestStream.FlushAsync(); // Batches: one flush per 256 messages.
            }
            await call.RequestStream.CompleteAsync();
        });
        int received = 0;
        await foreach (var reply in call.ResponseStream.ReadAllAsync().WithCancellation(new CancellationTokenSource(TestUtil.Bound).Token))
        {
            Assert.Equal(received, reply.Index);
            Assert.Equal(received.ToString(), reply.Text);
            received++;
        }
        await writer.Bounded();
        Assert.Equal(count, received);
        Assert.Equal(StatusCode.OK, call.GetStatus().Code);
    }

    [Fact]
    public async Task Bidi_ping_pong_one_message_at_a_time()
    {
        using var call = _channel.DuplexStreaming(InteropMethods.Bidi);
        for (int i = 0; i < 50; i++)
        {
            await call.RequestStream.WriteAndFlushAsync(new EchoRequest { Text = "p" + i }).AsTask().Bounded();
            var reply = await call.ResponseStream.ReadAsync().Bounded();
            Assert.Equal("p" + i, reply!.Text);
        }
        await call.RequestStream.CompleteAsync().Bounded();
        Assert.Null(await call.ResponseStream.ReadAsync().Bounded());
    }

    [Fact]
    public async Task Error_status_message_and_trailers_reach_the_client()
    {
        const string detail = "no such account: Zürich 100% \n(closed)";
        var e = await TestUtil.ExpectStatus(StatusCode.NotFound, () =>
            _channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { FailCode = (int)StatusCode.NotFound, FailMessage = detail }));
        Assert.Equal(detail, e.Status.Detail);
        Assert.Equal("yes", e.Trailers.GetValue("x-fail"));
    }

    [Theory]
    [InlineData(StatusCode.InvalidArgument)]
    [InlineData(StatusCode.AlreadyExists)]
    [InlineData(StatusCode.PermissionDenied)]
    [InlineData(StatusCode.Unauthenticated)]
    [InlineData(StatusCode.Unavailable)]
    [InlineData(StatusCode.FailedPrecondition)]
    public async Task Each_status_code_survives_the_round_trip(StatusCode code)
    {
        await TestUtil.ExpectStatus(code, () => _channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { FailCode = (int)code, FailMessage = code.ToString() }));
    }

    [Fact]
    public async Task Handler_exception_is_unknown_without_details_and_the_server_keeps_serving()
    {
        var e = await TestUtil.ExpectStatus(StatusCode.Unknown, () => _channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { Text = "throw" }));
        Assert.DoesNotContain("secret", e.Status.Detail);
        lock (_service.HandlerExceptions) Assert.Contains(_service.HandlerExceptions, x => x.Message.Contains("secret"));
        Assert.Equal("after", (await _channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { Text = "after" }).Bounded()).Text);
    }

    [Fact]
    public async Task Deadline_exceeded_cancels_the_handler()
    {
        await TestUtil.ExpectStatus(StatusCode.DeadlineExceeded, () =>
            _channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { SleepMs = 60_000 }, new CallOptions { Timeout = TimeSpan.FromMilliseconds(200) }));
        await _service.HandlerCanceled.Task.Bounded();
    }

    [Fact]
    public async Task Deadline_already_passed_fails_without_calling()
    {
        await TestUtil.ExpectStatus(StatusCode.DeadlineExceeded, () =>
            _channel.UnaryAsync(InteropMethods.Unary, new EchoRequest(), new CallOptions { Deadline = DateTime.UtcNow.AddSeconds(-1) }));
    }

    [Fact]
    public async Task Server_answers_deadline_exceeded_itself_even_when_the_handler_ignores_its_token()
    {
        // Raw request: no client-side timer, so only the server can produce the status.
        using var http = TestUtil.RawHttp2Client();
        var request = RawRequest(InteropMethods.Unary.Path, Frame(new EchoRequest { Text = "ignore-token", SleepMs = 25_000 }));
        request.Headers.TryAddWithoutValidation("grpc-timeout", "300m");
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead).Bounded();
        Assert.Equal("4", GrpcStatusOf(response));
    }

    [Fact]
    public async Task Context_exposes_peer_deadline_and_method()
    {
        var reply = await _channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { Text = "context" }, new CallOptions { Timeout = TimeSpan.FromMinutes(5) }).Bounded();
        var parts = reply.Text.Split('|');
        Assert.StartsWith("ipv4:127.0.0.1:", parts[0]);
        var deadline = DateTime.Parse(parts[1], null, System.Globalization.DateTimeStyles.RoundtripKind);
        Assert.InRange(deadline, DateTime.UtcNow.AddMinutes(4), DateTime.UtcNow.AddMinutes(6));
        Assert.Equal(InteropMethods.Unary.Path, parts[2]);
    }

    [Fact]
    public async Task Cancellation_by_the_client_ends_the_call_and_the_handler()
    {
        using var cts = new CancellationTokenSource();
        using var call = _channel.DuplexStreaming(InteropMethods.Bidi, new CallOptions { CancellationToken = cts.Token });
        await call.RequestStream.WriteAndFlushAsync(new EchoRequest { Text = "one" }).AsTask().Bounded();
        Assert.Equal("one", (await call.ResponseStream.ReadAsync().Bounded())!.Text);
        await call.RequestStream.WriteAndFlushAsync(new EchoRequest { Text = "slow", SleepMs = 60_000 }).AsTask().Bounded();
        var read = call.ResponseStream.ReadAsync().AsTask();
        await _service.HandlerSleeping.Task.Bounded();
        cts.Cancel();
        await TestUtil.ExpectStatus(StatusCode.Cancelled, () => read);
        await _service.HandlerCanceled.Task.Bounded();
    }

    [Fact]
    public async Task Oversize_request_is_resource_exhausted()
    {
        await TestUtil.ExpectStatus(StatusCode.ResourceExhausted, () =>
            _channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { Payload = ByteString.CopyFrom(new byte[3 * 1024 * 1024]) }));
        // 1 MB is fine.
        var reply = await _channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { Payload = ByteString.CopyFrom(new byte[1024 * 1024]) }).Bounded();
        Assert.Equal(1024 * 1024, reply.Payload.Length);
    }

    [Fact]
    public async Task Oversize_response_is_resource_exhausted_on_the_client()
    {
        using var small = GrpcChannel.ForAddress(_server.Address, new GrpcChannelOptions { MaxReceiveMessageBytes = 1000 });
        await TestUtil.ExpectStatus(StatusCode.ResourceExhausted, () =>
            small.UnaryAsync(InteropMethods.Unary, new EchoRequest { ReplyBytes = 10_000 }));
        Assert.Equal("ok", (await small.UnaryAsync(InteropMethods.Unary, new EchoRequest { Text = "ok" }).Bounded()).Text);
    }

    [Fact]
    public async Task Request_above_the_client_send_limit_is_refused_before_sending()
    {
        using var small = GrpcChannel.ForAddress(_server.Address, new GrpcChannelOptions { MaxSendMessageBytes = 100 });
        await TestUtil.ExpectStatus(StatusCode.ResourceExhausted, () =>
            small.UnaryAsync(InteropMethods.Unary, new EchoRequest { Payload = ByteString.CopyFrom(new byte[200]) }));
    }

    [Fact]
    public async Task Metadata_round_trips_in_headers_and_trailers()
    {
        var headers = new Metadata().Add("x-echo", "abc-123").Add("x-echo-bin", new byte[] { 0, 1, 2, 255 });
        var result = await _channel.UnaryCallAsync(InteropMethods.Unary, new EchoRequest { Text = "m" }, new CallOptions { Headers = headers }).Bounded();
        Assert.Equal("abc-123", result.ResponseHeaders.GetValue("x-echo-header"));
        Assert.Equal("abc-123", result.Trailers.GetValue("x-echo"));
        Assert.Equal(new byte[] { 0, 1, 2, 255 }, result.Trailers.GetBytes("x-echo-bin"));
    }

    [Fact]
    public async Task Unknown_method_is_unimplemented()
    {
        await TestUtil.ExpectStatus(StatusCode.Unimplemented, () => _channel.UnaryAsync(InteropMethods.Missing, new EchoRequest()));
    }

    [Fact]
    public async Task Non_grpc_content_type_is_http_415()
    {
        using var http = TestUtil.RawHttp2Client();
        var request = RawRequest(InteropMethods.Unary.Path, Frame(new EchoRequest()), contentType: "application/json");
        using var response = await http.SendAsync(request).Bounded();
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
    }

    [Fact]
    public async Task Get_is_refused()
    {
        using var http = TestUtil.RawHttp2Client();
        using var response = await http.GetAsync(new Uri(_server.Address, InteropMethods.Unary.Path)).Bounded();
        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
    }

    [Fact]
    public async Task Compressed_frame_without_encoding_is_internal_and_unknown_encoding_is_unimplemented()
    {
        using var http = TestUtil.RawHttp2Client();
        byte[] frame = Frame(new EchoRequest { Text = "x" });
        frame[0] = 1;
        using (var response = await http.SendAsync(RawRequest(InteropMethods.Unary.Path, frame), HttpCompletionOption.ResponseContentRead).Bounded())
            Assert.Equal("13", GrpcStatusOf(response));

        // Compression spec: an encoding the server does not support is UNIMPLEMENTED, naming those it does.
        var snappy = RawRequest(InteropMethods.Unary.Path, frame);
        snappy.Headers.TryAddWithoutValidation("grpc-encoding", "snappy");
        using (var response = await http.SendAsync(snappy, HttpCompletionOption.ResponseContentRead).Bounded())
        {
            Assert.Equal("12", GrpcStatusOf(response));
            Assert.Equal("identity,gzip", response.Headers.GetValues("grpc-accept-encoding").Single());
        }
    }

    [Fact]
    public async Task Immediate_errors_are_trailers_only()
    {
        using var http = TestUtil.RawHttp2Client();
        using var response = await http.SendAsync(RawRequest(InteropMethods.Missing.Path, Frame(new EchoRequest())), HttpCompletionOption.ResponseContentRead).Bounded();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("12", response.Headers.GetValues("grpc-status").Single()); // In the headers: Trailers-Only.
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Streams_beyond_the_per_connection_limit_still_complete()
    {
        var router = new InteropService().Map(new GrpcRouter());
        await using var limited = await GrpcServer.StartAsync(router, new GrpcEndpointOptions { MaxStreamsPerConnection = 2 }).Bounded();
        // One connection: calls over the limit queue in the client. (With EnableMultipleHttp2Connections, a burst on a
        // fresh extra connection is occasionally aborted by SocketsHttpHandler before SETTINGS arrive: not asserted here.)
        foreach (bool multiple in new[] { false })
        {
            using var channel = GrpcChannel.ForAddress(limited.Address, new GrpcChannelOptions { EnableMultipleHttp2Connections = multiple });
            // Warm up: until the server's SETTINGS arrive a fresh connection may overrun the limit (refused streams).
            await channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { Text = "warm-up" }).Bounded();
            var calls = Enumerable.Range(0, 20).Select(i => channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { Text = "l" + i, SleepMs = 20 }));
            var replies = await Task.WhenAll(calls).Bounded();
            Assert.Equal(20, replies.Select(r => r.Text).Distinct().Count());
        }
    }

    [Fact]
    public async Task Unreachable_server_is_unavailable()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop(); // Now nothing listens there.
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        await TestUtil.ExpectStatus(StatusCode.Unavailable, () => channel.UnaryAsync(InteropMethods.Unary, new EchoRequest()));
    }

    private HttpRequestMessage RawRequest(string path, byte[] body, string contentType = "application/grpc")
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_server.Address, path))
        {
            Content = content,
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Headers.TryAddWithoutValidation("te", "trailers");
        return request;
    }

    private static byte[] Frame(EchoRequest message)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        Framing.GrpcFrame.Write(buffer, message, int.MaxValue);
        return buffer.WrittenSpan.ToArray();
    }

    private static string? GrpcStatusOf(HttpResponseMessage response) =>
        response.TrailingHeaders.TryGetValues("grpc-status", out var t) ? t.Single()
        : response.Headers.TryGetValues("grpc-status", out var h) ? h.Single() : null;
}
