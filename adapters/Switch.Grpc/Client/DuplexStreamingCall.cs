using Google.Protobuf;

namespace Switch.Grpc.Client;

/// <summary>A duplex call: write requests (batched; CompleteAsync to half-close) while reading responses. Dispose to cancel early.</summary>
public sealed class DuplexStreamingCall<TRequest, TResponse> : IDisposable
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    private readonly IClientCall _call;

    internal DuplexStreamingCall(IClientCall call, ClientRequestStream<TRequest> requests, Func<CancellationToken, ValueTask<TResponse?>> read)
    {
        _call = call;
        RequestStream = requests;
        ResponseStream = new ClientResponseStream<TResponse>(read);
    }

    public ClientRequestStream<TRequest> RequestStream { get; }

    public ClientResponseStream<TResponse> ResponseStream { get; }

    public ValueTask<Metadata> GetResponseHeadersAsync() => _call.GetResponseHeadersAsync();

    public Status GetStatus() => CallState.StatusOf(_call);

    public Metadata GetTrailers() => CallState.TrailersOf(_call);

    public void Dispose() => _call.Dispose();
}
