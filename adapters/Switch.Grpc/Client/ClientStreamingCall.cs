using Google.Protobuf;

namespace Switch.Grpc.Client;

/// <summary>A client-streaming call: write requests, CompleteAsync, then await the single response.</summary>
public sealed class ClientStreamingCall<TRequest, TResponse> : IDisposable
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    private readonly IClientCall _call;
    private readonly Lazy<Task<TResponse>> _response;

    internal ClientStreamingCall(IClientCall call, ClientRequestStream<TRequest> requests, Func<Task<TResponse>> readResponse)
    {
        _call = call;
        RequestStream = requests;
        _response = new Lazy<Task<TResponse>>(readResponse);
    }

    public ClientRequestStream<TRequest> RequestStream { get; }

    /// <summary>The response; throws RpcException on a non-OK status.</summary>
    public Task<TResponse> ResponseAsync => _response.Value;

    public ValueTask<Metadata> GetResponseHeadersAsync() => _call.GetResponseHeadersAsync();

    public Status GetStatus() => CallState.StatusOf(_call);

    public Metadata GetTrailers() => CallState.TrailersOf(_call);

    public void Dispose() => _call.Dispose();
}
