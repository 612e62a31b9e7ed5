using System.Collections.Concurrent;
using System.Net.Security;
using System.Text;
using Google.Protobuf;
using Switch.Grpc.Http2;

namespace Switch.Grpc.Client;

/// <summary>
/// A client for one target ("http://host:port" for cleartext HTTP/2 with prior knowledge, "https://..." for
/// TLS with ALPN h2); thread-safe; make one per target and reuse it. Every call, unary or streaming, goes over the
/// channel's own HTTP/2 connections (<see cref="Http2ClientConnection"/>, opened lazily: one, more only when the server's
/// stream limit is reached and <see cref="GrpcChannelOptions.EnableMultipleHttp2Connections"/> is set).
/// </summary>
public sealed class GrpcChannel : IDisposable
{
    /// <summary>Connections of one channel at most, whatever the server's stream limit.</summary>
    private const int MaxConnections = 16;

    /// <summary>Idle unary exchanges kept for reuse; more concurrent calls make and drop their own.</summary>
    private const int MaxPooledExchanges = 1024;

    private readonly ConcurrentDictionary<string, byte[]> _pathBytes = new(StringComparer.Ordinal);
    private readonly Http2ConnectionOptions _connectionOptions;
    private readonly object _connectionsLock = new();
    private readonly List<Http2ClientConnection> _connections = new();
    private Task<Http2ClientConnection>? _connecting;
    private readonly Stack<UnaryExchange> _exchanges = new();
    private volatile bool _disposed;

    private GrpcChannel(Uri address, GrpcChannelOptions options)
    {
        Address = address;
        Options = options;
        SslClientAuthenticationOptions? tls = null;
        if (address.Scheme == Uri.UriSchemeHttps) tls = TlsOptions(address, options);
        IsTls = tls is not null;
        AuthorityBytes = Encoding.ASCII.GetBytes(address.Authority);
        _connectionOptions = new Http2ConnectionOptions(address.IdnHost, address.Port, tls, options.ConnectTimeout, options.InitialStreamWindowBytes);
    }

    private static SslClientAuthenticationOptions TlsOptions(Uri address, GrpcChannelOptions options) => new()
    {
        TargetHost = address.IdnHost,
        ApplicationProtocols = [SslApplicationProtocol.Http2],
        RemoteCertificateValidationCallback = options.ServerCertificateValidation,
        // Offered whatever authorities the server names (or none): the caller chose it for this server.
        ClientCertificateContext = options.ClientCertificate is { } mine ? SslStreamCertificateContext.Create(mine, null, offline: true) : null,
    };

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

    internal bool IsTls { get; }

    /// <summary>The :authority of every request (host, and port unless the scheme's default).</summary>
    internal byte[] AuthorityBytes { get; }

