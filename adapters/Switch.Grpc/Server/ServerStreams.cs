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
