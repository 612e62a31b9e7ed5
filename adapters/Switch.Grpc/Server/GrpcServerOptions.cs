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
