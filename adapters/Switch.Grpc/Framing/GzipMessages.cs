using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using Google.Protobuf;

namespace Switch.Grpc.Framing;

/// <summary>
/// The one message encoding besides identity: gzip (gRPC compression.md). Only on calls that negotiated it; the
/// identity path never comes here. Each message costs a fresh zlib state, so compression is opt-in per side.
/// </summary>
public static class GzipMessages
{
    public const string Name = "gzip";

    /// <summary>What this layer accepts, for grpc-accept-encoding (sent with every call and with an UNIMPLEMENTED refusal).</summary>
    public const string AcceptEncoding = "identity,gzip";

    /// <summary>Reads a grpc-encoding header: absent or identity is false, gzip is true; anything else is unsupported.</summary>
    public static bool TryParseEncoding(string? header, out bool gzip)
    {
        gzip = false;
        if (string.IsNullOrEmpty(header) || header.Equals(GrpcProtocol.IdentityEncoding, StringComparison.OrdinalIgnoreCase)) return true;
        if (!header.Equals(Name, StringComparison.OrdinalIgnoreCase)) return false;
        gzip = true;
        return true;
    }

    /// <summary>Whether a grpc-accept-encoding list ("identity,gzip, deflate") names gzip.</summary>
    public static bool Accepts(string? acceptEncoding)
    {
        if (string.IsNullOrEmpty(acceptEncoding)) return false;
        foreach (Range part in acceptEncoding.AsSpan().Split(','))
        {
            if (acceptEncoding.AsSpan()[part].Trim().Equals(Name, StringComparison.OrdinalIgnoreCase)) return true;
        }
        return false;
    }

    /// <summary>
    /// Inflates one compressed payload, stopping at <paramref name="maxMessageBytes"/>: a small frame that inflates past
    /// the limit (a compression bomb) fails RESOURCE_EXHAUSTED having inflated at most limit + 1 bytes.
    /// </summary>
    public static T Parse<T>(ReadOnlySequence<byte> payload, MessageParser<T> parser, int maxMessageBytes) where T : IMessage<T>
    {
        byte[] plain = Inflate(payload, maxMessageBytes, out int plainBytes);
        try
        {
            return parser.ParseFrom(plain.AsSpan(0, plainBytes));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(plain);
        }
    }

    /// <summary>As <see cref="Parse{T}"/>, leaving the message's bytes for the caller to decode: the first
    /// <paramref name="plainBytes"/> of the returned array, rented from ArrayPool&lt;byte&gt;.Shared (the caller returns it).</summary>
    public static byte[] Inflate(ReadOnlySequence<byte> payload, int maxMessageBytes, out int plainBytes)
    {
        int compressedBytes = checked((int)payload.Length);
        byte[] compressed = ArrayPool<byte>.Shared.Rent(Math.Max(compressedBytes, 1));
        byte[] plain = ArrayPool<byte>.Shared.Rent(Math.Min(maxMessageBytes, Math.Max(4 * compressedBytes, 4096)) + 1);
        bool handedOver = false;
        try
        {
            payload.CopyTo(compressed);
            plainBytes = 0;
            using (var input = new MemoryStream(compressed, 0, compressedBytes, writable: false))
            using (var gzip = new GZipStream(input, CompressionMode.Decompress))
            {
                while (true)
                {
                    if (plainBytes == plain.Length)
                    {
                        if (plain.Length > maxMessageBytes || plain.Length >= Array.MaxLength) break; // over the limit (or any array)
                        plain = Grow(plain, plainBytes, Math.Min(Math.Min((long)plain.Length * 2, (long)maxMessageBytes + 1), Array.MaxLength));
                    }
                    int n = gzip.Read(plain, plainBytes, plain.Length - plainBytes);
                    if (n == 0) break;
                    plainBytes += n;
                }
            }
            if (plainBytes > maxMessageBytes || plainBytes >= Array.MaxLength)
                throw new RpcException(StatusCode.ResourceExhausted, $"Received message larger than max after decompression (more than {maxMessageBytes} bytes)");
            handedOver = true;
            return plain;
        }
        catch (InvalidDataException e)
        {
            throw new RpcException(StatusCode.Internal, "Failed to decompress a gzip message: " + e.Message);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(compressed);
            if (!handedOver) ArrayPool<byte>.Shared.Return(plain);
        }
    }

    private static byte[] Grow(byte[] buffer, int used, long size)
    {
        byte[] bigger = ArrayPool<byte>.Shared.Rent((int)size);
        buffer.AsSpan(0, used).CopyTo(bigger);
        ArrayPool<byte>.Shared.Return(buffer);
        return bigger;
    }

    /// <summary>Serializes, deflates and frames one message (compressed flag 1). Returns the bytes written, header included.</summary>
    public static int Write<T>(IBufferWriter<byte> output, T message, int maxMessageBytes) where T : IMessage<T>
    {
        int size = message.CalculateSize();
        if (size > maxMessageBytes)
            throw new RpcException(StatusCode.ResourceExhausted, $"Sending message larger than max ({size} vs. {maxMessageBytes})");
        byte[] plain = ArrayPool<byte>.Shared.Rent(Math.Max(size, 1));
        try
        {
            message.WriteTo(plain.AsSpan(0, size));
            return WritePacked(output, plain.AsSpan(0, size));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(plain);
        }
    }

    /// <summary>As <see cref="Write"/>, for a message the caller encodes (<see cref="IMessageEncoder"/>).</summary>
    public static int WriteEncoded<TEncoder>(IBufferWriter<byte> output, ref TEncoder encoder, int maxMessageBytes) where TEncoder : struct, IMessageEncoder
    {
        int size = encoder.CalculateSize();
        if (size > maxMessageBytes)
            throw new RpcException(StatusCode.ResourceExhausted, $"Sending message larger than max ({size} vs. {maxMessageBytes})");
        byte[] plain = ArrayPool<byte>.Shared.Rent(Math.Max(size, 1));
        try
        {
            int written = encoder.WriteTo(plain.AsSpan(0, size));
            if (written != size) throw new InvalidOperationException($"{typeof(TEncoder).Name} wrote {written} bytes after sizing {size}");
            return WritePacked(output, plain.AsSpan(0, size));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(plain);
        }
    }

    /// <summary>Deflates a message's bytes and frames them (compressed flag 1).</summary>
    private static int WritePacked(IBufferWriter<byte> output, ReadOnlySpan<byte> plain)
    {
        int size = plain.Length;
        // Deflate's worst case (stored blocks) adds 5 bytes per 16 KiB plus gzip's 18: this bound always holds.
        byte[] packed = ArrayPool<byte>.Shared.Rent(size + size / 1024 + 64);
        try
        {
            int packedBytes;
            using (var sink = new MemoryStream(packed, 0, packed.Length, writable: true))
            {
                using (var gzip = new GZipStream(sink, CompressionLevel.Fastest, leaveOpen: true))
                    gzip.Write(plain);
                packedBytes = (int)sink.Position;
            }
            int total = GrpcFrame.HeaderBytes + packedBytes;
            Span<byte> span = output.GetSpan(total);
            span[0] = 1;
            BinaryPrimitives.WriteUInt32BigEndian(span[1..], (uint)packedBytes);
            packed.AsSpan(0, packedBytes).CopyTo(span[GrpcFrame.HeaderBytes..]);
            output.Advance(total);
            return total;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(packed);
        }
    }
}
