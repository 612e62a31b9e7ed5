using System.Buffers.Binary;
using System.Net;
using System.Text.Json;
using Google.Protobuf;
using Switch.Grpc.Client;
using Switch.Grpc.Health;
using Switch.Grpc.Reflection;
using Switch.Grpc.Server;
using Switch.Grpc.Tests.Interop;
using ServingStatus = Switch.Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace Switch.Grpc.Tests;

/// <summary>grpc C-core (python3-grpcio) client against our server, and our client against the C-core server.</summary>
public sealed class PythonInteropTests : IClassFixture<PythonInteropFixture>, IAsyncLifetime
{
    private const int MaxReceiveBytes = 2 * 1024 * 1024;
    private readonly PythonInteropFixture _peer;
    private readonly InteropService _service = new();
    private readonly HealthService _health = new([InteropMethods.Service], ServingStatus.Serving);
    private GrpcServer _server = null!;

    public PythonInteropTests(PythonInteropFixture peer) => _peer = peer;

    public async Task InitializeAsync()
    {
        var reflection = new ReflectionService([InteropReflection.Descriptor.Services[0], HealthService.Descriptor]);
        var options = new GrpcServerOptions
        {
            MaxReceiveMessageBytes = MaxReceiveBytes,
            CompressResponses = true,
            OnHandlerException = (_, e) => { lock (_service.HandlerExceptions) _service.HandlerExceptions.Add(e); },
        };
        var router = reflection.Map(_health.Map(_service.Map(new GrpcRouter(options))));
        _server = await GrpcServer.StartAsync(router, new GrpcEndpointOptions { Address = IPAddress.Loopback, Port = 0 }).Bounded();
    }

    public async Task DisposeAsync()
    {
        _health.Close();
        await _server.DisposeAsync();
    }

    private Task<JsonElement> TheirClient(string scenario, Func<JsonElement, Task>? onLine = null) =>
        _peer.RunClientAsync($"127.0.0.1:{_server.Port}", scenario, onLine);

    private GrpcChannel OurClient(GrpcChannelOptions? options = null) => GrpcChannel.ForAddress("http://" + _peer.ServerTarget, options);

    private static int Code(JsonElement r) => PeerChecks.Code(r);

    private static void Ok(JsonElement r) => Assert.True(r.GetProperty("ok").GetBoolean(), r.ToString());

    // ---- their client, our server ----

    [PythonInteropFact]
    public async Task Their_unary_with_metadata()
    {
        var r = await TheirClient("unary");
        Ok(r);
        Assert.Equal("hello from c-core", r.GetProperty("text").GetString());
        Assert.Equal("from-c-core", r.GetProperty("echo").GetString());
    }

    [PythonInteropFact]
    public async Task Their_three_stream_shapes()
    {
        var server = await TheirClient("server_stream");
        Ok(server);
        Assert.Equal(1000, server.GetProperty("count").GetInt32());
        Assert.True(server.GetProperty("inOrder").GetBoolean());

        var client = await TheirClient("client_stream");
        Ok(client);
        Assert.Equal("500:50000", client.GetProperty("text").GetString());

        var bidi = await TheirClient("bidi");
        Ok(bidi);
        Assert.Equal(5000, bidi.GetProperty("count").GetInt32());
        Assert.True(bidi.GetProperty("inOrder").GetBoolean());

        var error = await TheirClient("bidi_error");
        Assert.Equal((int)StatusCode.FailedPrecondition, Code(error));
        Assert.Equal("precondition failed: b", error.GetProperty("details").GetString());
    }

    [PythonInteropFact]
    public async Task Their_deadline_is_enforced_by_our_server()
    {
        await PeerChecks.TheirDeadlineEnforcedAsync(await TheirClient("deadline"), _service);
    }

    [PythonInteropFact]
    public async Task Their_client_reads_every_status_we_send_with_its_message_and_trailers()
    {
        var r = await TheirClient("statuses");
        var results = r.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(16, results.Count);
        foreach (var x in results)
        {
            int code = x.GetProperty("code").GetInt32();
            string message = $"status {code}: ü 100%";
            Assert.True(code == x.GetProperty("unaryCode").GetInt32(), x.ToString());
            Assert.Equal(message, x.GetProperty("unaryDetails").GetString());
            Assert.Equal("yes", x.GetProperty("failTrailer").GetString());
            Assert.True(code == x.GetProperty("streamCode").GetInt32(), x.ToString());
            Assert.Equal(message, x.GetProperty("streamDetails").GetString());
            Assert.Equal(2, x.GetProperty("streamMessages").GetInt32()); // the messages before the status arrive first
        }
    }

