namespace Switch.Grpc.Client;

internal static class CallState
{
    public static Status StatusOf(IClientCall call) =>
        call.Status ?? throw new InvalidOperationException("The call has not finished: read the response stream to its end first.");

    public static Metadata TrailersOf(IClientCall call) =>
        call.Status is not null ? call.Trailers : throw new InvalidOperationException("The call has not finished: read the response stream to its end first.");
}
