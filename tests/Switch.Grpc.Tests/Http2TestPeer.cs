using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Google.Protobuf;
using Switch.Grpc.Framing;
using Switch.Grpc.Http2;
using Switch.Grpc.Http2.Hpack;

namespace Switch.Grpc.Tests;

/// <summary>What a <see cref="PeerConnection"/> read: a whole request, a reset, or the client's close.</summary>
internal sealed record PeerEvent(PeerEventKind Kind, int StreamId, IReadOnlyDictionary<string, string> Headers, byte[] Body, uint ErrorCode);

internal enum PeerEventKind { Request, Reset, PingAck, Closed }

/// <summary>
/// A scripted HTTP/2 server over a real socket, for what a well-behaved server never does on cue (GOAWAY, RST_STREAM, a
/// stream limit counted, a kill mid-call). Each accepted connection runs the test's script.
/// </summary>
internal sealed class Http2TestPeer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Func<PeerConnection, Task> _script;
    private readonly List<Task> _connections = new();
    private readonly Task _accepting;
    private int _accepted;

    public Http2TestPeer(Func<PeerConnection, Task> script)
    {
        _script = script;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public Uri Address => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}");

    public int Accepted => Volatile.Read(ref _accepted);

    /// <summary>The scripts' failures (an assertion inside a script fails the test here).</summary>
    public Task Scripts
    {
        get { lock (_connections) return Task.WhenAll(_connections.ToArray()); }
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                Socket socket = await _listener.AcceptSocketAsync();
                int index = Interlocked.Increment(ref _accepted) - 1;
                var connection = new PeerConnection(socket, index);
                lock (_connections) _connections.Add(Task.Run(async () =>
                {
                    using (connection) await _script(connection);
                }));
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The listener stopped.
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        await _accepting;
    }
}

