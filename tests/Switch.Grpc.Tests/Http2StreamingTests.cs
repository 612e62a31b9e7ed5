using System.Buffers.Binary;
using Google.Protobuf;
using Switch.Grpc.Client;
using Switch.Grpc.Framing;
using Switch.Grpc.Http2;
using Switch.Grpc.Server;
using Switch.Grpc.Tests.Interop;

namespace Switch.Grpc.Tests;

/// <summary>
/// Streaming calls over the channel's own HTTP/2 connection, where the protocol matters: windows smaller than the messages
/// both ways and many interleaved duplex streams against Kestrel; against a scripted server (real sockets) coalesced
/// writes, a flush held by the server's window, a reader that stops reading, a server past the stream window, GOAWAY,
/// RST_STREAM and a killed connection mid-stream, a deadline and a cancellation.
/// </summary>
public sealed class Http2StreamingTests
{
    private const int SmallestWindowBytes = 65_535;

    private static ByteString Payload(int bytes, int seed) => ByteString.CopyFrom(Enumerable.Range(0, bytes).Select(i => (byte)(i * 31 + seed)).ToArray());

    private static byte[] Framed(IMessage message)
    {
        byte[] frame = new byte[GrpcFrame.HeaderBytes + message.CalculateSize()];
        GrpcFrame.WriteHeader(frame, frame.Length - GrpcFrame.HeaderBytes);
        message.WriteTo(frame.AsSpan(GrpcFrame.HeaderBytes));
        return frame;
    }

    [Fact]
    public async Task Messages_larger_than_the_windows_flow_both_ways_on_a_duplex_stream()
    {
        var router = new InteropService().Map(new GrpcRouter());
        await using GrpcServer server = await GrpcServer.StartAsync(router, new GrpcEndpointOptions { InitialStreamWindowBytes = SmallestWindowBytes }).Bounded();
        using var channel = GrpcChannel.ForAddress(server.Address, new GrpcChannelOptions { InitialStreamWindowBytes = SmallestWindowBytes });
        using var call = channel.DuplexStreaming(InteropMethods.Bidi, new CallOptions { Timeout = TestUtil.Bound });
        const int messages = 12;
        const int bytes = 300 * 1024; // each over both sides' stream windows
        Task reading = Task.Run(async () =>
        {
            for (int i = 0; i < messages; i++)
            {
                EchoReply? reply = await call.ResponseStream.ReadAsync();
                Assert.NotNull(reply);
                Assert.Equal(i, reply!.Index);
                Assert.True(reply.Payload.Equals(Payload(bytes, i)), $"reply {i}'s payload");
            }
            Assert.Null(await call.ResponseStream.ReadAsync());
        });
        for (int i = 0; i < messages; i++)
        {
            await call.RequestStream.WriteAsync(new EchoRequest { Payload = Payload(bytes, i) });
            if (i % 3 == 2) await call.RequestStream.FlushAsync();
        }
        await call.RequestStream.CompleteAsync().Bounded();
        await reading.Bounded();
        Assert.Equal(StatusCode.OK, call.GetStatus().Code);
    }

    [Fact]
    public async Task Many_duplex_streams_with_interleaved_writes_each_get_their_own_replies()
    {
        var router = new InteropService().Map(new GrpcRouter());
        await using GrpcServer server = await GrpcServer.StartAsync(router, new GrpcEndpointOptions()).Bounded();
        using var channel = GrpcChannel.ForAddress(server.Address);
        const int streams = 24;
        const int rounds = 100;
        var calls = Enumerable.Range(0, streams).Select(_ => channel.DuplexStreaming(InteropMethods.Bidi, new CallOptions { Timeout = TestUtil.Bound })).ToArray();
        try
        {
            Task[] readers = calls.Select((call, s) => Task.Run(async () =>
            {
                for (int i = 0; i < rounds; i++)
                {
                    EchoReply? reply = await call.ResponseStream.ReadAsync();
                    Assert.NotNull(reply);
                    Assert.Equal(i, reply!.Index);
                    Assert.Equal($"{s}:{i}", reply.Text);
                }
                Assert.Null(await call.ResponseStream.ReadAsync());
            })).ToArray();
            for (int i = 0; i < rounds; i++)
            {
                // One message on every stream, then every stream flushed: their frames share the connection's bursts.
                for (int s = 0; s < streams; s++) await calls[s].RequestStream.WriteAsync(new EchoRequest { Text = $"{s}:{i}", Payload = Payload(100 + i, s) });
                foreach (var call in calls) await call.RequestStream.FlushAsync();
            }
            foreach (var call in calls) await call.RequestStream.CompleteAsync().Bounded();
            await Task.WhenAll(readers).Bounded();
            Assert.All(calls, c => Assert.Equal(StatusCode.OK, c.GetStatus().Code));
        }
        finally
        {
            foreach (var call in calls) call.Dispose();
        }
    }

