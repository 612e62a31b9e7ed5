using System.Net;
using Google.Protobuf;
using Switch.Grpc.Client;
using Switch.Grpc.Http2;
using Switch.Grpc.Server;
using Switch.Grpc.Tests.Interop;

namespace Switch.Grpc.Tests;

/// <summary>
/// The unary call over the channel's own HTTP/2 connection, where the protocol matters: flow control both ways against
/// Kestrel, and against a scripted server (real sockets) the stream limit, GOAWAY, RST_STREAM, PING, a local deadline and
/// cancellation seen by the server as a reset, and a connection killed mid-call.
/// </summary>
public sealed class Http2ClientConnectionTests
{
    private static readonly EchoReply Ok = new() { Text = "ok" };

    [Fact]
    public async Task Bodies_larger_than_the_windows_flow_both_ways()
    {
        var router = new InteropService().Map(new GrpcRouter());
        await using GrpcServer server = await GrpcServer.StartAsync(router, new GrpcEndpointOptions()).Bounded();
        // The smallest stream window the channel takes; the connection's (16 MiB) is passed too by eight 3 MiB answers.
        using var channel = GrpcChannel.ForAddress(server.Address, new GrpcChannelOptions { InitialStreamWindowBytes = 65_535 });
        const int bytes = 3 * 1024 * 1024; // over Kestrel's own stream (768 KiB) and connection (1 MiB) windows too
        var payload = ByteString.CopyFrom(Enumerable.Range(0, bytes).Select(i => (byte)i).ToArray());
        var calls = Enumerable.Range(0, 8).Select(_ => channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { Payload = payload })).ToArray();
        foreach (EchoReply reply in await Task.WhenAll(calls).Bounded()) Assert.True(reply.Payload.Equals(payload));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Calls_beyond_the_servers_stream_limit_wait_for_a_slot(bool multipleConnections)
    {
        const int limit = 2;
        const int calls = 20;
        int open = 0;
        int mostOpen = 0;
        await using var peer = new Http2TestPeer(async connection =>
        {
            await connection.StartAsync((Http2Setting.MaxConcurrentStreams, limit));
            int openHere = 0;
            var answers = new List<Task>();
            while (await connection.NextAsync() is { Kind: PeerEventKind.Request } request)
            {
                Interlocked.Increment(ref open);
                int here = Interlocked.Increment(ref openHere);
                Assert.True(here <= limit, $"{here} streams open on one connection, over its limit of {limit}");
                InterlockedMax(ref mostOpen, here);
                answers.Add(Task.Run(async () =>
                {
                    await Task.Delay(20);
                    Interlocked.Decrement(ref openHere); // before the answer: the client may start the next at once
                    Interlocked.Decrement(ref open);
                    await connection.RespondAsync(request.StreamId, Ok);
                }));
            }
            await Task.WhenAll(answers);
        });
        using (var channel = GrpcChannel.ForAddress(peer.Address, new GrpcChannelOptions { EnableMultipleHttp2Connections = multipleConnections }))
        {
            var replies = await Task.WhenAll(Enumerable.Range(0, calls).Select(_ => channel.UnaryAsync(InteropMethods.Unary, new EchoRequest()))).Bounded();
            Assert.All(replies, r => Assert.Equal("ok", r.Text));
        }
        await peer.Scripts.Bounded();
        Assert.Equal(limit, mostOpen);
        if (multipleConnections) Assert.True(peer.Accepted > 1, "more connections once one is at its limit");
        else Assert.Equal(1, peer.Accepted);
    }