internal sealed class PeerConnection : IDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly HpackDecoder _decoder = new();
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly Dictionary<int, (Dictionary<string, string> Headers, MemoryStream Body)> _open = new();

    public PeerConnection(Socket socket, int index)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        Index = index;
    }

    /// <summary>Which accepted connection this is, from 0.</summary>
    public int Index { get; }

    /// <summary>Reads the client's preface and sends our SETTINGS.</summary>
    public async Task StartAsync(params (ushort Id, uint Value)[] settings)
    {
        byte[] preface = new byte[Http2Limits.ClientPreface.Length];
        await _stream.ReadExactlyAsync(preface);
        Assert.True(preface.AsSpan().SequenceEqual(Http2Limits.ClientPreface), "the client preface");
        await SendAsync(b => b.WriteSettings(settings));
    }

    public async Task SendAsync(Action<Http2FrameBuffer> write)
    {
        using var buffer = new Http2FrameBuffer();
        write(buffer);
        await _writeLock.WaitAsync();
        try
        {
            await _stream.WriteAsync(buffer.Written);
        }
        catch (IOException)
        {
            // The client is gone: what it would have read does not matter.
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>A 200 with content-type application/grpc, the message framed, and trailers with grpc-status 0.</summary>
    public Task RespondAsync(int streamId, IMessage message) => SendAsync(b =>
    {
        b.WriteHeaders(streamId, ResponseHeaders(), endStream: false, Http2Limits.DefaultMaxFrameBytes);
        byte[] frame = new byte[GrpcFrame.HeaderBytes + message.CalculateSize()];
        GrpcFrame.WriteHeader(frame, frame.Length - GrpcFrame.HeaderBytes);
        message.WriteTo(frame.AsSpan(GrpcFrame.HeaderBytes));
        b.WriteData(streamId, frame, endStream: false);
        b.WriteHeaders(streamId, Block(("grpc-status", "0")), endStream: true, Http2Limits.DefaultMaxFrameBytes);
    });

    public static byte[] ResponseHeaders()
    {
        byte[] block = new byte[64];
        int at = HpackEncoder.WriteIndexed(HpackStaticTable.Status_200, block);
        at += HpackEncoder.WriteLiteralWithIndexedName(HpackStaticTable.ContentType, "application/grpc"u8, block.AsSpan(at));
        return block[..at];
    }

    public static byte[] Block(params (string Name, string Value)[] fields)
    {
        byte[] block = new byte[1024];
        int at = 0;
        foreach (var (name, value) in fields)
            at += HpackEncoder.WriteLiteral(Encoding.ASCII.GetBytes(name), Encoding.ASCII.GetBytes(value), block.AsSpan(at));
        return block[..at];
    }

    /// <summary>The next whole request (HEADERS and DATA to END_STREAM), reset or ping ack; SETTINGS are acked, the rest skipped.</summary>
    public async Task<PeerEvent> NextAsync()
    {
        byte[] header = new byte[Http2FrameHeader.Bytes];
        while (true)
        {
            try
            {
                await _stream.ReadExactlyAsync(header);
            }
            catch (Exception e) when (e is EndOfStreamException or IOException)
            {
                return new PeerEvent(PeerEventKind.Closed, 0, new Dictionary<string, string>(), [], 0);
            }
            Http2FrameHeader frame = Http2FrameHeader.Read(header);
            byte[] payload = new byte[frame.PayloadBytes];
            await _stream.ReadExactlyAsync(payload);
            switch (frame.Type)
            {
                case Http2FrameType.Settings when !frame.Has(Http2Flags.Ack):
                    await SendAsync(b => b.WriteSettingsAck());
                    break;
                case Http2FrameType.Ping when frame.Has(Http2Flags.Ack):
                    return new PeerEvent(PeerEventKind.PingAck, 0, new Dictionary<string, string>(), payload, 0);
                case Http2FrameType.RstStream:
                    _open.Remove(frame.StreamId);
                    return new PeerEvent(PeerEventKind.Reset, frame.StreamId, new Dictionary<string, string>(), [], BinaryPrimitives.ReadUInt32BigEndian(payload));
                case Http2FrameType.Headers:
                {
                    Assert.True(frame.Has(Http2Flags.EndHeaders), "a request header block in one frame");
                    var headers = new Dictionary<string, string>();
                    _decoder.Decode(payload, new Sink(headers));
                    _open[frame.StreamId] = (headers, new MemoryStream());
                    if (frame.Has(Http2Flags.EndStream)) return Complete(frame.StreamId);
                    break;
                }
                case Http2FrameType.Data:
                    if (_open.TryGetValue(frame.StreamId, out var open)) open.Body.Write(payload);
                    if (frame.Has(Http2Flags.EndStream)) return Complete(frame.StreamId);
                    break;
                default:
                    break; // WINDOW_UPDATE, PING (the client sends none), SETTINGS ack
            }
        }
    }

    /// <summary>The next frame as it came (SETTINGS are acked, a header block decoded into <paramref name="headers"/>); a
    /// null header once the client closed the connection.</summary>
    public async Task<(Http2FrameHeader? Header, byte[] Payload)> NextFrameAsync(Dictionary<string, string>? headers = null)
    {
        byte[] header = new byte[Http2FrameHeader.Bytes];
        try
        {
            await _stream.ReadExactlyAsync(header);
        }
        catch (Exception e) when (e is EndOfStreamException or IOException)
        {
            return (null, []);
        }
        Http2FrameHeader frame = Http2FrameHeader.Read(header);
        byte[] payload = new byte[frame.PayloadBytes];
        await _stream.ReadExactlyAsync(payload);
        if (frame.Type == Http2FrameType.Settings && !frame.Has(Http2Flags.Ack)) await SendAsync(b => b.WriteSettingsAck());
        if (frame.Type == Http2FrameType.Headers) _decoder.Decode(payload, new Sink(headers ?? new Dictionary<string, string>()));
        return (frame, payload);
    }

    /// <summary>Frames until one of <paramref name="type"/> (on <paramref name="streamId"/>, if not 0); fails at the connection's end.</summary>
    public async Task<(Http2FrameHeader Header, byte[] Payload)> NextFrameAsync(Http2FrameType type, int streamId = 0)
    {
        while (true)
        {
            var (header, payload) = await NextFrameAsync();
            Assert.True(header is not null, $"the connection closed before a {type} frame");
            if (header!.Value.Type == type && (streamId == 0 || header.Value.StreamId == streamId)) return (header.Value, payload);
        }
    }

    private PeerEvent Complete(int streamId)
    {
        var (headers, body) = _open[streamId];
        _open.Remove(streamId);
        return new PeerEvent(PeerEventKind.Request, streamId, headers, body.ToArray(), 0);
    }

    /// <summary>Ends the connection at once (a reset, not a FIN).</summary>
    public void Kill()
    {
        _socket.LingerState = new LingerOption(true, 0);
        _socket.Close();
    }

    public void Dispose()
    {
        _stream.Dispose();
        _writeLock.Dispose();
    }

    private sealed class Sink(Dictionary<string, string> headers) : IHeaderSink
    {
        public void OnHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value) =>
            headers[Encoding.ASCII.GetString(name)] = Encoding.ASCII.GetString(value);
    }
}