    [Fact]
    public async Task Messages_written_between_flushes_go_in_one_DATA_frame()
    {
        const int messages = 64;
        var dataFrames = new List<int>();
        var emptyFlushed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var peer = new Http2TestPeer(async connection =>
        {
            await connection.StartAsync();
            await connection.NextFrameAsync(Http2FrameType.Headers);
            int bytes = 0;
            int expected = messages * Framed(new EchoRequest { Text = "message" }).Length;
            while (bytes < expected)
            {
                var (frame, payload) = await connection.NextFrameAsync(Http2FrameType.Data, 1);
                dataFrames.Add(frame.PayloadBytes);
                bytes += payload.Length;
            }
            await emptyFlushed.Task;
            await connection.SendAsync(b => b.WriteHeaders(1, PeerConnection.Block((":status", "200"), ("grpc-status", "0")), endStream: true, Http2Limits.DefaultMaxFrameBytes));
        });
        using var channel = GrpcChannel.ForAddress(peer.Address);
        using var call = channel.DuplexStreaming(InteropMethods.Bidi, new CallOptions { Timeout = TestUtil.Bound });
        for (int i = 0; i < messages; i++) await call.RequestStream.WriteAsync(new EchoRequest { Text = "message" });
        await call.RequestStream.FlushAsync().AsTask().Bounded();
        await call.RequestStream.FlushAsync().AsTask().Bounded(); // nothing new: done at once, nothing sent
        emptyFlushed.SetResult();
        Assert.Null(await call.ResponseStream.ReadAsync().Bounded());
        await peer.Scripts.Bounded();
        Assert.Equal(new[] { messages * Framed(new EchoRequest { Text = "message" }).Length }, dataFrames);
    }

    [Fact]
    public async Task A_flush_waits_for_the_servers_window_and_goes_on_at_its_WINDOW_UPDATE()
    {
        const int windowBytes = 1000;
        var firstBytes = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var granted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var request = new EchoRequest { Payload = Payload(10_000, 7) };
        byte[] expected = Framed(request);
        byte[]? received = null;
        await using var peer = new Http2TestPeer(async connection =>
        {
            await connection.StartAsync((Http2Setting.InitialWindowSize, windowBytes));
            await connection.NextFrameAsync(Http2FrameType.Headers);
            var body = new MemoryStream();
            while (body.Length < windowBytes) body.Write((await connection.NextFrameAsync(Http2FrameType.Data, 1)).Payload);
            firstBytes.SetResult((int)body.Length);
            await granted.Task;
            await connection.SendAsync(b => b.WriteWindowUpdate(1, expected.Length));
            while (body.Length < expected.Length) body.Write((await connection.NextFrameAsync(Http2FrameType.Data, 1)).Payload);
            received = body.ToArray();
            await connection.SendAsync(b => b.WriteHeaders(1, PeerConnection.Block((":status", "200"), ("grpc-status", "0")), endStream: true, Http2Limits.DefaultMaxFrameBytes));
        });
        using var channel = GrpcChannel.ForAddress(peer.Address);
        using var call = channel.DuplexStreaming(InteropMethods.Bidi, new CallOptions { Timeout = TestUtil.Bound });
        await call.RequestStream.WriteAsync(request);
        Task flush = call.RequestStream.FlushAsync().AsTask();
        Assert.Equal(windowBytes, await firstBytes.Task.Bounded()); // exactly the window, not a byte more
        Assert.False(flush.IsCompleted, "the flush waits while the server's window is exhausted");
        granted.SetResult();
        await flush.Bounded();
        Assert.Null(await call.ResponseStream.ReadAsync().Bounded());
        await peer.Scripts.Bounded();
        Assert.Equal(expected, received);
    }

