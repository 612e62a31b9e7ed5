using System.Buffers;
using System.Diagnostics;
using Google.Protobuf;
using Switch.Grpc.Framing;

namespace Switch.Grpc.Client;

/// <summary>
/// The body of a single-response call, gathered into one rented array until its end, and the message parsed from there:
/// no pipe, frame reader or message reader per call. The refusals are the stream read's: a frame over the limit is refused
/// on its header, before its payload is buffered; a second frame's header ends the gathering at once, so at most one frame
/// and one header are ever held. A mutable struct: keep it in a field and call it there.
/// </summary>
internal struct SingleResponseBuffer
{
    /// <summary>Bytes first rented: a payment's answer and its frame fit, a bigger one grows it.</summary>
    private const int InitialBytes = 512;

    private byte[]? _buffer;
    private int _filledBytes;
    private long _frameBytes; // the first frame's, header included, once its header is in; -1 before
    private bool _compressed;

    public void Begin()
    {
        Debug.Assert(_buffer is null);
        _buffer = ArrayPool<byte>.Shared.Rent(InitialBytes);
        _filledBytes = 0;
        _frameBytes = -1;
        _compressed = false;
    }

    /// <summary>Where the next bytes go (never empty).</summary>
    public Memory<byte> Free()
    {
        Debug.Assert(_buffer is not null);
        if (_filledBytes == _buffer.Length)
        {
            // Only a frame longer than the buffer fills it (a following header would have ended the gathering): room
            // for that frame and the next header, so a second message is seen; the limit bounds it.
            Debug.Assert(_frameBytes + GrpcFrame.HeaderBytes > _filledBytes);
            byte[] bigger = ArrayPool<byte>.Shared.Rent(checked((int)(_frameBytes + GrpcFrame.HeaderBytes)));
            _buffer.AsSpan(0, _filledBytes).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }
        return _buffer.AsMemory(_filledBytes);
    }

    /// <summary>Takes <paramref name="bytes"/> written into <see cref="Free"/>.</summary>
    /// <exception cref="RpcException">The frame is over the limit, compressed without gzip negotiated, or a second one began.</exception>
    public void Advance(int bytes, int maxMessageBytes, bool gzip)
    {
        Debug.Assert(bytes >= 0 && _filledBytes + bytes <= _buffer!.Length);
        _filledBytes += bytes;
        if (_frameBytes < 0 && _filledBytes >= GrpcFrame.HeaderBytes)
        {
            _frameBytes = GrpcFrame.FrameBytes(_buffer, maxMessageBytes, out _compressed);
            if (_compressed && !gzip) throw GrpcFrame.UnnegotiatedCompression();
        }
        if (_frameBytes >= 0 && _filledBytes >= _frameBytes + GrpcFrame.HeaderBytes) throw TooManyResponses();
    }

    /// <summary>Copies bytes that arrived (see <see cref="Advance"/>).</summary>
    public void Append(ReadOnlySpan<byte> data, int maxMessageBytes, bool gzip)
    {
        while (!data.IsEmpty)
        {
            Span<byte> free = Free().Span;
            int bytes = Math.Min(free.Length, data.Length);
            data[..bytes].CopyTo(free);
            data = data[bytes..];
            Advance(bytes, maxMessageBytes, gzip);
        }
    }

    /// <summary>The one message, once the body ended and the call's status was OK.</summary>
    /// <exception cref="RpcException">INTERNAL: no message, a truncated frame, or bytes that do not decode.</exception>
    public readonly T Parse<T>(MessageParser<T> parser, int maxMessageBytes) where T : class, IMessage<T>
    {
        if (_filledBytes == 0) throw NoSingleResponse();
        if (_frameBytes < 0 || _filledBytes < _frameBytes) throw GrpcFrame.Truncated(_filledBytes); // inside the one frame
        if (_filledBytes > _frameBytes) throw GrpcFrame.Truncated(_filledBytes - _frameBytes); // inside a second frame's header
        var payload = new ReadOnlySequence<byte>(_buffer!, GrpcFrame.HeaderBytes, (int)_frameBytes - GrpcFrame.HeaderBytes);
        try
        {
            return _compressed
                ? GzipMessages.Parse(payload, parser, maxMessageBytes)
                : GrpcMessageReader<T>.DecodeDetached(payload, parser);
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or InvalidDataException)
        {
            throw new RpcException(StatusCode.Internal, GrpcFrame.Undecodable(e));
        }
    }

    public void Release()
    {
        if (_buffer is not null) ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = null;
    }

    internal static RpcException NoSingleResponse() =>
        new(StatusCode.Internal, "Failed to receive a response message: the server ended the call with OK and no message.");

    internal static RpcException TooManyResponses() =>
        new(StatusCode.Internal, "More than one response message for a single-response method.");
}
