using System.Buffers;
using Google.Protobuf;
using Switch.Grpc.Framing;

namespace Switch.Grpc.Server;

/// <summary>Incoming messages of a client- or duplex-streaming call; reads default to the call's token.</summary>
public sealed class ServerRequestStream<T> where T : class, IMessage<T>
{
    private readonly GrpcMessageReader<T> _reader;
    private readonly CancellationToken _callToken;

    internal ServerRequestStream(GrpcMessageReader<T> reader, CancellationToken callToken)
    {
        _reader = reader;
        _callToken = callToken;
    }

    /// <summary>The next message, or null once the client has half-closed.</summary>
    public ValueTask<T?> ReadAsync(CancellationToken cancellationToken = default) =>
        _reader.ReadAsync(cancellationToken.CanBeCanceled ? cancellationToken : _callToken);

    public IAsyncEnumerable<T> ReadAllAsync(CancellationToken cancellationToken = default) =>
        _reader.ReadAllAsync(cancellationToken.CanBeCanceled ? cancellationToken : _callToken);
}

/// <summary>
/// Incoming messages of a call mapped raw (<see cref="GrpcRouter.MapDuplexStreamingRaw"/>): each message's bytes as
/// they sit in the request body's buffer (inflated first if they came compressed), for a decoder of the caller's own,
/// with no message object and no copy. <see cref="Message"/> is valid until the next <see cref="ReadAsync"/>.
/// </summary>
public sealed class ServerRawRequestStream
{
    private readonly GrpcFrameReader _frames;
    private readonly CancellationToken _callToken;

    internal ServerRawRequestStream(GrpcFrameReader frames, CancellationToken callToken)
    {
        _frames = frames;
        _callToken = callToken;
    }

    /// <summary>The message the last <see cref="ReadAsync"/> took: its protobuf bytes, valid until the next read.</summary>
    public ReadOnlySequence<byte> Message => _frames.Message;

    /// <summary>Takes the next message into <see cref="Message"/>: true, or false once the client has half-closed.</summary>
    /// <exception cref="RpcException">As the typed stream's read, for the framing (truncated, oversize, bad gzip).</exception>
    public async ValueTask<bool> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (!cancellationToken.CanBeCanceled) cancellationToken = _callToken;
        while (true)
        {
            if (_frames.TryNext(out bool ended)) return true;
            if (ended) return false;
            _frames.Hold(await _frames.ReadAsync(cancellationToken).ConfigureAwait(false));
        }
    }

    /// <summary>
    /// The status for a message whose bytes the caller's decoder refused (<paramref name="e"/>: why, worded as protobuf's
    /// <see cref="InvalidProtocolBufferException"/>): the same as the typed stream's read throws for a message that does
    /// not parse. Nothing more is read after it.
    /// </summary>
    public RpcException Refuse(Exception e) => _frames.Refuse(e);
}

/// <summary>
/// The request of a unary call mapped raw (<see cref="GrpcRouter.MapUnaryRaw"/>): its message's bytes (inflated if they
/// came compressed), the router's copy, valid until the handler's task ends; and the one response.
/// </summary>
public readonly struct ServerRawRequest
{
    private readonly ServerCall _call;
    private readonly GrpcFrameReader _frames;

    internal ServerRawRequest(ServerCall call, GrpcFrameReader frames, ReadOnlyMemory<byte> message)
    {
        _call = call;
        _frames = frames;
        Message = message;
    }

    /// <summary>The request message's protobuf bytes.</summary>
    public ReadOnlyMemory<byte> Message { get; }

    /// <summary>The status for a message the handler's decoder refused (<paramref name="e"/>: why, worded as protobuf's
    /// <see cref="InvalidProtocolBufferException"/>): the same as the typed path ends the call with.</summary>
    public RpcException Refuse(Exception e) => _frames.Refuse(e);

    /// <summary>The call's one response message, encoded by the caller (buffered: it goes out with the status when the
    /// handler returns). The encoder is done with once this returns.</summary>
    /// <exception cref="InvalidOperationException">A response was written already.</exception>
    public ValueTask RespondAsync<TEncoder>(TEncoder encoder) where TEncoder : struct, IMessageEncoder
    {
        if (_call.MessagesWritten != 0) throw new InvalidOperationException("a unary call has one response");
        return _call.WriteEncodedAsync(encoder, flush: false, default);
    }
}

/// <summary>
/// Outgoing messages of a server- or duplex-streaming call. WriteAsync only buffers (and flushes by itself
/// past GrpcServerOptions.MaxBufferedWriteBytes); call FlushAsync when the peer must see what was written.
/// Everything still buffered is flushed with the status when the handler returns. One writer at a time.
/// </summary>
public sealed class ServerResponseStream<T> where T : class, IMessage<T>
{
    private readonly ServerCall _call;

    internal ServerResponseStream(ServerCall call) => _call = call;

    public ValueTask WriteAsync(T message, CancellationToken cancellationToken = default) =>
        _call.WriteAsync(message, flush: false, cancellationToken);

    public ValueTask WriteAndFlushAsync(T message, CancellationToken cancellationToken = default) =>
        _call.WriteAsync(message, flush: true, cancellationToken);

    /// <summary>As <see cref="WriteAsync"/>, for a T the caller encodes itself (<see cref="IMessageEncoder"/>): no message
    /// object on a hot path. The encoder is done with once this returns.</summary>
    public ValueTask WriteEncodedAsync<TEncoder>(TEncoder encoder, CancellationToken cancellationToken = default) where TEncoder : struct, IMessageEncoder =>
        _call.WriteEncodedAsync(encoder, flush: false, cancellationToken);

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => _call.FlushAsync(cancellationToken);
}
