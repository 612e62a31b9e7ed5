using System.Net;
using System.Text;
using Switch.Grpc.Client;
using Switch.Grpc.Framing;
using Switch.Grpc.Server;
using Switch.Grpc.Tests.Interop;

namespace Switch.Grpc.Tests;

/// <summary>A request stream written from the caller's own encoding (IMessageEncoder) over real loopback: the server
/// reads the messages as if they were message objects, plain and gzip, and a lying encoder fails the write.</summary>
public sealed class EncodedWriteTests : IAsyncLifetime
{
    private readonly InteropService _service = new();
    private GrpcServer _server = null!;

    public async Task InitializeAsync()
    {
        var router = _service.Map(new GrpcRouter(_service.Options(maxReceiveMessageBytes: 2 * 1024 * 1024)));
        _server = await GrpcServer.StartAsync(router, new GrpcEndpointOptions { Address = IPAddress.Loopback, Port = 0 }).Bounded();
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    /// <summary>An EchoRequest with only its text (field 1), encoded by hand; <paramref name="lie"/> sizes one byte more than it writes.</summary>
    private readonly struct TextEncoder(string text, bool lie = false) : IMessageEncoder
    {
        public int CalculateSize() => 2 + Encoding.UTF8.GetByteCount(text) + (lie ? 1 : 0);

        public int WriteTo(Span<byte> destination)
        {
            int bytes = Encoding.UTF8.GetBytes(text, destination[2..]);
            destination[0] = 1 << 3 | 2;
            destination[1] = (byte)bytes; // The tests' texts are under 128 bytes: a one-byte length.
            return 2 + bytes;
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Encoded_messages_reach_the_server_as_the_messages_they_encode(bool gzip)
    {
        using var channel = GrpcChannel.ForAddress(_server.Address, new GrpcChannelOptions { CompressRequests = gzip });
        using var call = channel.DuplexStreaming(InteropMethods.Bidi);
        const int count = 300;
        for (int i = 0; i < count; i++)
        {
            // Mixed with message objects on the same stream: both frame alike.
            if (i % 3 == 0) await call.RequestStream.WriteAsync(new EchoRequest { Text = "m" + i }).AsTask().Bounded();
            else await call.RequestStream.WriteEncodedAsync(new TextEncoder("é" + i)).AsTask().Bounded();
        }
        await call.RequestStream.CompleteAsync().Bounded();
        var texts = new List<string>();
        await foreach (var reply in call.ResponseStream.ReadAllAsync().WithCancellation(new CancellationTokenSource(TestUtil.Bound).Token))
            texts.Add(reply.Text);
        Assert.Equal(Enumerable.Range(0, count).Select(i => (i % 3 == 0 ? "m" : "é") + i), texts);
        Assert.Equal(StatusCode.OK, call.GetStatus().Code);
    }

    [Fact]
    public async Task An_encoder_that_writes_other_than_it_sized_fails_the_write()
    {
        using var channel = GrpcChannel.ForAddress(_server.Address);
        using var call = channel.DuplexStreaming(InteropMethods.Bidi);
        await call.RequestStream.WriteEncodedAsync(new TextEncoder("first")).AsTask().Bounded(); // Opens the stream.
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => call.RequestStream.WriteEncodedAsync(new TextEncoder("second", lie: true)).AsTask()).Bounded();
        Assert.Contains("TextEncoder wrote 8 bytes after sizing 9", e.Message);
    }
}
