using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Switch.Grpc.Client;
using Switch.Grpc.Framing;
using Switch.Grpc.Health;
using Switch.Grpc.Health.V1;
using Switch.Grpc.Reflection;
using Switch.Grpc.Reflection.V1;
using Switch.Grpc.Server;
using Switch.Grpc.Tests.Interop;
using ServingStatus = Switch.Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace Switch.Grpc.Tests;

/// <summary>Health, reflection and gzip on our server, called by our client (and raw HTTP/2 where our client would not go).</summary>
public sealed class StandardServicesTests : IAsyncLifetime
{
    private readonly InteropService _service = new();
    private readonly HealthService _health = new([InteropMethods.Service]);
    private GrpcServer _server = null!;
    private GrpcChannel _channel = null!;

    public const int MaxMessageBytes = 64 * 1024;

    public async Task InitializeAsync()
    {
        var reflection = new ReflectionService([InteropReflection.Descriptor.Services[0], HealthService.Descriptor]);
        var options = new GrpcServerOptions { MaxReceiveMessageBytes = MaxMessageBytes, CompressResponses = true };
        var router = reflection.Map(_health.Map(_service.Map(new GrpcRouter(options))));
        _server = await GrpcServer.StartAsync(router, new GrpcEndpointOptions { Address = IPAddress.Loopback, Port = 0 }).Bounded();
        _channel = GrpcChannel.ForAddress(_server.Address);
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        _health.Close();
        await _server.DisposeAsync();
    }

    // ---- health ----

    [Fact]
    public async Task Check_answers_the_set_status_and_not_found_for_an_unknown_service()
    {
        Assert.Equal(ServingStatus.NotServing, (await _channel.UnaryAsync(HealthService.Check, new HealthCheckRequest()).Bounded()).Status);
        _health.SetAll(ServingStatus.Serving);
        Assert.Equal(ServingStatus.Serving, (await _channel.UnaryAsync(HealthService.Check, new HealthCheckRequest { Service = InteropMethods.Service }).Bounded()).Status);
        var e = await TestUtil.ExpectStatus(StatusCode.NotFound,
            () => _channel.UnaryAsync(HealthService.Check, new HealthCheckRequest { Service = "no.such.Service" }));
        Assert.StartsWith("NOT_FOUND", e.Status.Detail);
    }

    [Fact]
    public async Task Watch_sends_the_status_then_every_change_and_ends_unavailable_on_close()
    {
        using var call = _channel.ServerStreaming(HealthService.Watch, new HealthCheckRequest { Service = InteropMethods.Service });
        Assert.Equal(ServingStatus.NotServing, (await call.ResponseStream.ReadAsync().Bounded())!.Status);
        _health.SetAll(ServingStatus.Serving);
        Assert.Equal(ServingStatus.Serving, (await call.ResponseStream.ReadAsync().Bounded())!.Status);
        _health.SetAll(ServingStatus.Serving); // no change, no message
        _health.Close();
        Assert.Equal(ServingStatus.NotServing, (await call.ResponseStream.ReadAsync().Bounded())!.Status);
        await TestUtil.ExpectStatus(StatusCode.Unavailable, () => call.ResponseStream.ReadAsync().AsTask());
    }

    [Fact]
    public async Task Watch_of_an_unknown_service_says_service_unknown_and_stays_open()
    {
        using var call = _channel.ServerStreaming(HealthService.Watch, new HealthCheckRequest { Service = "no.such.Service" });
        Assert.Equal(ServingStatus.ServiceUnknown, (await call.ResponseStream.ReadAsync().Bounded())!.Status);
        _health.SetAll(ServingStatus.Serving);
        var next = call.ResponseStream.ReadAsync().AsTask();
        Assert.False(await Task.WhenAny(next, Task.Delay(300)) == next, "an unknown service's watch got a status change");
    }

    // ---- reflection ----

