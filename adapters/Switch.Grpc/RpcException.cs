namespace Switch.Grpc;

/// <summary>A call that ended with a non-OK status; thrown by the client, and by handlers to choose the status they answer.</summary>
public sealed class RpcException : Exception
{
    public RpcException(Status status, Metadata? trailers = null)
        : base(status.ToString())
    {
        Status = status;
        Trailers = trailers ?? new Metadata();
    }

    public RpcException(StatusCode code, string detail, Metadata? trailers = null)
        : this(new Status(code, detail), trailers)
    {
    }

    internal RpcException(Status status, Metadata? trailers, Exception inner)
        : base(status.ToString(), inner)
    {
        Status = status;
        Trailers = trailers ?? new Metadata();
    }

    public Status Status { get; }
    public StatusCode StatusCode => Status.Code;

    /// <summary>Trailers received (client side) or to send (server side) with the status.</summary>
    public Metadata Trailers { get; }
}
