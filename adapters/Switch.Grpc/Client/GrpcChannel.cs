using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using Google.Protobuf;

namespace Switch.Grpc.Client;

/// <summary>
/// A client for one target ("http://host:port" for cleartext HTTP/2 with prior knowledge, "https://..." for
/// TLS with ALPN h2). Holds one HttpClient over SocketsHttpHandler; thread-safe; make one per target and reuse it.
/// </summary>
public sealed class GrpcChannel : IDisposable
{
    private readonly ConcurrentDictionary<string, Uri> _uris = new(StringComparer.Ordinal);

    private GrpcChannel(Uri address, GrpcChannelOptions options)
    {
        Address = address;
        Options = options;
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = options.EnableMultipleHttp2Connections,
            InitialHttp2StreamWindowSize = options.InitialStreamWindowBytes,
            ConnectTimeout = options.ConnectTimeout,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            UseProxy = false,
            AllowAutoRedirect = false,
        };
        if (address.Scheme == Uri.UriSchemeHttps)
        {
            handler.SslOptions = new SslClientAuthenticationOptions
            {
                ApplicationProtocols = [SslApplicationProtocol.Http2],
                RemoteCertificateValidationCallback = options.ServerCertificateValidation,
                // Offered whatever authorities the server names (or none): the caller chose it for this server.
                ClientCertificateContext = options.ClientCertificate is { } mine ? SslStreamCertificateContext.Create(mine, null, offline: true) : null,
            };
        }
        HttpClient = new HttpClient(handler, disposeHandler: true)
        {
            Timeout = Timeout.InfiniteTimeSpan, // Deadlines are per call, never HttpClient-wide.
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
    }

    public static GrpcChannel ForAddress(string address, GrpcChannelOptions? options = null) => ForAddress(new Uri(address), options);

    public static GrpcChannel ForAddress(Uri address, GrpcChannelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.Scheme != Uri.UriSchemeHttp && address.Scheme != Uri.UriSchemeHttps)
            throw new ArgumentException("Address must be http:// (cleartext HTTP/2) or https:// (TLS).", nameof(address));
        options ??= new GrpcChannelOptions();
        options.Validate();
        return new GrpcChannel(address, options);
    }

    public Uri Address { get; }

    public GrpcChannelOptions Options { get; }

    internal HttpClient HttpClient { get; }

    internal Uri UriFor(string path) => _uris.GetOrAdd(path, static (p, a) => new Uri(a, p), Address);

    /// <summary>A unary call; returns the response message or throws RpcException.</summary>
    public async Task<TResponse> UnaryAsync<TRequest, TResponse>(GrpcMethod<TRequest, TResponse> method, TRequest request, CallOptions options = default)
        where TRequest : class, IMessage<TRequest> where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(request);
        Expect(method, MethodType.Unary);
        using var call = new ClientCall<TRequest, TResponse>(this, method, options);
        call.Start(new UnaryRequestContent<TRequest>(request, Options.MaxSendMessageBytes, Options.CompressRequests));
        return await call.ReadSingleAsync().ConfigureAwait(false); // Headers and trailers are never converted.
    }

    /// <summary>A unary call; returns the response with its headers and trailers, or throws RpcException.</summary>
    public async Task<UnaryResult<TResponse>> UnaryCallAsync<TRequest, TResponse>(GrpcMethod<TRequest, TResponse> method, TRequest request, CallOptions options = default)
        where TRequest : class, IMessage<TRequest> where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(request);
        Expect(method, MethodType.Unary);
        using var call = new ClientCall<TRequest, TResponse>(this, method, options);
        call.Start(new UnaryRequestContent<TRequest>(request, Options.MaxSendMessageBytes, Options.CompressRequests));
        TResponse response = await call.ReadSingleAsync().ConfigureAwait(false);
        return new UnaryResult<TResponse>(response, call.ResponseHeaders, call.Trailers);
    }

    public ServerStreamingCall<TResponse> ServerStreaming<TRequest, TResponse>(GrpcMethod<TRequest, TResponse> method, TRequest request, CallOptions options = default)
        where TRequest : class, IMessage<TRequest> where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(request);
        Expect(method, MethodType.ServerStreaming);
        var call = new ClientCall<TRequest, TResponse>(this, method, options);
        try
        {
            call.Start(new UnaryRequestContent<TRequest>(request, Options.MaxSendMessageBytes, Options.CompressRequests));
        }
        catch
        {
            call.Dispose();
            throw;
        }
        return new ServerStreamingCall<TResponse>(call, call.ReadMessageAsync);
    }

    public ClientStreamingCall<TRequest, TResponse> ClientStreaming<TRequest, TResponse>(GrpcMethod<TRequest, TResponse> method, CallOptions options = default)
        where TRequest : class, IMessage<TRequest> where TResponse : class, IMessage<TResponse>
    {
        Expect(method, MethodType.ClientStreaming);
        var call = new ClientCall<TRequest, TResponse>(this, method, options);
        var requests = StartStreaming(call);
        return new ClientStreamingCall<TRequest, TResponse>(call, requests, () => call.ReadSingleAsync().AsTask());
    }

    public DuplexStreamingCall<TRequest, TResponse> DuplexStreaming<TRequest, TResponse>(GrpcMethod<TRequest, TResponse> method, CallOptions options = default)
        where TRequest : class, IMessage<TRequest> where TResponse : class, IMessage<TResponse>
    {
        Expect(method, MethodType.DuplexStreaming);
        var call = new ClientCall<TRequest, TResponse>(this, method, options);
        return new DuplexStreamingCall<TRequest, TResponse>(call, StartStreaming(call), call.ReadMessageAsync);
    }

    private ClientRequestStream<TRequest> StartStreaming<TRequest, TResponse>(ClientCall<TRequest, TResponse> call)
        where TRequest : class, IMessage<TRequest> where TResponse : class, IMessage<TResponse>
    {
        var content = new StreamingRequestContent();
        try
        {
            call.Start(content);
        }
        catch
        {
            call.Dispose();
            throw;
        }
        return new ClientRequestStream<TRequest>(content, call.FailWrite, call.Token, Options.MaxSendMessageBytes, Options.MaxBufferedWriteBytes, Options.CompressRequests);
    }

    private static void Expect<TRequest, TResponse>(GrpcMethod<TRequest, TResponse> method, MethodType type)
        where TRequest : class, IMessage<TRequest> where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(method);
        if (method.Type != type) throw new ArgumentException($"Method {method.Path} is {method.Type}, not {type}.", nameof(method));
    }

    public void Dispose() => HttpClient.Dispose();
}