    [Fact]
    public async Task Calls_above_a_goaways_last_stream_go_again_on_a_new_connection()
    {
        var seen = new int[2];
        await using var peer = new Http2TestPeer(async connection =>
        {
            await connection.StartAsync((Http2Setting.MaxConcurrentStreams, 100));
            if (connection.Index == 0)
            {
                var requests = new List<PeerEvent>();
                while (requests.Count < 3) requests.Add(await connection.NextAsync());
                Assert.All(requests, r => Assert.Equal(PeerEventKind.Request, r.Kind));
                seen[0] = requests.Count;
                int first = requests.Min(r => r.StreamId);
                await connection.SendAsync(b => b.WriteGoAway(first, Http2ErrorCode.NoError));
                await connection.RespondAsync(first, Ok);
                return; // and close
            }
            while (await connection.NextAsync() is { Kind: PeerEventKind.Request } request)
            {
                Interlocked.Increment(ref seen[1]);
                await connection.RespondAsync(request.StreamId, Ok);
            }
        });
        using var channel = GrpcChannel.ForAddress(peer.Address, new GrpcChannelOptions { EnableMultipleHttp2Connections = false });
        var replies = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => channel.UnaryAsync(InteropMethods.Unary, new EchoRequest()))).Bounded();
        Assert.All(replies, r => Assert.Equal("ok", r.Text));
        Assert.Equal(3, seen[0]);
        Assert.Equal(2, seen[1]); // the two the server did not take, and only those
        Assert.Equal(2, peer.Accepted);
    }

    [Fact]
    public async Task A_server_shutting_down_mid_run_finishes_its_calls_and_later_ones_are_unavailable()
    {
        const int calls = 10;
        int started = 0;
        var allStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var router = new GrpcRouter().MapUnary<EchoRequest, EchoReply>(InteropMethods.Unary, async (request, _) =>
        {
            if (request.SleepMs > 0 && Interlocked.Increment(ref started) == calls) allStarted.TrySetResult();
            await Task.Delay(request.SleepMs);
            return new EchoReply { Text = request.Text };
        });
        GrpcServer server = await GrpcServer.StartAsync(router, new GrpcEndpointOptions()).Bounded();
        using var channel = GrpcChannel.ForAddress(server.Address);
        await channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { Text = "warm-up" }).Bounded();
        var inFlight = Enumerable.Range(0, calls).Select(i => channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { Text = "f" + i, SleepMs = 500 })).ToArray();
        await allStarted.Task.Bounded(); // all taken by the server: a call it had not taken would go again, to a closed port
        Task stopping = server.DisposeAsync().AsTask(); // Kestrel sends GOAWAY and lets the calls it took finish
        await Task.Delay(100);
        await TestUtil.ExpectStatus(StatusCode.Unavailable, () => channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { Text = "late" }));
        EchoReply[] replies = await Task.WhenAll(inFlight).Bounded();
        Assert.Equal(Enumerable.Range(0, calls).Select(i => "f" + i), replies.Select(r => r.Text));
        await stopping.Bounded();
    }

    [Theory]
    [InlineData(0x8u, StatusCode.Cancelled)]
    [InlineData(0xbu, StatusCode.ResourceExhausted)]
    [InlineData(0x2u, StatusCode.Internal)]
    public async Task A_reset_from_the_server_ends_the_call_with_its_mapped_status(uint errorCode, StatusCode expected)
    {
        await using var peer = new Http2TestPeer(async connection =>
        {
            await connection.StartAsync();
            while (await connection.NextAsync() is { Kind: PeerEventKind.Request } request)
                await connection.SendAsync(b => b.WriteRstStream(request.StreamId, errorCode));
        });
        using var channel = GrpcChannel.ForAddress(peer.Address);
        await TestUtil.ExpectStatus(expected, () => channel.UnaryAsync(InteropMethods.Unary, new EchoRequest()));
        // The connection stays usable for the next call.
        await TestUtil.ExpectStatus(expected, () => channel.UnaryAsync(InteropMethods.Unary, new EchoRequest()));
        Assert.Equal(1, peer.Accepted);
    }

    [Fact]
    public async Task A_refused_stream_is_sent_again()
    {
        int requests = 0;
        await using var peer = new Http2TestPeer(async connection =>
        {
            await connection.StartAsync();
            while (await connection.NextAsync() is { Kind: PeerEventKind.Request } request)
            {
                if (Interlocked.Increment(ref requests) == 1) await connection.SendAsync(b => b.WriteRstStream(request.StreamId, Http2ErrorCode.RefusedStream));
                else await connection.RespondAsync(request.StreamId, Ok);
            }
        });
        using var channel = GrpcChannel.ForAddress(peer.Address);
        Assert.Equal("ok", (await channel.UnaryAsync(InteropMethods.Unary, new EchoRequest()).Bounded()).Text);
        Assert.Equal(2, requests);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_deadline_or_cancellation_resets_the_stream_the_server_sees(bool byDeadline)
    {
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reset = new TaskCompletionSource<(PeerEvent Request, PeerEvent Reset)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var peer = new Http2TestPeer(async connection =>
        {
            await connection.StartAsync();
            await connection.RespondAsync((await connection.NextAsync()).StreamId, Ok); // the warm-up
            PeerEvent request = await connection.NextAsync(); // never answered
            held.TrySetResult();
            reset.TrySetResult((request, await connection.NextAsync()));
            await connection.NextAsync();
        });
        using var channel = GrpcChannel.ForAddress(peer.Address);
        // Connected first: on a loaded machine a connect can outlast the deadline, and then no stream is ever sent.
        await channel.UnaryAsync(InteropMethods.Unary, new EchoRequest()).Bounded();
        using var cancel = new CancellationTokenSource();
        CallOptions options = byDeadline ? new CallOptions { Timeout = TimeSpan.FromMilliseconds(300) } : new CallOptions { CancellationToken = cancel.Token };
        if (!byDeadline) _ = held.Task.ContinueWith(_ => cancel.Cancel(), TaskScheduler.Default);
        await TestUtil.ExpectStatus(byDeadline ? StatusCode.DeadlineExceeded : StatusCode.Cancelled,
            () => channel.UnaryAsync(InteropMethods.Unary, new EchoRequest(), options));
        var (sent, seen) = await reset.Task.Bounded();
        Assert.Equal(PeerEventKind.Request, sent.Kind);
        Assert.Equal(byDeadline, sent.Headers.ContainsKey("grpc-timeout"));
        Assert.Equal(PeerEventKind.Reset, seen.Kind);
        Assert.Equal(sent.StreamId, seen.StreamId);
        Assert.Equal(Http2ErrorCode.Cancel, seen.ErrorCode);
    }

    [Fact]
    public async Task A_connection_killed_mid_call_is_unavailable_and_the_next_call_reconnects()
    {
        await using var peer = new Http2TestPeer(async connection =>
        {
            await connection.StartAsync();
            while (await connection.NextAsync() is { Kind: PeerEventKind.Request } request)
            {
                if (connection.Index == 0)
                {
                    connection.Kill();
                    return;
                }
                await connection.RespondAsync(request.StreamId, Ok);
            }
        });
        using var channel = GrpcChannel.ForAddress(peer.Address);
        await TestUtil.ExpectStatus(StatusCode.Unavailable, () => channel.UnaryAsync(InteropMethods.Unary, new EchoRequest()));
        Assert.Equal("ok", (await channel.UnaryAsync(InteropMethods.Unary, new EchoRequest()).Bounded()).Text);
        Assert.Equal(2, peer.Accepted);
    }

    [Fact]
    public async Task Pings_are_answered_with_their_payload()
    {
        byte[] opaque = [1, 2, 3, 4, 5, 6, 7, 8];
        var ack = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var peer = new Http2TestPeer(async connection =>
        {
            await connection.StartAsync();
            PeerEvent request = await connection.NextAsync();
            await connection.SendAsync(b => b.WritePing(opaque));
            PeerEvent answer = await connection.NextAsync();
            ack.TrySetResult(answer.Body);
            await connection.RespondAsync(request.StreamId, Ok);
            await connection.NextAsync();
        });
        using var channel = GrpcChannel.ForAddress(peer.Address);
        Assert.Equal("ok", (await channel.UnaryAsync(InteropMethods.Unary, new EchoRequest()).Bounded()).Text);
        Assert.Equal(opaque, await ack.Task.Bounded());
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while (value > (current = Volatile.Read(ref target)) && Interlocked.CompareExchange(ref target, value, current) != current) { }
    }
}
