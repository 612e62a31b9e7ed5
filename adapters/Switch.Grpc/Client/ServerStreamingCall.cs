using Google.Protobuf;

namespace Switch.Grpc.Client;

/// <summary>A server-streaming call: read the responses, then the status and trailers. Dispose to cancel early.</summary>
public sealed class ServerStreamingCall<TResponse> : IDisposable where TResponse : class, IMessage<TResponse>
{
    private readonly IClientCall _call;

    internal ServerStreamingCall(IClientCall call, Func<CancellationToken, ValueTask<TResponse?>> read)
    {
        _call = call;
        ResponseStream = new ClientResponseStream<TResponse>(read);
    }

    public ClientResponseStream<TResponse> ResponseStream { get; }

    public ValueTask<Metadata> GetResponseHeadersAsync() => _call.GetResponseHeadersAsync();

    /// <summary>The final status; available once the response stream has ended.</summary>
    public Status GetStatus() => CallState.StatusOf(_call);

    public Metadata GetTrailers() => CallState.TrailersOf(_call);

    public void Dispose() => _call.Dispose();
}