    /// <summary>A unary call; returns the response message or throws RpcException.</summary>
    public async Task<TResponse> UnaryAsync<TRequest, TResponse>(GrpcMethod<TRequest, TResponse> method, TRequest request, CallOptions options = default)
        where TRequest : class, IMessage<TRequest> where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(request);
        Expect(method, MethodType.Unary);
        UnaryExchange exchange = RentExchange();
        try
        {
            exchange.Prepare(method.Path, PathBytes(method.Path), request, options);
            await exchange.RunAsync().ConfigureAwait(false);
            return exchange.Response(method.ResponseParser); // headers and trailers are never converted
        }
        finally
        {
            ReturnExchange(exchange);
        }
    }

    /// <summary>A unary call; returns the response with its headers and trailers, or throws RpcException.</summary>
    public async Task<UnaryResult<TResponse>> UnaryCallAsync<TRequest, TResponse>(GrpcMethod<TRequest, TResponse> method, TRequest request, CallOptions options = default)
        where TRequest : class, IMessage<TRequest> where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(request);
        Expect(method, MethodType.Unary);
        UnaryExchange exchange = RentExchange();
        try
        {
            exchange.Prepare(method.Path, PathBytes(method.Path), request, options);
            await exchange.RunAsync().ConfigureAwait(false);
            TResponse response = exchange.Response(method.ResponseParser);
            return new UnaryResult<TResponse>(response, exchange.ResponseHeaderMetadata(), exchange.TrailerMetadata());
        }
        finally
        {
            ReturnExchange(exchange);
        }
    }

    private byte[] PathBytes(string path) => _pathBytes.GetOrAdd(path, static p => Encoding.UTF8.GetBytes(p));

    private UnaryExchange RentExchange()
    {
        lock (_exchanges)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_exchanges.TryPop(out UnaryExchange? exchange)) return exchange;
        }
        return new UnaryExchange(this);
    }

    private void ReturnExchange(UnaryExchange exchange)
    {
        exchange.Finish();
        lock (_exchanges)
        {
            if (!_disposed && _exchanges.Count < MaxPooledExchanges)
            {
                _exchanges.Push(exchange);
                return;
            }
        }
        exchange.Dispose();
    }

    /// <summary>
    /// A connection for the next unary call: one with a free stream slot; else, if more are allowed, a new one (shared by
    /// the calls that wait for it); else the first usable one, where the call waits for a slot. Closed connections are
    /// dropped and replaced; a failed connect is tried again by the next call.
    /// </summary>
    internal ValueTask<Http2ClientConnection> ConnectionAsync()
    {
        lock (_connectionsLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            Http2ClientConnection? full = null;
            for (int i = _connections.Count - 1; i >= 0; i--)
            {
                Http2ClientConnection connection = _connections[i];
                if (connection.IsClosed)
                {
                    _connections.RemoveAt(i);
                    connection.Dispose();
                    continue;
                }
                if (!connection.IsUsable) continue; // going away: its calls finish, new ones go elsewhere
                if (connection.HasFreeSlot) return new(connection);
                full ??= connection;
            }
            bool mayOpen = full is null || (Options.EnableMultipleHttp2Connections && _connections.Count < MaxConnections);
            if (!mayOpen) return new(full!);
            if (_connecting is { IsCompleted: true }) _connecting = null; // added to the list, or failed: a new one
            _connecting ??= ConnectAsync();
            return new(_connecting);
        }
    }

    private async Task<Http2ClientConnection> ConnectAsync()
    {
        Http2ClientConnection connection = await Http2ClientConnection.ConnectAsync(_connectionOptions, CancellationToken.None).ConfigureAwait(false);
        lock (_connectionsLock)
        {
            if (!_disposed)
            {
                _connections.Add(connection);
                return connection;
            }
        }
        connection.Dispose();
        throw new ObjectDisposedException(nameof(GrpcChannel));
    }

    public ServerStreamingCall<TResponse> ServerStreaming<TRequest, TResponse>(GrpcMethod<TRequest, TResponse> method, TRequest request, CallOptions options = default)
        where TRequest : class, IMessage<TRequest> where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(request);
        Expect(method, MethodType.ServerStreaming);
        var call = new StreamingExchange<TRequest, TResponse>(this, method);
        try
        {
            call.QueueSingleRequest(request);
            call.Start(PathBytes(method.Path), options);
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
        StreamingExchange<TRequest, TResponse> call = StartStreaming(method, options);
        return new ClientStreamingCall<TRequest, TResponse>(call, RequestStream<TRequest>(call), () => call.ReadSingleAsync().AsTask());
    }

    public DuplexStreamingCall<TRequest, TResponse> DuplexStreaming<TRequest, TResponse>(GrpcMethod<TRequest, TResponse> method, CallOptions options = default)
        where TRequest : class, IMessage<TRequest> where TResponse : class, IMessage<TResponse>
    {
        Expect(method, MethodType.DuplexStreaming);
        StreamingExchange<TRequest, TResponse> call = StartStreaming(method, options);
        return new DuplexStreamingCall<TRequest, TResponse>(call, RequestStream<TRequest>(call), call.ReadMessageAsync);
    }

    private StreamingExchange<TRequest, TResponse> StartStreaming<TRequest, TResponse>(GrpcMethod<TRequest, TResponse> method, CallOptions options)
        where TRequest : class, IMessage<TRequest> where TResponse : class, IMessage<TResponse>
    {
        var call = new StreamingExchange<TRequest, TResponse>(this, method);
        try
        {
            call.Start(PathBytes(method.Path), options);
        }
        catch
        {
            call.Dispose();
            throw;
        }
        return call;
    }

    private ClientRequestStream<TRequest> RequestStream<TRequest>(IRequestSink sink) where TRequest : class, IMessage<TRequest> =>
        new(sink, Options.MaxSendMessageBytes, Options.MaxBufferedWriteBytes, Options.CompressRequests);

    private static void Expect<TRequest, TResponse>(GrpcMethod<TRequest, TResponse> method, MethodType type)
        where TRequest : class, IMessage<TRequest> where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(method);
        if (method.Type != type) throw new ArgumentException($"Method {method.Path} is {method.Type}, not {type}.", nameof(method));
    }

    public void Dispose()
    {
        lock (_connectionsLock)
        {
            if (_disposed) return;
            _disposed = true;
            foreach (Http2ClientConnection connection in _connections) connection.Dispose();
            _connections.Clear();
        }
        lock (_exchanges)
        {
            while (_exchanges.TryPop(out UnaryExchange? exchange)) exchange.Dispose();
        }
    }
}

