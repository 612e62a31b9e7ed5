using System.IO.Pipelines;
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
/// GrpcChannelOptions.MaxBufferedWriteBytes): write many, then FlushAsync once. CompleteAsync flushes and
/// half-closes. One writer at a time.
/// </summary>
public sealed class ClientRequestStream<TRequest> where TRequest : class, IMessage<TRequest>
{
    private readonly StreamingRequestContent _content;
    private readonly Func<Exception, RpcException> _fail;
    private readonly CancellationToken _callToken;
    private readonly int _maxSendMessageBytes;
    private readonly int _maxBufferedWriteBytes;
    private readonly bool _gzip;
    private PipeWriter? _writer;
    private int _unflushedBytes;
    private bool _completed;

    internal ClientRequestStream(StreamingRequestContent content, Func<Exception, RpcException> fail, CancellationToken callToken,
        int maxSendMessageBytes, int maxBufferedWriteBytes, bool gzip)
    {
        _gzip = gzip;
        _content = content;
        _fail = fail;
        _callToken = callToken;
        _maxSendMessageBytes = maxSendMessageBytes;
        _maxBufferedWriteBytes = maxBufferedWriteBytes;
    }

    public ValueTask WriteAsync(TRequest message, CancellationToken cancellationToken = default) =>
        WriteCoreAsync(new MessageFrame<TRequest>(message ?? throw new ArgumentNullException(nameof(message))), false, cancellationToken);

    public ValueTask WriteAndFlushAsync(TRequest message, CancellationToken cancellationToken = default) =>
        WriteCoreAsync(new MessageFrame<TRequest>(message ?? throw new ArgumentNullException(nameof(message))), true, cancellationToken);

    /// <summary>As <see cref="WriteAsync(TRequest, CancellationToken)"/>, for a TRequest the caller encodes itself
    /// (<see cref="IMessageEncoder"/>): no message object on a hot path. The encoder is done with once this returns.</summary>
    public ValueTask WriteEncodedAsync<TEncoder>(TEncoder encoder, CancellationToken cancellationToken = default) where TEncoder : struct, IMessageEncoder
    {
        if (_writer is { } writer && !_completed)
        {
            // The stream is open: framed at once (no state machine), and a flush only past the buffered limit.
            try
            {
                _unflushedBytes += _gzip
                    ? GzipMessages.WriteEncoded(writer, ref encoder, _maxSendMessageBytes)
                    : GrpcFrame.WriteEncoded(writer, ref encoder, _maxSendMessageBytes);
            }
            catch (Exception e)
            {
                return ValueTask.FromException(_fail(e));
            }
            return _unflushedBytes >= _maxBufferedWriteBytes ? FlushAsync(cancellationToken) : default;
        }
        return WriteCoreAsync(new EncodedFrame<TEncoder>(encoder), false, cancellationToken);
    }

    private async ValueTask WriteCoreAsync<TFrame>(TFrame frame, bool flush, CancellationToken cancellationToken) where TFrame : struct, IOutgoingFrame
    {
        if (_completed) throw new InvalidOperationException("The request stream is already complete.");
        try
        {
            PipeWriter writer = _writer ?? await OpenAsync().ConfigureAwait(false);
            _unflushedBytes += frame.Write(writer, _maxSendMessageBytes, _gzip);
            if (flush || _unflushedBytes >= _maxBufferedWriteBytes)
                await FlushCoreAsync(writer, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            throw _fail(e);
        }
    }

    public async ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        if (_completed) throw new InvalidOperationException("The request stream is already complete.");
        try
        {
            PipeWriter writer = _writer ?? await OpenAsync().ConfigureAwait(false);
            await FlushCoreAsync(writer, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            throw _fail(e);
        }
    }

    /// <summary>Flushes what is buffered and ends the request stream (END_STREAM).</summary>
    public async Task CompleteAsync()
    {
        if (_completed) return;
        _completed = true;
        try
        {
            if (_writer is { } writer)
            {
                if (_unflushedBytes > 0) await FlushCoreAsync(writer, default).ConfigureAwait(false);
                await writer.CompleteAsync().ConfigureAwait(false);
            }
            _content.Complete();
        }
        catch (Exception e)
        {
            throw _fail(e);
        }
    }

    private async ValueTask<PipeWriter> OpenAsync()
    {
        Stream stream = await _content.StreamTask.WaitAsync(_callToken).ConfigureAwait(false);
        return _writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 16 * 1024, leaveOpen: true));
    }

    private async ValueTask FlushCoreAsync(PipeWriter writer, CancellationToken cancellationToken)
    {
        _unflushedBytes = 0;
        if (!cancellationToken.CanBeCanceled) cancellationToken = _callToken;
        FlushResult result = await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (result.IsCanceled) throw new OperationCanceledException(cancellationToken);
    }
}
