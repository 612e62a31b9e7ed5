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

internal static class CallState
{
    public static Status StatusOf(IClientCall call) =>
        call.Status ?? throw new InvalidOperationException("The call has not finished: read the response stream to its end first.");

    public static Metadata TrailersOf(IClientCall call) =>
        call.Status is not null ? call.Trailers : throw new InvalidOperationException("The call has not finished: read the response stream to its end first.");
}