    [Fact]
    public async Task A_reader_that_stops_reading_holds_the_server_back()
    {
        const int messages = 256;
        var reply = new EchoReply { Payload = Payload(16 * 1024, 3) };
        byte[] frame = Framed(reply);
        long sentBytes = 0;
        await using var peer = new Http2TestPeer(async connection =>
        {
            await connection.StartAsync();
            await connection.NextFrameAsync(Http2FrameType.Headers);
            await connection.SendAsync(b => b.WriteHeaders(1, PeerConnection.ResponseHeaders(), endStream: false, Http2Limits.DefaultMaxFrameBytes));
            byte[] body = Enumerable.Repeat(frame, messages).SelectMany(f => f).ToArray();
            long windowBytes = SmallestWindowBytes; // the client's, as it advertised; the peer honours it
            int at = 0;
            while (at < body.Length)
            {
                while (windowBytes > 0 && at < body.Length)
                {
                    int chunk = (int)Math.Min(Math.Min(windowBytes, Http2Limits.DefaultMaxFrameBytes), body.Length - at);
                    await connection.SendAsync(b => b.WriteData(1, body.AsSpan(at, chunk), endStream: false));
                    at += chunk;
                    windowBytes -= chunk;
                    Volatile.Write(ref sentBytes, at);
                }
                if (at == body.Length) break;
                var (update, payload) = await connection.NextFrameAsync(Http2FrameType.WindowUpdate, 1);
                windowBytes += BinaryPrimitives.ReadInt32BigEndian(payload);
            }
            await connection.SendAsync(b => b.WriteHeaders(1, PeerConnection.Block(("grpc-status", "0")), endStream: true, Http2Limits.DefaultMaxFrameBytes));
        });
        using var channel = GrpcChannel.ForAddress(peer.Address, new GrpcChannelOptions { InitialStreamWindowBytes = SmallestWindowBytes });
        using var call = channel.ServerStreaming(InteropMethods.ServerStream, new EchoRequest(), new CallOptions { Timeout = TestUtil.Bound });
        Assert.NotNull(await call.ResponseStream.ReadAsync().Bounded());
        await Task.Delay(500); // the server sends all the client lets it
        long sentWhileStopped = Volatile.Read(ref sentBytes);
        // A window handed to the reader, and one more the server may send meanwhile: not the 4 MiB it has.
        Assert.True(sentWhileStopped <= 2 * SmallestWindowBytes, $"{sentWhileStopped} bytes sent to a reader that stopped reading");
        int read = 1;
        while (await call.ResponseStream.ReadAsync().Bounded() is { } next)
        {
            Assert.True(next.Payload.Equals(reply.Payload));
            read++;
        }
        Assert.Equal(messages, read);
        await peer.Scripts.Bounded();
    }

    [Fact]
    public async Task A_server_past_the_stream_window_is_reset_FLOW_CONTROL_ERROR()
    {
        var reset = new TaskCompletionSource<uint>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var peer = new Http2TestPeer(async connection =>
        {
            await connection.StartAsync();
            await connection.NextFrameAsync(Http2FrameType.Headers);
            await connection.SendAsync(b =>
            {
                b.WriteHeaders(1, PeerConnection.ResponseHeaders(), endStream: false, Http2Limits.DefaultMaxFrameBytes);
                byte[] chunk = new byte[Http2Limits.DefaultMaxFrameBytes];
                GrpcFrame.WriteHeader(chunk, 200_000); // one message the client waits for whole
                for (int i = 0; i < 5; i++) // 80 KiB into a 64 KiB window
                {
                    b.WriteData(1, chunk, endStream: false);
                    chunk.AsSpan(0, GrpcFrame.HeaderBytes).Clear(); // the message's bytes from the second frame on
                }
            });
            var (_, payload) = await connection.NextFrameAsync(Http2FrameType.RstStream, 1);
            reset.SetResult(BinaryPrimitives.ReadUInt32BigEndian(payload));
        });
        using var channel = GrpcChannel.ForAddress(peer.Address, new GrpcChannelOptions { InitialStreamWindowBytes = SmallestWindowBytes });
        using var call = channel.DuplexStreaming(InteropMethods.Bidi, new CallOptions { Timeout = TestUtil.Bound });
        // Nothing is read until the reset: a reader that took the first frames before the last arrived would grant the
        // window back, and the server would then be within it (a CI run under load timed out so).
        Assert.Equal(Http2ErrorCode.FlowControlError, await reset.Task.Bounded());
        RpcException e = await TestUtil.ExpectStatus(StatusCode.Internal, async () => await call.ResponseStream.ReadAsync());
        Assert.Contains("receive window", e.Status.Detail);
        await peer.Scripts.Bounded();
    }

