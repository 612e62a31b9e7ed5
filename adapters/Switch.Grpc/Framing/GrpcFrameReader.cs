using System.Buffers;
using System.IO.Pipelines;
using Google.Protobuf;

namespace Switch.Grpc.Framing;

/// <summary>
/// Takes framed messages' bytes off a PipeReader as they arrive, without parsing them: a frame split across reads
/// waits for the rest, many frames in one read are handed out one by one without another read. A message's bytes
/// (<see cref="Message"/>) are a slice of the pipe's own buffer, valid until the next <see cref="TryNext"/>: the pipe
/// is advanced only once the held bytes run out (on Kestrel's HTTP/2 request body each read and advance takes locks
/// and does flow-control accounting). Not thread-safe: one reader at a time, and nothing else may read the pipe.
/// </summary>
public sealed class GrpcFrameReader
{
    private readonly PipeReader _input;
    private readonly int _maxMessageBytes;
    private readonly bool _gzip;
    private readonly StatusCode _malformedCode;
    private bool _ended;
    // The last read's bytes not yet handed out, held (not advanced) while they still hold whole frames.
    private ReadOnlySequence<byte> _held;
    private bool _heldIsLast;
    private bool _holding;
    /// <summary>The last compressed message inflated, rented: given back when the next one is taken.</summary>
    private byte[]? _inflated;

    /// <param name="gzip">The call's grpc-encoding is gzip: frames with the compressed flag are inflated (bounded by the
    /// same limit). Otherwise a compressed frame fails the call with INTERNAL.</param>
    /// <param name="malformedCode">The status of a message that does not parse: INTERNAL (the spec), or INVALID_ARGUMENT
    /// on a server that tells callers their request is wrong.</param>
    public GrpcFrameReader(PipeReader input, int maxMessageBytes, bool gzip = false, StatusCode malformedCode = StatusCode.Internal)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentOutOfRangeException.ThrowIfNegative(maxMessageBytes);
        _input = input;
        _maxMessageBytes = maxMessageBytes;
        _gzip = gzip;
        _malformedCode = malformedCode;
    }

    /// <summary>True once the end of the stream was reached cleanly.</summary>
    public bool IsEnded => _ended;

    /// <summary>The message <see cref="TryNext"/> last took (inflated if it came compressed); valid until the next call.</summary>
    public ReadOnlySequence<byte> Message { get; private set; }

    /// <summary>
    /// Takes the next whole frame of what was read: true with its bytes in <see cref="Message"/>; false having given
    /// the buffer back to the pipe, <paramref name="ended"/> saying whether the stream ended cleanly (else call
    /// <see cref="ReadAsync"/> and <see cref="Hold"/> its result, then try again).
    /// </summary>
    /// <exception cref="RpcException">INTERNAL on a truncated frame, an unexpected compressed frame or bad gzip; RESOURCE_EXHAUSTED on an oversize frame or one that inflates past the limit.</exception>
    public bool TryNext(out bool ended)
    {
        ended = _ended;
        Message = default;
        if (_inflated is { } previous)
        {
            _inflated = null;
            ArrayPool<byte>.Shared.Return(previous);
        }
        if (!_holding || _ended) return false;

        ReadOnlySequence<byte> buffer = _held;
        bool framed;
        bool compressed;
        ReadOnlySequence<byte> payload;
        try
        {
            framed = GrpcFrame.TryRead(ref buffer, _maxMessageBytes, out payload, out compressed);
            if (compressed && !_gzip) throw GrpcFrame.UnnegotiatedCompression();
        }
        catch
        {
            Release(_held.Start); // Leave the reader consistent; the stream is dead to us anyway.
            throw;
        }

        if (framed)
        {
            if (compressed)
            {
                try
                {
                    _inflated = GzipMessages.Inflate(payload, _maxMessageBytes, out int plainBytes);
                    payload = new ReadOnlySequence<byte>(_inflated, 0, plainBytes);
                }
                catch (RpcException e)
                {
                    Release(buffer.Start);
                    throw Malformed(e);
                }
            }
            _held = buffer; // consumed up to here; the pipe is told when the held bytes run out
            Message = payload;
            return true;
        }

        if (_heldIsLast)
        {
            long left = buffer.Length;
            Release(buffer.End);
            if (left != 0) throw GrpcFrame.Truncated(left);
            _ended = true;
            ended = true;
            return false;
        }
        // Incomplete frame: consume what was taken, and tell the pipe we've seen everything so it waits for more.
        _holding = false;
        _input.AdvanceTo(buffer.Start, buffer.End);
        return false;
    }

    /// <summary>Reads the pipe for more (after <see cref="TryNext"/> returned false, not ended); give the result to <see cref="Hold"/>.</summary>
    public ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken) => _input.ReadAsync(cancellationToken);

    /// <summary>Holds a read's bytes for <see cref="TryNext"/> to take frames from.</summary>
    public void Hold(in ReadResult result)
    {
        if (result.IsCanceled)
        {
            _input.AdvanceTo(result.Buffer.Start);
            throw new OperationCanceledException("Read was canceled.");
        }
        _held = result.Buffer;
        _heldIsLast = result.IsCompleted;
        _holding = true;
    }

    /// <summary>
    /// The refusal of the message last taken, which does not decode (<paramref name="e"/>: why, e.g. an
    /// <see cref="InvalidProtocolBufferException"/>): gives the held buffer back (the stream is dead to us) and returns
    /// the status to end the call with, in the reader's malformed-message code.
    /// </summary>
    public RpcException Refuse(Exception e)
    {
        Message = default;
        if (_holding) Release(_held.Start);
        return Malformed(e);
    }

    private RpcException Malformed(Exception e)
    {
        if (e is RpcException { StatusCode: not StatusCode.Internal } rpc) return rpc; // e.g. inflated past the limit
        string reason = e is RpcException inner ? inner.Status.Detail : GrpcFrame.Undecodable(e);
        return _malformedCode == StatusCode.Internal
            ? e as RpcException ?? new RpcException(StatusCode.Internal, reason)
            : new RpcException(_malformedCode, $"{StatusNames.Of(_malformedCode)}: malformed request message: {reason}");
    }

    private void Release(SequencePosition consumed)
    {
        _holding = false;
        _input.AdvanceTo(consumed);
    }
}
