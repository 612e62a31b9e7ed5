using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using Google.Protobuf;
using Switch.Grpc.Client;
using Switch.Grpc.Framing;
using Switch.Grpc.Server;
using Switch.Grpc.Tests.Interop;

namespace Switch.Grpc.Tests;

/// <summary>
/// A method mapped raw (<see cref="GrpcRouter.MapDuplexStreamingRaw"/>): its handler gets each request's bytes, not a
/// parsed message. Checked against the typed path over real sockets: the same messages arrive, gzip too, and bytes that
/// do not parse end the call with the same status.
/// </summary>
public sealed class RawRequestTests() : InteropServerTests(Max)
{
    private const int Max = 1024 * 1024;

    /// <summary>The interop Bidi's request and reply, at a path of its own, mapped raw.</summary>
    private static readonly GrpcMethod<EchoRequest, EchoReply> RawBidi =
        new(MethodType.DuplexStreaming, InteropMethods.Bidi.ServiceFullName, "RawBidi", EchoRequest.Parser, EchoReply.Parser);

    protected override GrpcRouter MapOwn(GrpcRouter router) => router.MapDuplexStreamingRaw(RawBidi, RawBidiAsync);

    /// <summary>Decodes each message from its bytes (as a hand decoder would), answers its text and its byte count.</summary>
    private static async ValueTask RawBidiAsync(ServerRawRequestStream requests, ServerResponseStream<EchoReply> responses, ServerCallContext context)
    {
        int index = 0;
        while (await requests.ReadAsync())
        {
            ReadOnlySequence<byte> bytes = requests.Message;
            EchoRequest request;
            try
            {
                request = EchoRequest.Parser.ParseFrom(bytes);
            }
            catch (InvalidProtocolBufferException e)
            {
                throw requests.Refuse(e);
            }
            await responses.WriteAsync(new EchoReply { Text = $"{request.Text}:{bytes.Length}", Index = index++ });
        }
    }

    private static EchoRequest Message(int i) => new() { Text = "m" + i, Payload = ByteString.CopyFrom(new byte[i * 37 % 3000]) };

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Each_message_arrives_as_its_own_bytes_plain_or_gzip(bool gzip)
    {
        using var channel = GrpcChannel.ForAddress(Server.Address, new GrpcChannelOptions { CompressRequests = gzip });
        using var call = channel.DuplexStreaming(RawBidi);
        const int Count = 500; // messages of up to 3 KB: many share a read, some straddle two
        for (int i = 0; i < Count; i++) await call.RequestStream.WriteAsync(Message(i)).AsTask().Bounded();
        await call.RequestStream.CompleteAsync().Bounded();
        int n = 0;
        while (await call.ResponseStream.ReadAsync().Bounded() is { } reply)
        {
            Assert.Equal($"m{n}:{Message(n).CalculateSize()}", reply.Text);
            n++;
        }
        Assert.Equal(Count, n);
        Assert.Equal(StatusCode.OK, call.GetStatus().Code);
    }

    /// <summary>Sends a good message, then <paramref name="bytes"/>, on <paramref name="method"/>; the status it ends with.</summary>
    private async Task<Status> EndOfAsync(GrpcMethod<EchoRequest, EchoReply> method, byte[] bytes)
    {
        using var call = Channel.DuplexStreaming(method);
        await call.RequestStream.WriteAsync(Message(1)).AsTask().Bounded();
        await call.RequestStream.WriteEncodedAsync(new EncodedBytes(bytes)).AsTask().Bounded();
        await call.RequestStream.CompleteAsync().Bounded();
        int replies = 0;
        try
        {
            while (await call.ResponseStream.ReadAsync().Bounded() is not null) replies++;
        }
        catch (RpcException)
        {
        }
        Assert.Equal(1, replies); // the good message was answered, the bad one ended the call
        return call.GetStatus();
    }

    [Theory]
    [InlineData(new byte[] { 0x00 })] // tag zero
    [InlineData(new byte[] { 0x0A, 0x05, 0x61 })] // text claims 5 bytes, has 1
    [InlineData(new byte[] { 0x0A, 0x01, 0xFF })] // text not UTF-8
    [InlineData(new byte[] { 0x0F })] // wire type 7
    public async Task Bytes_the_decoder_refuses_end_the_call_as_the_typed_path_ends_it(byte[] bytes)
    {
        Status typed = await EndOfAsync(InteropMethods.Bidi, bytes);
        Status raw = await EndOfAsync(RawBidi, bytes);
        Assert.Equal(StatusCode.Internal, typed.Code);
        Assert.StartsWith("Failed to deserialize message", typed.Detail);
        Assert.Equal((typed.Code, typed.Detail), (raw.Code, raw.Detail));
    }

    [Fact]
    public async Task Frames_that_came_together_are_taken_from_one_read_without_a_copy()
    {
        var pipe = new Pipe();
        var frames = new GrpcFrameReader(pipe.Reader, Max);
        var buffer = new ArrayBufferWriter<byte>();
        var messages = Enumerable.Range(0, 50).Select(Message).ToList();
        foreach (EchoRequest m in messages) GrpcFrame.Write(buffer, m, Max);
        await pipe.Writer.WriteAsync(buffer.WrittenMemory);
        await pipe.Writer.CompleteAsync();

        var taken = new List<EchoRequest>();
        int reads = 0;
        ReadOnlySequence<byte> read = default;
        while (true)
        {
            if (frames.TryNext(out bool ended))
            {
                // A slice of the read's own buffer, and valid until the next take.
                Assert.Contains(ArrayOf(frames.Message.First), ArraysOf(read));
                taken.Add(EchoRequest.Parser.ParseFrom(frames.Message));
                continue;
            }
            if (ended) break;
            ReadResult result = await frames.ReadAsync(default).AsTask().Bounded();
            read = result.Buffer;
            frames.Hold(result);
            reads++;
        }
        Assert.Equal(1, reads);
        Assert.True(frames.IsEnded);
        Assert.Equal(messages, taken);
    }

    private static byte[] ArrayOf(ReadOnlyMemory<byte> memory) =>
        System.Runtime.InteropServices.MemoryMarshal.TryGetArray(memory, out ArraySegment<byte> segment) ? segment.Array! : [];

    private static List<byte[]> ArraysOf(ReadOnlySequence<byte> sequence)
    {
        var arrays = new List<byte[]>();
        foreach (ReadOnlyMemory<byte> memory in sequence) arrays.Add(ArrayOf(memory));
        return arrays;
    }
}
