using System.Net;
using Google.Protobuf;
using Switch.Grpc.Client;
using Switch.Grpc.Server;
using Switch.Grpc.Tests.Interop;

namespace Switch.Grpc.Tests;

/// <summary>
/// A unary method mapped raw (<see cref="GrpcRouter.MapUnaryRaw"/>): its handler gets the request's bytes in a buffer the
/// router rents and reuses across calls, and writes its one answer encoded (RespondAsync). Over real sockets: each call's handler sees its own
/// request's bytes and its caller gets its own answer, however many calls run at once; a call that ends early (deadline,
/// a refused message) leaves the next ones intact; the request's framing is refused as the typed path refuses it.
/// </summary>
public sealed class RawUnaryTests() : InteropServerTests(Max)
{
    private const int Max = 64 * 1024;

    private static readonly GrpcMethod<EchoRequest, EchoReply> RawUnary =
        new(MethodType.Unary, InteropMethods.Service, "RawUnary", EchoRequest.Parser, EchoReply.Parser);
    /// <summary>The same paths called as client streams: a client that sends no message, or two, to a unary method.</summary>
    private static readonly GrpcMethod<EchoRequest, EchoReply> RawUnaryAsStream =
        new(MethodType.ClientStreaming, InteropMethods.Service, "RawUnary", EchoRequest.Parser, EchoReply.Parser);
    private static readonly GrpcMethod<EchoRequest, EchoReply> TypedUnaryAsStream =
        new(MethodType.ClientStreaming, InteropMethods.Service, "Unary", EchoRequest.Parser, EchoReply.Parser);

    private readonly TaskCompletionSource _sleeping = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _handled;
    private ServerCallContext? _lastContext;

    protected override GrpcRouter MapOwn(GrpcRouter router) => router.MapUnaryRaw(RawUnary, RawUnaryAsync);

    /// <summary>Answers the request's text, its byte count and a checksum of its bytes read after an await (the bytes
    /// must still be the call's own then); "sleep" waits for the call's token; "silent" returns without an answer, "twice"
    /// tries to answer twice.</summary>
    private async ValueTask RawUnaryAsync(ServerRawRequest request, ServerCallContext context)
    {
        Interlocked.Increment(ref _handled);
        EchoRequest parsed;
        try
        {
            parsed = EchoRequest.Parser.ParseFrom(request.Message.Span);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw request.Refuse(e);
        }
        if (parsed.Text == "sleep")
        {
            _sleeping.TrySetResult();
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
        }
        if (parsed.Text == "silent") return;
        if (parsed.Text == "headers")
        {
            // One header read where the server holds it, then the metadata made: the same values either way.
            string read = $"{context.RequestHeader("x-k")}|{context.RequestHeader("x-none") ?? "null"}";
            string made = $"{context.RequestHeaders.GetValue("x-k")}|{context.RequestHeaders.GetValue("x-none") ?? "null"}";
            await request.RespondAsync(new EncodedBytes(new EchoReply { Text = read + "/" + made }.ToByteArray()));
            return;
        }
        if (parsed.Text == "one-header")
        {
            _lastContext = context; // its metadata never made
            await request.RespondAsync(new EncodedBytes(new EchoReply { Text = context.RequestHeader("x-k") }.ToByteArray()));
            return;
        }
        await Task.Yield(); // other calls run on the pool meanwhile, renting and returning their buffers
        uint sum = Checksum(request.Message.Span);
        await request.RespondAsync(new EncodedBytes(new EchoReply { Text = $"{parsed.Text}:{request.Message.Length}:{sum}", Index = parsed.Count }.ToByteArray()));
        if (parsed.Text == "twice") await request.RespondAsync(new EncodedBytes([]));
    }

    private static uint Checksum(ReadOnlySpan<byte> bytes)
    {
        uint sum = 17;
        foreach (byte b in bytes) sum = sum * 31 + b;
        return sum;
    }

    private static EchoRequest Message(int i) =>
        new() { Text = "m" + i, Count = i, Payload = ByteString.CopyFrom(Enumerable.Range(0, i * 37 % 3000).Select(b => (byte)(b + i)).ToArray()) };

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Concurrent_calls_each_see_their_own_bytes_and_get_their_own_answer(bool gzip)
    {
        using var channel = GrpcChannel.ForAddress(Server.Address, new GrpcChannelOptions { CompressRequests = gzip });
        const int Calls = 600, Callers = 32;
        int next = -1;
        await Task.WhenAll(Enumerable.Range(0, Callers).Select(_ => Task.Run(async () =>
        {
            for (int i = Interlocked.Increment(ref next); i < Calls; i = Interlocked.Increment(ref next))
            {
                EchoRequest request = Message(i);
                EchoReply reply = await channel.UnaryAsync(RawUnary, request).Bounded();
                Assert.Equal($"m{i}:{request.CalculateSize()}:{Checksum(request.ToByteArray())}", reply.Text);
                Assert.Equal(i, reply.Index);
            }
        }))).Bounded();
        Assert.Equal(Calls, _handled);
    }

