namespace Switch.Grpc.Http2.Hpack;

/// <summary>A header block that is not valid HPACK (RFC 7541), or that exceeds this decoder's limits. The connection
/// that carried it must fail with COMPRESSION_ERROR (RFC 7540 §4.3): its dynamic table can no longer be trusted.</summary>
public sealed class HpackException : Exception
{
    public HpackException(string message, int byteOffset)
        : base($"HPACK: {message} (at byte {byteOffset} of the header block)")
    {
        ByteOffset = byteOffset;
    }

    /// <summary>The offset in the header block of the representation (or string) that was wrong.</summary>
    public int ByteOffset { get; }
}
