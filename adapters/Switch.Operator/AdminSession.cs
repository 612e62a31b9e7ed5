using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Grpc.Tls;

namespace Switch.Operator;

/// <summary>One connection to the switch's AdminService with the operator's key on every call.</summary>
public sealed class AdminSession : IDisposable
{
    public const string DefaultAdminUrl = "http://127.0.0.1:7003";
    /// <summary>A unary call that has not answered by then will not: the switch answers commands in milliseconds.</summary>
    public const int UnaryTimeoutMs = 30_000;
    private const int ConnectTimeoutMs = 5_000;

    private readonly string _adminUrl;
    private readonly string? _key;
    private readonly string? _caCertFile;
    private readonly CancellationToken _cancellationToken;
    private GrpcChannel? _channel;
    private Metadata? _headers;

    /// <summary>Nothing is checked or opened yet: a command parses its own arguments first, so a bad one is
    /// reported as such even when the key is missing too.</summary>
    /// <param name="caCertFile">PEM authorities trusted for an https:// address instead of the system's; null: the system's.</param>
    public AdminSession(string adminUrl, string? key, string? caCertFile, CancellationToken cancellationToken)
    {
        _adminUrl = adminUrl;
        _key = key;
        _caCertFile = caCertFile;
        _cancellationToken = cancellationToken;
    }

    /// <summary>Opened on first use, after checking the URL and key locally (UsageException: nothing goes on the wire).</summary>
    public GrpcChannel Channel => _channel ??= Open();

    private Metadata Headers => _headers ??= new Metadata().Add(AdminMethods.OperatorKeyHeader, CheckedKey());

    private GrpcChannel Open()
    {
        if (!Uri.TryCreate(_adminUrl, UriKind.Absolute, out Uri? uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) || uri.AbsolutePath != "/")
            throw new UsageException($"--admin: '{_adminUrl}' is not an admin address like {DefaultAdminUrl}");
        CheckedKey();
        return GrpcChannel.ForAddress(uri, new GrpcChannelOptions
        {
            ConnectTimeout = TimeSpan.FromMilliseconds(ConnectTimeoutMs),
            ServerCertificateValidation = Roots(uri)?.ServerCertificateValidation(),
        });
    }

    private TrustedRoots? Roots(Uri admin)
    {
        if (string.IsNullOrEmpty(_caCertFile)) return null;
        if (admin.Scheme != Uri.UriSchemeHttps)
            throw new UsageException($"--ca-cert: only for an https:// admin address, got '{_adminUrl}'");
        try
        {
            return TrustedRoots.FromPemFile(_caCertFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            throw new UsageException($"--ca-cert: {e.Message}");
        }
    }

    private string CheckedKey()
    {
        if (string.IsNullOrEmpty(_key))
            throw new UsageException("no operator key: pass --key KEY or set SWITCH_OPERATOR_KEY");
        if (_key.Length > 256 || _key.Any(c => c < 0x20 || c > 0x7e))
            throw new UsageException("--key: an operator key is printable ASCII, at most 256 characters");
        return _key;
    }

    public Task<TResponse> UnaryAsync<TRequest, TResponse>(GrpcMethod<TRequest, TResponse> method, TRequest request)
        where TRequest : class, Google.Protobuf.IMessage<TRequest> where TResponse : class, Google.Protobuf.IMessage<TResponse> =>
        Channel.UnaryAsync(method, request, new CallOptions
        {
            Headers = Headers, Timeout = TimeSpan.FromMilliseconds(UnaryTimeoutMs), CancellationToken = _cancellationToken,
        });

    /// <summary>Streams run until the caller cancels (Ctrl-C); no deadline.</summary>
    public CallOptions StreamOptions => new() { Headers = Headers, CancellationToken = _cancellationToken };

    public CancellationToken CancellationToken => _cancellationToken;

    public void Dispose() => _channel?.Dispose();
}