    [Fact]
    public async Task A_call_past_its_deadline_ends_deadline_exceeded_and_the_calls_after_it_are_answered()
    {
        var options = new CallOptions { Deadline = DateTime.UtcNow.AddMilliseconds(300) };
        Task<EchoReply> late = Channel.UnaryAsync(RawUnary, new EchoRequest { Text = "sleep" }, options);
        await _sleeping.Task.Bounded();
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => late.Bounded());
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        for (int i = 1; i <= 20; i++)
        {
            EchoRequest request = Message(i);
            EchoReply reply = await Channel.UnaryAsync(RawUnary, request).Bounded();
            Assert.Equal($"m{i}:{request.CalculateSize()}:{Checksum(request.ToByteArray())}", reply.Text);
        }
    }

    /// <summary>Sends <paramref name="messages"/> on a unary path as a client stream; the status it ends with.</summary>
    private async Task<Status> StatusOfAsync(GrpcMethod<EchoRequest, EchoReply> method, int messages)
    {
        using var call = Channel.ClientStreaming(method);
        for (int i = 0; i < messages; i++) await call.RequestStream.WriteAsync(Message(i + 1)).AsTask().Bounded();
        await call.RequestStream.CompleteAsync().Bounded();
        try
        {
            await call.ResponseAsync.Bounded();
        }
        catch (RpcException)
        {
        }
        return call.GetStatus();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public async Task No_message_or_a_second_one_is_refused_as_the_typed_path_refuses_it_and_never_handled(int messages)
    {
        Status typed = await StatusOfAsync(TypedUnaryAsStream, messages);
        Status raw = await StatusOfAsync(RawUnaryAsStream, messages);
        Assert.Equal(StatusCode.Internal, typed.Code);
        Assert.Equal((typed.Code, typed.Detail), (raw.Code, raw.Detail));
        Assert.Equal(0, _handled);
    }

    [Theory]
    [InlineData(new byte[] { 0x00 })] // tag zero
    [InlineData(new byte[] { 0x0A, 0x05, 0x61 })] // text claims 5 bytes, has 1
    [InlineData(new byte[] { 0x0A, 0x01, 0xFF })] // text not UTF-8
    public async Task Bytes_the_handler_refuses_end_the_call_as_the_typed_path_ends_it(byte[] bytes)
    {
        async Task<Status> EndOf(string path)
        {
            var method = new GrpcMethod<EchoRequest, EchoReply>(MethodType.ClientStreaming, InteropMethods.Service, path, EchoRequest.Parser, EchoReply.Parser);
            using var call = Channel.ClientStreaming(method);
            await call.RequestStream.WriteEncodedAsync(new EncodedBytes(bytes)).AsTask().Bounded();
            await call.RequestStream.CompleteAsync().Bounded();
            await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.Bounded());
            return call.GetStatus();
        }
        Status typed = await EndOf("Unary");
        Status raw = await EndOf("RawUnary");
        Assert.Equal(StatusCode.Internal, typed.Code);
        Assert.Equal((typed.Code, typed.Detail), (raw.Code, raw.Detail));
    }

    [Fact]
    public async Task A_header_read_alone_is_its_last_value_as_in_the_metadata_and_never_read_after_the_call()
    {
        var options = new CallOptions { Headers = new Metadata().Add("x-k", "first").Add("x-k", "second") };
        EchoReply reply = await Channel.UnaryAsync(RawUnary, new EchoRequest { Text = "headers" }, options).Bounded();
        Assert.Equal("first, second|null/first, second|null", reply.Text); // this client sends a repeated key as one header
        // Kestrel reuses a call's headers once it has ended: a late first look is refused, never another call's headers.
        reply = await Channel.UnaryAsync(RawUnary, new EchoRequest { Text = "one-header" }, new CallOptions { Headers = new Metadata().Add("x-k", "v") }).Bounded();
        Assert.Equal("v", reply.Text);
        ServerCallContext ended = _lastContext!;
        long until = Environment.TickCount64 + 10_000; // the router ends the call just after its status goes out
        while (Environment.TickCount64 < until && Record.Exception(() => ended.RequestHeader("x-k")) is null) await Task.Delay(10);
        Assert.Throws<InvalidOperationException>(() => ended.RequestHeader("x-k"));
        Assert.Throws<InvalidOperationException>(() => ended.RequestHeaders);
        Assert.Throws<ArgumentException>(() => ended.RequestHeader("grpc-timeout"));
        Assert.Throws<ArgumentException>(() => ended.RequestHeader("X-K"));
    }

    [Theory]
    [InlineData("silent")]
    [InlineData("twice")]
    public async Task A_handler_that_answers_none_or_twice_fails_the_call_unknown(string text)
    {
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => Channel.UnaryAsync(RawUnary, new EchoRequest { Text = text }).Bounded());
        Assert.Equal((StatusCode.Unknown, "Exception was thrown by handler."), (e.StatusCode, e.Status.Detail));
        lock (Service.HandlerExceptions) Assert.IsType<InvalidOperationException>(Assert.Single(Service.HandlerExceptions));
    }

    [Fact]
    public async Task A_message_over_the_limit_is_resource_exhausted_before_the_handler()
    {
        var request = new EchoRequest { Text = "big", Payload = ByteString.CopyFrom(new byte[Max + 1]) };
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => Channel.UnaryAsync(RawUnary, request).Bounded());
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Equal(0, _handled);
    }
}