    [Fact]
    public async Task A_GOAWAY_fails_the_streams_above_its_last_and_lets_the_one_below_finish()
    {
        var reply = new EchoReply { Text = "below" };
        await using var peer = new Http2TestPeer(async connection =>
        {
            await connection.StartAsync();
            await connection.NextFrameAsync(Http2FrameType.Data, 3); // both streams are open and have written
            await connection.SendAsync(b => b.WriteGoAway(1, Http2ErrorCode.NoError));
            while (true)
            {
                var (frame, _) = await connection.NextFrameAsync(Http2FrameType.Data, 1);
                if (frame.Has(Http2Flags.EndStream)) break; // stream 1 still writes, and half-closes
            }
            await connection.SendAsync(b =>
            {
                b.WriteHeaders(1, PeerConnection.ResponseHeaders(), endStream: false, Http2Limits.DefaultMaxFrameBytes);
                b.WriteData(1, Framed(reply), endStream: false);
                b.WriteHeaders(1, PeerConnection.Block(("grpc-status", "0")), endStream: true, Http2Limits.DefaultMaxFrameBytes);
            });
        });
        using var channel = GrpcChannel.ForAddress(peer.Address, new GrpcChannelOptions { EnableMultipleHttp2Connections = false });
        using var below = channel.DuplexStreaming(InteropMethods.Bidi, new CallOptions { Timeout = TestUtil.Bound });
        await below.RequestStream.WriteAndFlushAsync(new EchoRequest { Text = "1" }).AsTask().Bounded();
        using var above = channel.DuplexStreaming(InteropMethods.Bidi, new CallOptions { Timeout = TestUtil.Bound });
        await above.RequestStream.WriteAndFlushAsync(new EchoRequest { Text = "3" }).AsTask().Bounded();
        await TestUtil.ExpectStatus(StatusCode.Unavailable, async () => await above.ResponseStream.ReadAsync().Bounded());
        await TestUtil.ExpectStatus(StatusCode.Unavailable, async () => await above.RequestStream.WriteAndFlushAsync(new EchoRequest()).AsTask().Bounded());
        await below.RequestStream.WriteAsync(new EchoRequest { Text = "more" });
        await below.RequestStream.CompleteAsync().Bounded();
        Assert.Equal("below", (await below.ResponseStream.ReadAsync().Bounded())!.Text);
        Assert.Null(await below.ResponseStream.ReadAsync().Bounded());
        Assert.Equal(StatusCode.OK, below.GetStatus().Code);
        await peer.Scripts.Bounded();
    }

    [Fact]
    public async Task RST_STREAM_mid_stream_fails_the_reader_and_the_writer()
    {
        var firstRead = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var peer = new Http2TestPeer(async connection =>
        {
            await connection.StartAsync();
            await connection.NextFrameAsync(Http2FrameType.Data, 1);
            await connection.SendAsync(b =>
            {
                b.WriteHeaders(1, PeerConnection.ResponseHeaders(), endStream: false, Http2Limits.DefaultMaxFrameBytes);
                b.WriteData(1, Framed(new EchoReply { Text = "first" }), endStream: false);
            });
            await firstRead.Task;
            await connection.SendAsync(b => b.WriteRstStream(1, Http2ErrorCode.EnhanceYourCalm));
            await connection.NextFrameAsync(); // holds the connection until the client is done
        });
        using var channel = GrpcChannel.ForAddress(peer.Address);
        using var call = channel.DuplexStreaming(InteropMethods.Bidi, new CallOptions { Timeout = TestUtil.Bound });
        await call.RequestStream.WriteAndFlushAsync(new EchoRequest()).AsTask().Bounded();
        Assert.Equal("first", (await call.ResponseStream.ReadAsync().Bounded())!.Text);
        firstRead.SetResult();
        await TestUtil.ExpectStatus(StatusCode.ResourceExhausted, async () => await call.ResponseStream.ReadAsync().Bounded());
        await TestUtil.ExpectStatus(StatusCode.ResourceExhausted, async () => await call.RequestStream.WriteAndFlushAsync(new EchoRequest()).AsTask().Bounded());
        channel.Dispose();
        await peer.Scripts.Bounded();
    }