    private async Task<List<ServerReflectionResponse>> ReflectAsync(GrpcMethod<ServerReflectionRequest, ServerReflectionResponse> method,
        params ServerReflectionRequest[] requests)
    {
        using var call = _channel.DuplexStreaming(method);
        foreach (var r in requests) await call.RequestStream.WriteAsync(r);
        await call.RequestStream.CompleteAsync().Bounded();
        var answers = new List<ServerReflectionResponse>();
        while (await call.ResponseStream.ReadAsync().Bounded() is { } answer) answers.Add(answer);
        return answers;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Reflection_lists_every_service_and_describes_them_by_symbol_and_by_file(bool v1)
    {
        var method = v1 ? ReflectionService.V1Info : ReflectionService.V1AlphaInfo;
        var answers = await ReflectAsync(method,
            new ServerReflectionRequest { ListServices = "*" },
            new ServerReflectionRequest { FileContainingSymbol = "switch.interop.Interop.Bidi" },
            new ServerReflectionRequest { FileContainingSymbol = "grpc.health.v1.HealthCheckResponse.ServingStatus" },
            new ServerReflectionRequest { FileByFilename = "grpc/health/v1/health.proto" },
            new ServerReflectionRequest { FileContainingSymbol = "no.Such" },
            new ServerReflectionRequest());
        Assert.Equal(6, answers.Count);
        Assert.Equal(
            ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection", "switch.interop.Interop"],
            answers[0].ListServicesResponse.Service.Select(s => s.Name));

        var interop = FileDescriptorProto.Parser.ParseFrom(answers[1].FileDescriptorResponse.FileDescriptorProto[0]);
        Assert.Equal("switch.interop", interop.Package);
        Assert.Equal(["Unary", "ServerStream", "ClientStream", "Bidi"], interop.Service[0].Method.Select(m => m.Name));
        Assert.True(interop.Service[0].Method[3].ClientStreaming && interop.Service[0].Method[3].ServerStreaming);

        Assert.Equal("grpc/health/v1/health.proto", FileDescriptorProto.Parser.ParseFrom(answers[2].FileDescriptorResponse.FileDescriptorProto[0]).Name);
        Assert.Equal("grpc.health.v1", FileDescriptorProto.Parser.ParseFrom(answers[3].FileDescriptorResponse.FileDescriptorProto[0]).Package);
        Assert.Equal((int)StatusCode.NotFound, answers[4].ErrorResponse.ErrorCode);
        Assert.Equal((int)StatusCode.InvalidArgument, answers[5].ErrorResponse.ErrorCode);
        Assert.Equal("no.Such", answers[4].OriginalRequest.FileContainingSymbol);
    }

    [Fact]
    public void Reflection_answers_a_file_with_every_file_it_imports_once()
    {
        // api.proto imports source_context.proto and type.proto; type.proto imports any.proto and source_context.proto again.
        var files = ReflectionService.FilesOf(Google.Protobuf.WellKnownTypes.ApiReflection.Descriptor).FileDescriptorProto
            .Select(b => FileDescriptorProto.Parser.ParseFrom(b).Name);
        Assert.Equal(["google/protobuf/api.proto", "google/protobuf/source_context.proto", "google/protobuf/type.proto",
            "google/protobuf/any.proto"], files);
    }

    // ---- compression ----

    [Fact]
    public async Task Gzip_requests_and_answers_every_call_shape()
    {
        using var channel = GrpcChannel.ForAddress(_server.Address, new GrpcChannelOptions { CompressRequests = true });
        var payload = ByteString.CopyFrom(new byte[20_000]); // compresses to almost nothing
        var unary = await channel.UnaryCallAsync(InteropMethods.Unary, new EchoRequest { Text = "z", Payload = payload }).Bounded();
        Assert.Equal(payload, unary.Message.Payload); // (grpc-encoding is reserved: the raw test below sees it on the wire)

        using var bidi = channel.DuplexStreaming(InteropMethods.Bidi);
        for (int i = 0; i < 100; i++) await bidi.RequestStream.WriteAsync(new EchoRequest { Text = "b" + i, Payload = payload });
        await bidi.RequestStream.CompleteAsync().Bounded();
        int n = 0;
        while (await bidi.ResponseStream.ReadAsync().Bounded() is { } reply) Assert.Equal("b" + n++, reply.Text);
        Assert.Equal(100, n);

        using var client = channel.ClientStreaming(InteropMethods.ClientStream);
        for (int i = 0; i < 10; i++) await client.RequestStream.WriteAsync(new EchoRequest { Payload = payload });
        await client.RequestStream.CompleteAsync().Bounded();
        Assert.Equal($"10:{10 * payload.Length}", (await client.ResponseAsync.Bounded()).Text);
    }

    [Fact]
    public async Task Our_client_really_sends_gzip()
    {
        // 1 MB of zeros passes the server's 64 KiB frame limit only compressed, and is refused once inflated.
        using var channel = GrpcChannel.ForAddress(_server.Address, new GrpcChannelOptions { CompressRequests = true });
        var e = await TestUtil.ExpectStatus(StatusCode.ResourceExhausted,
            () => channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { Payload = ByteString.CopyFrom(new byte[1_000_000]) }));
        Assert.Contains("after decompression", e.Status.Detail);
    }

    [Fact]
    public async Task Answers_stay_identity_for_a_server_that_does_not_allow_compression()
    {
        var router = _service.Map(new GrpcRouter(new GrpcServerOptions()));
        await using var plain = await GrpcServer.StartAsync(router, new GrpcEndpointOptions { Address = IPAddress.Loopback, Port = 0 }).Bounded();
        using var channel = GrpcChannel.ForAddress(plain.Address, new GrpcChannelOptions { CompressRequests = true });
        var result = await channel.UnaryCallAsync(InteropMethods.Unary, new EchoRequest { Text = "plain" }).Bounded();
        Assert.Equal("plain", result.Message.Text); // its gzip request was accepted
        var (headers, body) = await RawCallAsync(Frame(0, new EchoRequest { Text = new string('r', 2000) }.ToByteArray()), null, "gzip", plain.Address);
        Assert.False(headers.Contains("grpc-encoding"));
        Assert.Equal(0, body[0]);
    }

