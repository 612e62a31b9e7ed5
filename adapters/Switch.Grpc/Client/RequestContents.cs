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
        _messageBytes = MessageBytes(message, maxSendMessageBytes);
        if (gzip) _gzipFrame = GzipFrame(message, _messageBytes, maxSendMessageBytes);
        Headers.TryAddWithoutValidation("content-type", GrpcProtocol.ContentType);
    }

    /// <summary>The message's size, refused (RESOURCE_EXHAUSTED, nothing sent) over the limit.</summary>
    internal static int MessageBytes(T message, int maxSendMessageBytes)
    {
        int messageBytes = message.CalculateSize();
        if (messageBytes > maxSendMessageBytes)
            throw new RpcException(StatusCode.ResourceExhausted, $"Sending message larger than max ({messageBytes} vs. {maxSendMessageBytes})");
        return messageBytes;
    }

    /// <summary>The whole compressed frame (its length is known only after deflating).</summary>
    internal static ReadOnlyMemory<byte> GzipFrame(T message, int messageBytes, int maxSendMessageBytes)
    {
        var frame = new ArrayBufferWriter<byte>(GrpcFrame.HeaderBytes + messageBytes + 64);
        GzipMessages.Write(frame, message, maxSendMessageBytes);
        return frame.WrittenMemory;
    }

    /// <summary>The uncompressed frame, into exactly <see cref="GrpcFrame.HeaderBytes"/> + <paramref name="messageBytes"/> bytes.</summary>
    internal static void WritePlainFrame(T message, int messageBytes, Span<byte> frame)
    {
        GrpcFrame.WriteHeader(frame, messageBytes);
        message.WriteTo(frame.Slice(GrpcFrame.HeaderBytes, messageBytes));
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
            WritePlainFrame(_message, _messageBytes, buffer.AsSpan(0, total));
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