    [Fact]
    public async Task A_connection_killed_mid_stream_fails_the_reader_and_a_waiting_writer_UNAVAILABLE()
    {
        var blocked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var kill = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var peer = new Http2TestPeer(async connection =>
        {
            await connection.StartAsync((Http2Setting.InitialWindowSize, 100));
            await connection.NextFrameAsync(Http2FrameType.Data, 1);
            await connection.SendAsync(b => b.WriteHeaders(1, PeerConnection.ResponseHeaders(), endStream: false, Http2Limits.DefaultMaxFrameBytes));
            blocked.SetResult();
            await kill.Task;
            connection.Kill();
        });
        using var channel = GrpcChannel.ForAddress(peer.Address);
        using var call = channel.DuplexStreaming(InteropMethods.Bidi, new CallOptions { Timeout = TestUtil.Bound });
        await call.RequestStream.WriteAsync(new EchoRequest { Payload = Payload(1000, 1) });
        Task flush = call.RequestStream.FlushAsync().AsTask(); // 100 bytes of the window: the rest waits
        Task<EchoReply?> read = call.ResponseStream.ReadAsync().AsTask();
        await blocked.Task.Bounded();
        await call.GetResponseHeadersAsync().Bounded();
        Assert.False(flush.IsCompleted || read.IsCompleted, "both sides wait on the server");
        kill.SetResult();
        await TestUtil.ExpectStatus(StatusCode.Unavailable, () => flush.Bounded());
        await TestUtil.ExpectStatus(StatusCode.Unavailable, () => read.Bounded());
        await peer.Scripts.Bounded();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_deadline_or_a_cancellation_resets_the_stream_CANCEL(bool deadline)
    {
        var reset = new TaskCompletionSource<uint>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var peer = new Http2TestPeer(async connection =>
        {
            await connection.StartAsync();
            await connection.NextFrameAsync(Http2FrameType.Data, 1);
            await connection.SendAsync(b => b.WriteHeaders(1, PeerConnection.ResponseHeaders(), endStream: false, Http2Limits.DefaultMaxFrameBytes));
            var (_, payload) = await connection.NextFrameAsync(Http2FrameType.RstStream, 1);
            reset.SetResult(BinaryPrimitives.ReadUInt32BigEndian(payload));
        });
        using var channel = GrpcChannel.ForAddress(peer.Address);
        using var cancel = new CancellationTokenSource();
        // The deadline must not pass before the write and the headers (300 ms did, once, with CI's tests beside it).
        using var call = channel.DuplexStreaming(InteropMethods.Bidi, deadline
            ? new CallOptions { Timeout = TimeSpan.FromSeconds(3) }
            : new CallOptions { CancellationToken = cancel.Token });
        await call.RequestStream.WriteAndFlushAsync(new EchoRequest()).AsTask().Bounded();
        await call.GetResponseHeadersAsync().Bounded();
        Task<EchoReply?> read = call.ResponseStream.ReadAsync().AsTask();
        if (!deadline) cancel.CancelAfter(100);
        StatusCode expected = deadline ? StatusCode.DeadlineExceeded : StatusCode.Cancelled;
        await TestUtil.ExpectStatus(expected, () => read.Bounded());
        await TestUtil.ExpectStatus(expected, async () => await call.RequestStream.WriteAndFlushAsync(new EchoRequest()).AsTask().Bounded());
        Assert.Equal(Http2ErrorCode.Cancel, await reset.Task.Bounded());
        await peer.Scripts.Bounded();
    }
}
