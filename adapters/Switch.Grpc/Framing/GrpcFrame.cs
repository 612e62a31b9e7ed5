using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using Google.Protobuf;

namespace Switch.Grpc.Framing;

/// <summary>
/// The length-prefixed message: 1 byte compressed flag, 4 bytes big-endian length, then the message.
/// </summary>
public static class GrpcFrame
{
    public const int HeaderBytes = 5;

    /// <summary>
    /// Tries to take one whole frame off the front of <paramref name="buffer"/>. On success the payload is a
    /// slice of the buffer (no copy) and <paramref name="buffer"/> is advanced past the frame. Decides on
    /// the 5-byte header alone, so an oversize frame is refused before any of its payload is buffered.
    /// </summary>
    /// <exception cref="RpcException">RESOURCE_EXHAUSTED above the limit; INTERNAL for a compressed frame (a call without a grpc-encoding).</exception>
    public static bool TryRead(ref ReadOnlySequence<byte> buffer, int maxMessageBytes, out ReadOnlySequence<byte> payload)
    {
        if (!TryRead(ref buffer, maxMessageBytes, out payload, out bool compressed)) return false;
        if (compressed) throw UnnegotiatedCompression();
        return true;
    }

    /// <summary>As above, and says whether the frame's compressed flag is set (the payload is then in the call's grpc-encoding).</summary>
    /// <exception cref="RpcException">RESOURCE_EXHAUSTED above the limit (compressed size); INTERNAL for a flag other than 0 or 1.</exception>
    public static bool TryRead(ref ReadOnlySequence<byte> buffer, int maxMessageBytes, out ReadOnlySequence<byte> payload, out bool compressed)
    {
        Debug.Assert(maxMessageBytes >= 0);
        payload = default;
        compressed = false;
        if (buffer.Length < HeaderBytes) return false;

        Span<byte> scratch = stackalloc byte[HeaderBytes];
        scoped ReadOnlySpan<byte> header = buffer.FirstSpan;
        if (header.Length < HeaderBytes)
        {
            buffer.Slice(0, HeaderBytes).CopyTo(scratch); // Header split across segments.
            header = scratch;
        }

        long frameBytes = FrameBytes(header, maxMessageBytes, out bool flagged);
        if (buffer.Length < frameBytes) return false;
        compressed = flagged;
        payload = buffer.Slice(HeaderBytes, frameBytes - HeaderBytes);
        buffer = buffer.Slice(frameBytes);
        return true;
    }

    /// <summary>The whole frame's length (header included) that <paramref name="header"/> (its first 5 bytes) announces,
    /// checked on the header alone: a reader knows how much to buffer, and refuses an oversize frame before any of it.</summary>
    /// <exception cref="RpcException">RESOURCE_EXHAUSTED above the limit (compressed size); INTERNAL for a flag other than 0 or 1.</exception>
    public static long FrameBytes(ReadOnlySpan<byte> header, int maxMessageBytes, out bool compressed)
    {
        Debug.Assert(header.Length >= HeaderBytes && maxMessageBytes >= 0);
        byte flag = header[0];
        uint length = BinaryPrimitives.ReadUInt32BigEndian(header.Slice(1, 4));
        if (flag > 1)
            throw new RpcException(StatusCode.Internal, $"Invalid compressed-flag byte {flag}.");
        if (length > (uint)maxMessageBytes)
            throw new RpcException(StatusCode.ResourceExhausted, $"Received message larger than max ({length} vs. {maxMessageBytes})");
        compressed = flag == 1;
        return HeaderBytes + (long)length;
    }

    /// <summary>A compressed frame on a call whose grpc-encoding is identity.</summary>
    internal static RpcException UnnegotiatedCompression() =>
        new(StatusCode.Internal, "Received a compressed message but no grpc-encoding was negotiated.");