    private static byte[] Frame(byte flag, byte[] payload)
    {
        var frame = new byte[5 + payload.Length];
        frame[0] = flag;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)payload.Length);
        payload.CopyTo(frame, 5);
        return frame;
    }

    private static byte[] Gzip(byte[] plain)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.SmallestSize)) gzip.Write(plain);
        return output.ToArray();
    }

    private HttpRequestMessage RawRequest(byte[] body, string? encoding, string? acceptEncoding, Uri? server = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(server ?? _server.Address, InteropMethods.Unary.Path))
        {
            Content = new ByteArrayContent(body),
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Content.Headers.TryAddWithoutValidation("content-type", "application/grpc");
        request.Headers.TryAddWithoutValidation("te", "trailers");
        if (encoding is not null) request.Headers.TryAddWithoutValidation("grpc-encoding", encoding);
        if (acceptEncoding is not null) request.Headers.TryAddWithoutValidation("grpc-accept-encoding", acceptEncoding);
        return request;
    }

    private async Task<(int Status, string Message)> RawUnaryAsync(byte[] body, string? encoding)
    {
        using var http = TestUtil.RawHttp2Client();
        using var response = await http.SendAsync(RawRequest(body, encoding, null), HttpCompletionOption.ResponseContentRead).Bounded();
        HttpResponseHeaders where = response.Headers.Contains("grpc-status") ? response.Headers : response.TrailingHeaders;
        string message = where.TryGetValues("grpc-message", out var m) ? StatusMessageEncoding.Decode(m.First()) : "";
        return (int.Parse(where.GetValues("grpc-status").First()), message);
    }

    private async Task<(HttpResponseHeaders Headers, byte[] Body)> RawCallAsync(byte[] body, string? encoding, string? acceptEncoding, Uri? server = null)
    {
        using var http = TestUtil.RawHttp2Client();
        using var response = await http.SendAsync(RawRequest(body, encoding, acceptEncoding, server), HttpCompletionOption.ResponseContentRead).Bounded();
        byte[] bytes = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal("0", response.TrailingHeaders.GetValues("grpc-status").Single());
        return (response.Headers, bytes);
    }

    [Fact]
    public async Task A_gzip_bomb_is_resource_exhausted_having_inflated_at_most_the_limit()
    {
        // 10 MB of zeros, about 10 KB compressed: under the 64 KiB frame limit, far over it inflated.
        var bomb = Gzip(new EchoRequest { Payload = ByteString.CopyFrom(new byte[10_000_000]) }.ToByteArray());
        Assert.True(bomb.Length < MaxMessageBytes);
        var (status, message) = await RawUnaryAsync(Frame(1, bomb), "gzip");
        Assert.Equal((int)StatusCode.ResourceExhausted, status);
        Assert.Contains("after decompression", message);
    }

    [Fact]
    public async Task Answers_are_gzip_framed_only_for_a_client_that_accepts_gzip()
    {
        byte[] body = Frame(0, new EchoRequest { Text = new string('r', 2000) }.ToByteArray());
        var (accepting, acceptingBody) = await RawCallAsync(body, null, "identity, gzip");
        Assert.Equal("gzip", accepting.GetValues("grpc-encoding").Single());
        Assert.Equal(1, acceptingBody[0]); // compressed flag
        Assert.True(acceptingBody.Length < 200);
        var (plain, plainBody) = await RawCallAsync(body, null, null);
        Assert.False(plain.Contains("grpc-encoding"));
        Assert.Equal(0, plainBody[0]);
    }

    [Fact]
    public async Task A_compressed_frame_without_an_encoding_is_internal_and_corrupt_gzip_is_internal()
    {
        var gz = Gzip(new EchoRequest { Text = "x" }.ToByteArray());
        Assert.Equal((int)StatusCode.Internal, (await RawUnaryAsync(Frame(1, gz), null)).Status);
        gz[^5] ^= 0xFF; // the length/CRC trailer no longer matches
        var (status, message) = await RawUnaryAsync(Frame(1, gz[..^3].Concat(new byte[] { 1, 2, 3 }).ToArray()), "gzip");
        Assert.Equal((int)StatusCode.Internal, status);
        Assert.Contains("decompress", message);
        // An uncompressed frame in a gzip call is fine: the flag says per message.
        Assert.Equal(0, (await RawUnaryAsync(Frame(0, new EchoRequest { Text = "y" }.ToByteArray()), "gzip")).Status);
    }

    [Fact]
    public void Gzip_round_trips_through_the_frame_reader_and_writer()
    {
        var writer = new ArrayBufferWriter<byte>();
        var message = new EchoRequest { Text = new string('a', 5000) };
        int written = GzipMessages.Write(writer, message, int.MaxValue);
        Assert.True(written < 200);
        var buffer = new ReadOnlySequence<byte>(writer.WrittenMemory);
        Assert.True(GrpcFrame.TryRead(ref buffer, 1000, out var payload, out bool compressed));
        Assert.True(compressed);
        Assert.Equal(message, GzipMessages.Parse(payload, EchoRequest.Parser, 10_000));
        var e = Assert.Throws<RpcException>(() => GzipMessages.Parse(payload, EchoRequest.Parser, 4_000));
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
    }
}
