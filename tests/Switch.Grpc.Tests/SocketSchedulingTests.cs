using System.Net;
using Google.Protobuf;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;
using Switch.Grpc.Client;
using Switch.Grpc.Server;
using Switch.Grpc.Tests.Interop;

namespace Switch.Grpc.Tests;

/// <summary>
/// The server's socket scheduling (<see cref="GrpcEndpointOptions.InlineSocketScheduling"/>): off by default, and either
/// way every call over real sockets gets its own answer, many at once on one connection, large messages and streams
/// included (the inline path runs Kestrel's framing and sends on the thread whose socket operation completed).
/// </summary>
public sealed class SocketSchedulingTests
{
    [Fact]
    public void Inline_scheduling_is_off_by_default()
    {
        Assert.False(new GrpcEndpointOptions().InlineSocketScheduling);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Concurrent_unary_and_streaming_calls_on_one_connection_each_get_their_own_answers(bool inline)
    {
        var service = new InteropService();
        await using GrpcServer server = await GrpcServer.StartAsync(service.Map(new GrpcRouter(service.Options())),
            new GrpcEndpointOptions { Address = IPAddress.Loopback, Port = 0, InlineSocketScheduling = inline }).Bounded();
        Assert.Equal(inline, server.HostService<IOptions<SocketTransportOptions>>().Value.UnsafePreferInlineScheduling);
        using GrpcChannel channel = GrpcChannel.ForAddress(server.Address);

        const int Calls = 256;
        Task[] unary = Enumerable.Range(0, Calls).Select(i => Task.Run(async () =>
        {
            // Every eighth call carries a message larger than a socket read and an HTTP/2 frame: framing across reads.
            var payload = ByteString.CopyFrom(new byte[i % 8 == 0 ? 100_000 : 16]);
            EchoReply reply = await channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { Text = $"call-{i}", Payload = payload });
            Assert.Equal($"call-{i}", reply.Text);
            Assert.Equal(payload.Length, reply.Payload.Length);
        })).ToArray();
        Task streamed = Task.Run(async () =>
        {
            using ServerStreamingCall<EchoReply> call = channel.ServerStreaming(InteropMethods.ServerStream, new EchoRequest { Text = "s", Count = 500 });
            int n = 0;
            while (await call.ResponseStream.ReadAsync() is { } reply) Assert.Equal(n++, reply.Index);
            Assert.Equal(500, n);
        });
        await Task.WhenAll(unary.Append(streamed)).Bounded();
        Assert.Empty(service.HandlerExceptions);
    }
}
