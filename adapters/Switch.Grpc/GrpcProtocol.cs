namespace Switch.Grpc;

/// <summary>Wire constants of gRPC over HTTP/2 and the default limits of this layer.</summary>
public static class GrpcProtocol
{
    public const string ContentType = "application/grpc";
    public const string StatusHeader = "grpc-status";
    public const string MessageHeader = "grpc-message";
    public const string TimeoutHeader = "grpc-timeout";
    public const string EncodingHeader = "grpc-encoding";
    public const string AcceptEncodingHeader = "grpc-accept-encoding";
    public const string IdentityEncoding = "identity";
    public const string UserAgent = "switch-grpc/1.0";

    /// <summary>Same default as other gRPC implementations: 4 MiB per received message.</summary>
    public const int DefaultMaxReceiveMessageBytes = 4 * 1024 * 1024;

    /// <summary>Bytes buffered by a stream writer before it flushes on its own.</summary>
    public const int DefaultMaxBufferedWriteBytes = 64 * 1024;

    /// <summary>Whether an HTTP content-type denotes gRPC (application/grpc, application/grpc+proto, ...).</summary>
    public static bool IsGrpcContentType(string? contentType) => contentType is not null && IsGrpcContentType(contentType.AsSpan());

    /// <summary>As above, for a value not made into a string.</summary>
    public static bool IsGrpcContentType(ReadOnlySpan<char> contentType)
    {
        if (!contentType.StartsWith(ContentType, StringComparison.OrdinalIgnoreCase))
            return false;
        if (contentType.Length == ContentType.Length)
            return true;
        char next = contentType[ContentType.Length];
        return next is '+' or ';';
    }
}