    /// <summary>The stream ended <paramref name="leftBytes"/> into a frame.</summary>
    internal static RpcException Truncated(long leftBytes) =>
        new(StatusCode.Internal, $"Stream ended inside a message frame ({leftBytes} bytes left over).");

    /// <summary>Why a message's bytes did not decode, in the status's words.</summary>
    internal static string Undecodable(Exception e) => "Failed to deserialize message: " + e.Message;

    /// <summary>Writes the 5-byte header into <paramref name="destination"/>.</summary>
    public static void WriteHeader(Span<byte> destination, int messageBytes)
    {
        Debug.Assert(messageBytes >= 0);
        destination[0] = 0; // Not compressed (GzipMessages writes compressed frames).
        BinaryPrimitives.WriteUInt32BigEndian(destination[1..], (uint)messageBytes);
    }

    /// <summary>
    /// Frames one message the caller encodes itself (see <see cref="IMessageEncoder"/>) straight into the writer's
    /// memory, in one contiguous span. Returns the bytes written, header included. Does not flush.
    /// </summary>
    /// <exception cref="RpcException">RESOURCE_EXHAUSTED when the message exceeds <paramref name="maxMessageBytes"/>.</exception>
    public static int WriteEncoded<TEncoder>(IBufferWriter<byte> output, ref TEncoder encoder, int maxMessageBytes) where TEncoder : struct, IMessageEncoder
    {
        int size = encoder.CalculateSize();
        if (size > maxMessageBytes)
            throw new RpcException(StatusCode.ResourceExhausted, $"Sending message larger than max ({size} vs. {maxMessageBytes})");
        int total = HeaderBytes + size;
        Span<byte> span = output.GetSpan(total);
        WriteHeader(span, size);
        int written = encoder.WriteTo(span.Slice(HeaderBytes, size));
        if (written != size) throw new InvalidOperationException($"{typeof(TEncoder).Name} wrote {written} bytes after sizing {size}");
        output.Advance(total);
        return total;
    }

    /// <summary>Messages up to this size are serialized into one contiguous span; larger ones stream through IBufferWriter.</summary>
    internal const int ContiguousSerializeMaxBytes = 64 * 1024;

    /// <summary>
    /// Serializes one framed message straight into the writer's memory (no intermediate array).
    /// Returns the bytes written (header included). Does not flush: callers batch many messages per flush.
    /// </summary>
    /// <exception cref="RpcException">RESOURCE_EXHAUSTED when the message exceeds <paramref name="maxMessageBytes"/>.</exception>
    public static int Write<T>(IBufferWriter<byte> output, T message, int maxMessageBytes) where T : IMessage<T>
    {
        int size = message.CalculateSize();
        if (size > maxMessageBytes)
            throw new RpcException(StatusCode.ResourceExhausted, $"Sending message larger than max ({size} vs. {maxMessageBytes})");

        int total = HeaderBytes + size;
        if (size <= ContiguousSerializeMaxBytes)
        {
            Span<byte> span = output.GetSpan(total);
            WriteHeader(span, size);
            message.WriteTo(span.Slice(HeaderBytes, size));
            output.Advance(total);
        }
        else
        {
            // Large messages: don't demand one huge contiguous block from the pipe.
            WriteHeader(output.GetSpan(HeaderBytes), size);
            output.Advance(HeaderBytes);
            message.WriteTo(output);
        }
        return total;
    }
}

/// <summary>
/// A message's protobuf bytes written by the caller from its own data, for a hot path that would otherwise build a
/// message object per send (a struct: passed by reference, never boxed). Its bytes must parse as the call's request type.
/// </summary>
public interface IMessageEncoder
{
    /// <summary>The encoded size in bytes.</summary>
    int CalculateSize();

    /// <summary>Writes the message into <paramref name="destination"/> (exactly <see cref="CalculateSize"/> bytes long);
    /// returns the bytes written.</summary>
    int WriteTo(Span<byte> destination);
}