    [PythonInteropFact]
    public async Task Their_gzip_channel_is_served_and_answered_in_gzip()
    {
        var r = await TheirClient("gzip");
        Ok(r);
        Assert.Equal(1024 * 1024, r.GetProperty("payloadBytes").GetInt32());
        Assert.Equal(1000, r.GetProperty("bidi").GetInt32());

        // Proof that their messages arrive compressed and we inflate them, bounded: 3 MiB of zeros passes our 2 MiB frame
        // limit only in gzip, and is refused once inflated past it.
        var over = await TheirClient("gzip_over");
        Assert.Equal((int)StatusCode.ResourceExhausted, Code(over));
        Assert.Contains("after decompression", over.GetProperty("details").GetString());
    }

    [PythonInteropFact]
    public async Task Their_health_checks_and_watch()
    {
        var r = await TheirClient("health", async line =>
        {
            Assert.Equal((int)ServingStatus.Serving, line.GetProperty("watching").GetInt32());
            _health.SetAll(ServingStatus.NotServing);
            await Task.CompletedTask;
        });
        Ok(r);
        Assert.Equal((int)ServingStatus.Serving, r.GetProperty("overall").GetInt32());
        Assert.Equal((int)ServingStatus.Serving, r.GetProperty("service").GetInt32());
        Assert.Equal((int)StatusCode.NotFound, r.GetProperty("unknownCode").GetInt32());
        Assert.Equal((int)ServingStatus.NotServing, r.GetProperty("watchSecond").GetInt32());
    }

    [PythonInteropTheory]
    [InlineData("reflection_v1")]
    [InlineData("reflection_v1alpha")]
    public async Task Their_client_lists_describes_and_calls_through_reflection(string scenario)
    {
        var r = await TheirClient(scenario);
        Ok(r);
        Assert.Equal(["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection", InteropMethods.Service],
            r.GetProperty("services").EnumerateArray().Select(s => s.GetString()));
        Assert.Equal(["Unary", "ServerStream", "ClientStream", "Bidi"],
            r.GetProperty("methods").GetProperty(InteropMethods.Service).EnumerateArray().Select(s => s.GetString()));
        Assert.Equal(["Check", "Watch"], r.GetProperty("methods").GetProperty("grpc.health.v1.Health").EnumerateArray().Select(s => s.GetString()));
        Assert.Equal((int)StatusCode.NotFound, r.GetProperty("missingFileCode").GetInt32());
        Assert.Equal("interop/interop.proto", r.GetProperty("lastFile").GetString());
        Assert.Equal("described", r.GetProperty("text").GetString()); // called with types built from the reflected files alone
    }

    // ---- our client, their server ----

    [PythonInteropFact]
    public async Task Our_unary_with_metadata()
    {
        using var channel = OurClient();
        await PeerChecks.OurUnaryWithMetadataAsync(channel);
    }

    [PythonInteropFact]
    public async Task Our_three_stream_shapes()
    {
        using var channel = OurClient();
        using (var call = channel.ServerStreaming(InteropMethods.ServerStream, new EchoRequest { Count = 2000 }))
        {
            int n = 0;
            while (await call.ResponseStream.ReadAsync().Bounded() is { } reply) Assert.Equal(n++, reply.Index);
            Assert.Equal(2000, n);
        }
        using (var call = channel.ClientStreaming(InteropMethods.ClientStream))
        {
            for (int i = 0; i < 300; i++) await call.RequestStream.WriteAsync(new EchoRequest { Payload = ByteString.CopyFrom(new byte[10]) });
            await call.RequestStream.CompleteAsync().Bounded();
            Assert.Equal("300:3000", (await call.ResponseAsync.Bounded()).Text);
        }
        using (var call = channel.DuplexStreaming(InteropMethods.Bidi))
        {
            var writer = Task.Run(async () =>
            {
                for (int i = 0; i < 5000; i++) await call.RequestStream.WriteAsync(new EchoRequest { Text = "b" + i });
                await call.RequestStream.CompleteAsync();
            });
            int n = 0;
            while (await call.ResponseStream.ReadAsync().Bounded() is { } reply) Assert.Equal("b" + n++, reply.Text);
            await writer.Bounded();
            Assert.Equal(5000, n);
        }
    }

