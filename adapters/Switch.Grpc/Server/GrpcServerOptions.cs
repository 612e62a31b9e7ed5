namespace Switch.Grpc.Server;

/// <summary>Per-router limits. Every limit is explicit; defaults match common gRPC practice.</summary>
public sealed class GrpcServerOptions
{
    /// <summary>Largest request message accepted; a bigger frame fails the call with RESOURCE_EXHAUSTED before it is buffered.</summary>
    public int MaxReceiveMessageBytes { get; init; } = GrpcProtocol.DefaultMaxReceiveMessageBytes;

    /// <summary>Largest response message a handler may send; a bigger one fails the call with RESOURCE_EXHAUSTED.</summary>
    public int MaxSendMessageBytes { get; init; } = int.MaxValue;

    /// <summary>A response stream writer flushes on its own once this many bytes are buffered.</summary>
    public int MaxBufferedWriteBytes { get; init; } = GrpcProtocol.DefaultMaxBufferedWriteBytes;

    /// <summary>
    /// Gzip the responses of calls whose client lists gzip in grpc-accept-encoding. Off by default: a payment message is
    /// a few hundred bytes, which gzip barely shrinks for a fresh zlib state per message. Requests in gzip are always accepted.
    /// </summary>
    public bool CompressResponses { get; init; }

    /// <summary>
    /// The status of a request message that does not parse (e.g. a string field that is not UTF-8). INTERNAL by default,
    /// as the gRPC status-code table has it; a server whose callers must be told their input is wrong chooses
    /// INVALID_ARGUMENT (the message then starts with the code's name).
    /// </summary>
    public StatusCode MalformedRequestCode { get; init; } = StatusCode.Internal;

    /// <summary>
    /// The status for a path no method is mapped to. Null: UNIMPLEMENTED (the spec). A router that stands in while the
    /// real one is not ready yet (a switch recovering its journal) answers UNAVAILABLE instead, which clients retry.
    /// </summary>
    public Status? UnknownMethodStatus { get; init; }

    /// <summary>
    /// Sent with <see cref="UnknownMethodStatus"/> (Trailers-Only, so in the response headers): e.g. where the method is
    /// served instead. Ignored without a status.
    /// </summary>
    public Metadata? UnknownMethodTrailers { get; init; }

    /// <summary>Called with exceptions handlers did not turn into an RpcException (the peer sees only UNKNOWN).</summary>
    public Action<string, Exception>? OnHandlerException { get; init; }

    /// <summary>Called once per call with the status it ended with (metrics: must not block or allocate).</summary>
    public Action<StatusCode>? OnCallCompleted { get; init; }

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegative(MaxReceiveMessageBytes);
        ArgumentOutOfRangeException.ThrowIfNegative(MaxSendMessageBytes);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxBufferedWriteBytes, 1);
    }
}
