using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Switch.Grpc.Client;
using Switch.Grpc.Framing;
using Switch.Grpc.Server;
using Switch.Grpc.Tests.Interop;

namespace Switch.Grpc.Tests;

/// <summary>
/// The client's read of a single response (unary and client-streaming calls: <c>ClientCall.ReadSingleAsync</c>), which
/// reads the body straight into one buffer, against a raw HTTP/2 server over real sockets that answers with whatever
/// bytes, in whatever pieces, and whatever status a test asks for: every shape a server may send gets the status the
/// stream read gives it, and a second message's header ends the call at once, without waiting for the rest.
/// </summary>
public sealed class SingleResponseTests : IAsyncLifetime
{
    private const int ClientMax = 64 * 1024;
    private const string Shape = "x-shape";

    private WebApplication _app = null!;
    private GrpcChannel _channel = null!;
    private readonly TaskCompletionSource _serverSawReset = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static byte[] Reply(string text, int payloadBytes = 0) =>
        new EchoReply { Text = text, Payload = ByteString.CopyFrom(new byte[payloadBytes]) }.ToByteArray();

    private static byte[] Frame(byte[] message, byte flag = 0, int? announcedBytes = null)
    {
        var frame = new byte[GrpcFrame.HeaderBytes + message.Length];
        frame[0] = flag;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)(announcedBytes ?? message.Length));
        message.CopyTo(frame, GrpcFrame.HeaderBytes);
        return frame;
    }

    private static byte[] GzipFrame(EchoReply reply)
    {
        var frame = new ArrayBufferWriter<byte>();
        GzipMessages.Write(frame, reply, int.MaxValue);
        return frame.WrittenSpan.ToArray();
    }

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(k => k.ListenGrpc(new GrpcEndpointOptions { Address = IPAddress.Loopback, Port = 0 }));
        _app = builder.Build();
        _app.Run(AnswerAsync);
        await _app.StartAsync().Bounded();
        string address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions { MaxReceiveMessageBytes = ClientMax });
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    /// <summary>Reads the request to its end, then answers in the shape the request's x-shape header names.</summary>
    private async Task AnswerAsync(HttpContext http)
    {
        await http.Request.Body.CopyToAsync(Stream.Null);
        string shape = http.Request.Headers[Shape].ToString();
        HttpResponse response = http.Response;
        response.StatusCode = 200;
        response.ContentType = GrpcProtocol.ContentType;
        string status = "0";
        switch (shape)
        {
            case "one":
                await WriteAsync(response, Frame(Reply("one")));
                break;
            case "pieces": // the header a byte at a time, then the message in three flushed pieces
                byte[] frame = Frame(Reply("pieces", 3_000));
                for (int i = 0; i < GrpcFrame.HeaderBytes; i++) await WriteAsync(response, frame[i..(i + 1)]);
                int third = (frame.Length - GrpcFrame.HeaderBytes) / 3;
                await WriteAsync(response, frame[GrpcFrame.HeaderBytes..(GrpcFrame.HeaderBytes + third)]);
                await WriteAsync(response, frame[(GrpcFrame.HeaderBytes + third)..(GrpcFrame.HeaderBytes + 2 * third)]);
                await WriteAsync(response, frame[(GrpcFrame.HeaderBytes + 2 * third)..]);
                break;
            case "large": // past the first buffer, within the limit
                await WriteAsync(response, Frame(Reply("large", ClientMax - 100)));
                break;
            case "two":
                await WriteAsync(response, [.. Frame(Reply("a")), .. Frame(Reply("b"))]);
                break;
            case "none":
                await WriteAsync(response, []);
                break;
            case "truncated": // announces 100 bytes, sends 10
                await WriteAsync(response, Frame(new byte[10], announcedBytes: 100));
                break;
            case "trailing-bytes": // a whole message, then 3 bytes of a header that never completes
                await WriteAsync(response, [.. Frame(Reply("one")), 0, 0, 0]);
                break;
            case "compressed-unannounced":
                await WriteAsync(response, Frame(Reply("x"), flag: 1));
                break;
            case "gzip":
                response.Headers[GrpcProtocol.EncodingHeader] = GzipMessages.Name;
                await WriteAsync(response, GzipFrame(new EchoReply { Text = "zipped", Payload = ByteString.CopyFrom(new byte[2_000]) }));
                break;
            case "garbage": // a frame whose bytes are no EchoReply (field 1 as a length past the end)
                await WriteAsync(response, Frame([0x0a, 0x7f, 0x01]));
                break;
            case "message-then-error":
                await WriteAsync(response, Frame(Reply("one")));
                status = ((int)StatusCode.NotFound).ToString();
                response.AppendTrailer(GrpcProtocol.MessageHeader, "gone");
                break;
            case "oversize-held": // announces more than the client takes, then holds the stream open
            case "second-header-held": // a whole message and a second one's header, then holds the stream open
                await WriteAsync(response, shape == "oversize-held"
                    ? Frame([], announcedBytes: ClientMax + 1)
                    : [.. Frame(Reply("one")), .. Frame([], announcedBytes: 50)]);
                try
                {
                    await Task.Delay(TestUtil.Bound, http.RequestAborted);
                }
                catch (OperationCanceledException)
                {
                    _serverSawReset.TrySetResult(); // the client gave up on its own, before any end of the stream
                    return;
                }
                break;
            default:
                throw new InvalidOperationException("no such shape: " + shape);
        }
        response.AppendTrailer(GrpcProtocol.StatusHeader, status);
        await response.CompleteAsync();
    }

    private static async Task WriteAsync(HttpResponse response, byte[] bytes)
    {
        await response.Body.WriteAsync(bytes);
        await response.Body.FlushAsync();
    }

    private Task<EchoReply> CallAsync(string shape) =>
        _channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { Text = "hi" }, new CallOptions { Headers = new Metadata { { Shape, shape } } });

    [Theory]
    [InlineData("one", "one", 0)]
    [InlineData("pieces", "pieces", 3_000)]
    [InlineData("large", "large", ClientMax - 100)]
    [InlineData("gzip", "zipped", 2_000)]
    public async Task A_whole_message_in_any_pieces_is_the_answer(string shape, string text, int payloadBytes)
    {
        EchoReply reply = await CallAsync(shape).Bounded();
        Assert.Equal(text, reply.Text);
        Assert.Equal(payloadBytes, reply.Payload.Length);
    }

    [Theory]
    [InlineData("two", StatusCode.Internal, "More than one response message for a single-response method.")]
    [InlineData("none", StatusCode.Internal, "Failed to receive a response message: the server ended the call with OK and no message.")]
    [InlineData("truncated", StatusCode.Internal, "Stream ended inside a message frame (15 bytes left over).")]
    [InlineData("trailing-bytes", StatusCode.Internal, "Stream ended inside a message frame (3 bytes left over).")]
    [InlineData("compressed-unannounced", StatusCode.Internal, "Received a compressed message but no grpc-encoding was negotiated.")]
    [InlineData("message-then-error", StatusCode.NotFound, "gone")]
    public async Task A_body_that_is_not_one_message_ends_the_call_with_its_status(string shape, StatusCode code, string detail)
    {
        RpcException e = await TestUtil.ExpectStatus(code, () => CallAsync(shape));
        Assert.Equal(detail, e.Status.Detail);
    }

    [Fact]
    public async Task A_message_that_does_not_parse_is_internal_with_the_parsers_reason()
    {
        RpcException e = await TestUtil.ExpectStatus(StatusCode.Internal, () => CallAsync("garbage"));
        Assert.StartsWith("Failed to deserialize message: ", e.Status.Detail);
    }

    [Fact]
    public async Task An_oversize_frame_is_refused_on_its_header_without_waiting_for_its_bytes()
    {
        RpcException e = await TestUtil.ExpectStatus(StatusCode.ResourceExhausted, () => CallAsync("oversize-held"));
        Assert.Equal($"Received message larger than max ({ClientMax + 1} vs. {ClientMax})", e.Status.Detail);
        await _serverSawReset.Task.Bounded(); // the client reset the stream: nothing more is read from it
    }

    [Fact]
    public async Task A_second_messages_header_ends_the_call_at_once_without_waiting_for_the_stream_to_end()
    {
        // The stream read took the first message, then waited for the second's bytes until the server ended the stream.
        RpcException e = await TestUtil.ExpectStatus(StatusCode.Internal, () => CallAsync("second-header-held"));
        Assert.Equal("More than one response message for a single-response method.", e.Status.Detail);
        await _serverSawReset.Task.Bounded();
    }

    [Fact]
    public async Task A_client_streaming_call_reads_its_one_response_the_same_way()
    {
        var options = new CallOptions { Headers = new Metadata { { Shape, "pieces" } } };
        using (ClientStreamingCall<EchoRequest, EchoReply> call = _channel.ClientStreaming(InteropMethods.ClientStream, options))
        {
            await call.RequestStream.WriteAsync(new EchoRequest { Text = "a" }).AsTask().Bounded();
            await call.RequestStream.CompleteAsync().Bounded();
            EchoReply reply = await call.ResponseAsync.Bounded();
            Assert.Equal("pieces", reply.Text);
            Assert.Equal(StatusCode.OK, call.GetStatus().Code);
        }
        options = new CallOptions { Headers = new Metadata { { Shape, "two" } } };
        using (ClientStreamingCall<EchoRequest, EchoReply> call = _channel.ClientStreaming(InteropMethods.ClientStream, options))
        {
            await call.RequestStream.CompleteAsync().Bounded();
            await TestUtil.ExpectStatus(StatusCode.Internal, () => call.ResponseAsync);
        }
    }

    [Fact]
    public async Task Many_calls_at_once_each_get_their_own_answer()
    {
        var calls = Enumerable.Range(0, 200).Select(i => i % 2 == 0 ? CallAsync("pieces") : CallAsync("one")).ToArray();
        EchoReply[] replies = await Task.WhenAll(calls).Bounded();
        for (int i = 0; i < replies.Length; i++) Assert.Equal(i % 2 == 0 ? "pieces" : "one", replies[i].Text);
    }
}
