using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using Google.Protobuf;
using Switch.Grpc.Framing;

namespace Switch.Grpc.Client;

/// <summary>The body of a single-request call: one frame, with a known length, serialized at send time into a pooled buffer.</summary>
internal sealed class UnaryRequestContent<T> : HttpContent where T : IMessage<T>
{
    private readonly T _message;
    private readonly int _messageBytes;
    // The whole compressed frame, made up front when the channel sends gzip (its length is known only after deflating).
    private readonly ReadOnlyMemory<byte> _gzipFrame;

    public UnaryRequestContent(T message, int maxSendMessageBytes, bool gzip = false)
    {
        _message = message;
        _messageBytes = message.CalculateSize();
        if (_messageBytes > maxSendMessageBytes)
            throw new RpcException(StatusCode.ResourceExhausted, $"Sending message larger than max ({_messageBytes} vs. {maxSendMessageBytes})");
        if (gzip)
        {
            var frame = new ArrayBufferWriter<byte>(GrpcFrame.HeaderBytes + _messageBytes + 64);
            GzipMessages.Write(frame, message, maxSendMessageBytes);
            _gzipFrame = frame.WrittenMemory;
        }
        Headers.TryAddWithoutValidation("content-type", GrpcProtocol.ContentType);
    }

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        if (!_gzipFrame.IsEmpty)
        {
            await stream.WriteAsync(_gzipFrame, cancellationToken).ConfigureAwait(false);
            return;
        }
        int total = GrpcFrame.HeaderBytes + _messageBytes;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(total);
        try
        {
            GrpcFrame.WriteHeader(buffer, _messageBytes);
            _message.WriteTo(buffer.AsSpan(GrpcFrame.HeaderBytes, _messageBytes));
            await stream.WriteAsync(buffer.AsMemory(0, total), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override bool TryComputeLength(out long length)
    {
        length = _gzipFrame.IsEmpty ? GrpcFrame.HeaderBytes + _messageBytes : _gzipFrame.Length;
        return true;
    }
}

/// <summary>
/// The body of a streaming-request call. HttpClient hands us the HTTP/2 request stream and waits on the task
/// we return; the stream writer writes frames into it until CompleteAsync ends the task (END_STREAM).
/// </summary>
internal sealed class StreamingRequestContent : HttpContent
{
    private readonly TaskCompletionSource<Stream> _stream = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public StreamingRequestContent() => Headers.TryAddWithoutValidation("content-type", GrpcProtocol.ContentType);

    public Task<Stream> StreamTask => _stream.Task;

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        // HttpClient holds a request's HEADERS until its body writes or flushes: on a connection whose other streams
        // are stalled nothing else flushes, and a call that sends nothing before it reads would never start.
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        _stream.TrySetResult(stream);
        // HttpClient cancels this token when the call is reset; it only sends RST_STREAM once the body task ends.
        await _done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override bool TryComputeLength(out long length)
    {
        length = -1;
        return false;
    }

    /// <summary>Ends the request body normally.</summary>
    public void Complete() => _done.TrySetResult();

    /// <summary>Fails both sides: a writer still waiting for the stream, and HttpClient's send.</summary>
    public void Abort(Exception reason)
    {
        _stream.TrySetException(reason);
        _done.TrySetException(reason);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) Abort(new ObjectDisposedException(nameof(StreamingRequestContent)));
        base.Dispose(disposing);
    }
}