    [PythonInteropFact]
    public async Task Our_deadline_against_their_server()
    {
        using var channel = OurClient();
        await PeerChecks.OurDeadlineAsync(channel);
    }

    [PythonInteropFact]
    public async Task Our_client_reads_every_status_they_send()
    {
        using var channel = OurClient();
        for (int code = 1; code <= 16; code++)
        {
            string message = $"status {code}: ü 100%";
            var e = await TestUtil.ExpectStatus((StatusCode)code, () =>
                channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { FailCode = code, FailMessage = message }));
            Assert.Equal(message, e.Status.Detail);
            Assert.Equal("yes", e.Trailers.GetValue("x-fail"));

            using var call = channel.ServerStreaming(InteropMethods.ServerStream, new EchoRequest { Count = 2, FailCode = code, FailMessage = message });
            int n = 0;
            var streamed = await TestUtil.ExpectStatus((StatusCode)code, async () =>
            {
                while (await call.ResponseStream.ReadAsync() is not null) n++;
            });
            Assert.Equal(2, n);
            Assert.Equal(message, streamed.Status.Detail);
        }
        await TestUtil.ExpectStatus(StatusCode.Unimplemented, () => channel.UnaryAsync(InteropMethods.Missing, new EchoRequest()));
    }

    [PythonInteropFact]
    public async Task Their_server_answers_in_gzip_and_takes_our_gzip()
    {
        // On the wire: C-core compresses its answer when the client accepts gzip (as our client always says).
        using (var http = TestUtil.RawHttp2Client())
        {
            var body = new byte[5 + new EchoRequest { ReplyBytes = 10_000 }.CalculateSize()];
            BinaryPrimitives.WriteUInt32BigEndian(body.AsSpan(1), (uint)(body.Length - 5));
            new EchoRequest { ReplyBytes = 10_000 }.WriteTo(body.AsSpan(5));
            using var request = new HttpRequestMessage(HttpMethod.Post, $"http://{_peer.ServerTarget}{InteropMethods.Unary.Path}")
            {
                Content = new ByteArrayContent(body),
                Version = HttpVersion.Version20,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            };
            request.Content.Headers.TryAddWithoutValidation("content-type", "application/grpc");
            request.Headers.TryAddWithoutValidation("te", "trailers");
            request.Headers.TryAddWithoutValidation("grpc-accept-encoding", "identity,gzip");
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead).Bounded();
            byte[] answer = await response.Content.ReadAsByteArrayAsync();
            Assert.Equal("gzip", response.Headers.GetValues("grpc-encoding").Single());
            Assert.Equal(1, answer[0]);
            Assert.True(answer.Length < 1000, $"{answer.Length} bytes for 10,000 zeros");
        }
        // Our client reads such answers, and sends its own requests in gzip.
        using var channel = OurClient(new GrpcChannelOptions { CompressRequests = true });
        var reply = await channel.UnaryAsync(InteropMethods.Unary,
            new EchoRequest { Text = "gz", Payload = ByteString.CopyFrom(new byte[1024 * 1024]) }).Bounded();
        Assert.Equal("gz", reply.Text);
        Assert.Equal(1024 * 1024, reply.Payload.Length);
        using var bidi = channel.DuplexStreaming(InteropMethods.Bidi);
        for (int i = 0; i < 200; i++) await bidi.RequestStream.WriteAsync(new EchoRequest { Text = "g" + i, ReplyBytes = 2000 });
        await bidi.RequestStream.CompleteAsync().Bounded();
        int n = 0;
        while (await bidi.ResponseStream.ReadAsync().Bounded() is { } r)
        {
            Assert.Equal(2000, r.Payload.Length);
            n++;
        }
        Assert.Equal(200, n);
    }
}

/// <summary>A theory against the C-core peer; skipped like <see cref="PythonInteropFactAttribute"/>.</summary>
public sealed class PythonInteropTheoryAttribute : TheoryAttribute
{
    public PythonInteropTheoryAttribute()
    {
        Skip = PythonGrpc.SkipReason;
    }
}
