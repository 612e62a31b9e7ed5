using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Google.Protobuf;

namespace Switch.Grpc.Framing;

/// <summary>
/// Reads framed messages from a PipeReader as they arrive: a frame split across reads waits for the rest,
/// many frames in one read are returned one by one without another read. Not thread-safe: one reader at a time.
/// Between calls it may hold the last read's buffer un-advanced: nothing else may read the pipe meanwhile.
/// </summary>
public sealed class GrpcMessageReader<T> where T : class, IMessage<T>
{
    private readonly PipeReader _input;
    private readonly MessageParser<T> _parser;
    private readonly int _maxMessageBytes;
    private readonly bool _gzip;
    private readonly StatusCode _malformedCode;
    private bool _ended;
    // The last read's bytes not yet parsed, held (not advanced) while they still hold whole frames.
    private ReadOnlySequence<byte> _held;
    private bool _heldIsLast;
    private bool _holding;

    /// <param name="gzip">The call's grpc-encoding is gzip: frames with the compressed flag are inflated (bounded by the
    /// same limit). Otherwise a compressed frame fails the call with INTERNAL.</param>
    /// <param name="malformedCode">The status of a message that does not parse: INTERNAL (the spec), or INVALID_ARGUMENT
    /// on a server that tells callers their request is wrong.</param>
    public GrpcMessageReader(PipeReader input, MessageParser<T> parser, int maxMessageBytes, bool gzip = false,
        StatusCode malformedCode = StatusCode.Internal)
    {
        _gzip = gzip;
        _malformedCode = malformedCode;
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(parser);
        ArgumentOutOfRangeException.ThrowIfNegative(maxMessageBytes);
        _input = input;
        _parser = parser;
        _maxMessageBytes = maxMessageBytes;
    }

    /// <summary>Reads frames from a Stream (wrapped in a PipeReader that leaves the stream open).</summary>
    public static GrpcMessageReader<T> FromStream(Stream stream, MessageParser<T> parser, int maxMessageBytes) =>
        new(PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true)), parser, maxMessageBytes);

    /// <summary>True once the end of the stream was reached cleanly.</summary>
    public bool IsEnded => _ended;

    /// <summary>
    /// The next message, or null at a clean end of stream. Frames already read are parsed from the held buffer
    /// without another read: the pipe is advanced once per read, not once per message (on Kestrel's HTTP/2
    /// request body each read and advance takes locks and does flow-control accounting).
    /// </summary>
    /// <exception cref="RpcException">INTERNAL on a truncated frame, an unexpected compressed frame, bad gzip or an unparsable message; RESOURCE_EXHAUSTED on an oversize frame or one that inflates past the limit.</exception>
    public async ValueTask<T?> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (_ended) return null;
        while (true)
        {
            if (_holding)
            {
                T? message = NextFromHeld(out bool done);
                if (message is not null || done) return message;
            }
            ReadResult result = await _input.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (result.IsCanceled)
            {
                _input.AdvanceTo(result.Buffer.Start);
                throw new OperationCanceledException("Read was canceled.");
            }
            _held = result.Buffer;
            _heldIsLast = result.IsCompleted;
            _holding = true;
        }
    }

    /// <summary>
    /// The next whole frame of the held buffer, parsed; or null having given the buffer back to the pipe (then
    /// <paramref name="done"/> says whether the stream ended cleanly, else more must be read).
    /// </summary>
    private T? NextFromHeld(out bool done)
    {
        done = false;
        ReadOnlySequence<byte> buffer = _held;
        bool framed;
        bool compressed;
        ReadOnlySequence<byte> payload;
        try
        {
            framed = GrpcFrame.TryRead(ref buffer, _maxMessageBytes, out payload, out compressed);
            if (compressed && !_gzip)
                throw new RpcException(StatusCode.Internal, "Received a compressed message but no grpc-encoding was negotiated.");
        }
        catch
        {
            Release(_held.Start); // Leave the reader consistent; the stream is dead to us anyway.
            throw;
        }

        if (framed)
        {
            T message;
            try
            {
                message = compressed ? GzipMessages.Parse(payload, _parser, _maxMessageBytes) : _parser.ParseFrom(payload);
            }
            catch (Exception e) when (e is RpcException or InvalidProtocolBufferException)
            {
                Release(buffer.Start);
                throw Malformed(e);
            }
            _held = buffer; // consumed up to here; the pipe is told when the held bytes run out
            return message;
        }

        if (_heldIsLast)
        {
            long left = buffer.Length;
            Release(buffer.End);
            if (left != 0)
                throw new RpcException(StatusCode.Internal, $"Stream ended inside a message frame ({left} bytes left over).");
            _ended = true;
            done = true;
            return null;
        }
        // Incomplete frame: consume what was parsed, and tell the pipe we've seen everything so it waits for more.
        _holding = false;
        _input.AdvanceTo(buffer.Start, buffer.End);
        return null;
    }

    private RpcException Malformed(Exception e)
    {
        if (e is RpcException { StatusCode: not StatusCode.Internal } rpc) return rpc; // e.g. inflated past the limit
        string reason = e is RpcException inner ? inner.Status.Detail : "Failed to deserialize message: " + e.Message;
        return _malformedCode == StatusCode.Internal
            ? e as RpcException ?? new RpcException(StatusCode.Internal, reason)
            : new RpcException(_malformedCode, $"{StatusNames.Of(_malformedCode)}: malformed request message: {reason}");
    }

    private void Release(SequencePosition consumed)
    {
        _holding = false;
        _input.AdvanceTo(consumed);
    }

    /// <summary>All remaining messages, as they arrive.</summary>
    public async IAsyncEnumerable<T> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (await ReadAsync(cancellationToken).ConfigureAwait(false) is { } message)
            yield return message;
    }
}
