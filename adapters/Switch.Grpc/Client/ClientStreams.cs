using System.Runtime.CompilerServices;
using Google.Protobuf;
using Switch.Grpc.Framing;

namespace Switch.Grpc.Client;

/// <summary>Response messages of a streaming call as they arrive; at the end, a non-OK status throws RpcException.</summary>
public sealed class ClientResponseStream<TResponse> where TResponse : class, IMessage<TResponse>
{
    private readonly Func<CancellationToken, ValueTask<TResponse?>> _read;

    internal ClientResponseStream(Func<CancellationToken, ValueTask<TResponse?>> read) => _read = read;

    /// <summary>The next message, or null when the server ended the call with OK.</summary>
    public ValueTask<TResponse?> ReadAsync(CancellationToken cancellationToken = default) => _read(cancellationToken);

    public async IAsyncEnumerable<TResponse> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (await _read(cancellationToken).ConfigureAwait(false) is { } message)
            yield return message;
    }
}

/// <summary>
/// Request messages of a streaming call. WriteAsync only buffers (and flushes by itself past
/// GrpcChannelOptions.MaxBufferedWriteBytes): write many, then FlushAsync once; what a flush sends goes in as few HTTP/2
/// DATA frames as the server's frame size and windows allow, and a flush the windows hold back waits for them.
/// CompleteAsync flushes and half-closes. One writer at a time.
/// </summary>
public sealed class ClientRequestStream<TRequest> where TRequest : class, IMessage<TRequest>
{
    private readonly IRequestSink _sink;
    private readonly int _maxSendMessageBytes;
    private readonly int _maxBufferedWriteBytes;
    private readonly bool _gzip;
    private int _unflushedBytes;
    private bool _completed;

    internal ClientRequestStream(IRequestSink sink, int maxSendMessageBytes, int maxBufferedWriteBytes, bool gzip)
    {
        _sink = sink;
        _maxSendMessageBytes = maxSendMessageBytes;
        _maxBufferedWriteBytes = maxBufferedWriteBytes;
        _gzip = gzip;
    }

    public ValueTask WriteAsync(TRequest message, CancellationToken cancellationToken = default) =>
        Write(new MessageFrame<TRequest>(message ?? throw new ArgumentNullException(nameof(message))), false, cancellationToken);

    public ValueTask WriteAndFlushAsync(TRequest message, CancellationToken cancellationToken = default) =>
        Write(new MessageFrame<TRequest>(message ?? throw new ArgumentNullException(nameof(message))), true, cancellationToken);

    /// <summary>As <see cref="WriteAsync(TRequest, CancellationToken)"/>, for a TRequest the caller encodes itself
    /// (<see cref="IMessageEncoder"/>): no message object on a hot path. The encoder is done with once this returns.</summary>
    public ValueTask WriteEncodedAsync<TEncoder>(TEncoder encoder, CancellationToken cancellationToken = default) where TEncoder : struct, IMessageEncoder =>
        Write(new EncodedFrame<TEncoder>(encoder), false, cancellationToken);

    /// <summary>Frames the message into the call's buffer at once (no state machine); a flush only when asked or past the
    /// buffered limit.</summary>
    private ValueTask Write<TFrame>(TFrame frame, bool flush, CancellationToken cancellationToken) where TFrame : struct, IOutgoingFrame
    {
        if (_completed) return ValueTask.FromException(new InvalidOperationException("The request stream is already complete."));
        try
        {
            _unflushedBytes += frame.Write(_sink.Staging, _maxSendMessageBytes, _gzip);
        }
        catch (Exception e)
        {
            return ValueTask.FromException(_sink.FailWrite(e));
        }
        return flush || _unflushedBytes >= _maxBufferedWriteBytes ? FlushAsync(cancellationToken) : default;
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        if (_completed) return ValueTask.FromException(new InvalidOperationException("The request stream is already complete."));
        _unflushedBytes = 0;
        return _sink.FlushAsync(cancellationToken);
    }

    /// <summary>Flushes what is buffered and ends the request stream (END_STREAM).</summary>
    public async Task CompleteAsync()
    {
        if (_completed) return;
        _completed = true;
        _unflushedBytes = 0;
        await _sink.CompleteAsync().ConfigureAwait(false);
    }
}
