using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Grpc.Tls;

namespace Switch.Operator;

/// <summary>
/// One connection to the switch's AdminService with the operator's key on every call. Given several addresses (a
/// primary and its standbys, comma-separated), a call refused NOT_PRIMARY goes once to the primary the standby names
/// (x-switch-primary-admin), else to the next address; so does a call whose connection could not be opened. Either way
/// nothing was done where it failed, so sending it again is safe; any other failure is reported as it is.
/// </summary>
public sealed class AdminSession : IDisposable
{
    public const string NotPrimaryCode = "NOT_PRIMARY";
    public const string PrimaryAdminTrailer = "x-switch-primary-admin";
    /// <summary>Addresses given at most.</summary>
    public const int MaxAddresses = 16;

    public const string DefaultAdminUrl = "http://127.0.0.1:7003";
    /// <summary>A unary call that has not answered by then will not: the switch answers commands in milliseconds.</summary>
    public const int UnaryTimeoutMs = 30_000;
    private const int ConnectTimeoutMs = 5_000;

    private readonly string _adminUrl;
    private readonly string[] _addresses;
    private string _current;
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
        _addresses = adminUrl.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        _current = _addresses.FirstOrDefault() ?? adminUrl;
        _key = key;
        _caCertFile = caCertFile;
        _cancellationToken = cancellationToken;
    }

    /// <summary>Opened on first use, after checking the URL and key locally (UsageException: nothing goes on the wire).</summary>
    public GrpcChannel Channel => _channel ??= Open();

    /// <summary>The node the last call went to (the one that answered, when it succeeded).</summary>
    public string Address => _current;

    /// <summary>More than one address was given, or a standby named another: worth saying which node answered.</summary>
    public bool Moved { get; private set; }

    public bool SeveralAddresses => _addresses.Length > 1;

    private Metadata Headers => _headers ??= new Metadata().Add(AdminMethods.OperatorKeyHeader, CheckedKey());

    private GrpcChannel Open()
    {
        if (_addresses.Length is 0 or > MaxAddresses)
            throw new UsageException($"--admin: 1 to {MaxAddresses} comma-separated admin addresses, got '{_adminUrl}'");
        foreach (string address in _addresses) CheckedAddress(address);
        Uri uri = CheckedAddress(_current);
        CheckedKey();
        return GrpcChannel.ForAddress(uri, new GrpcChannelOptions
        {
            ConnectTimeout = TimeSpan.FromMilliseconds(ConnectTimeoutMs),
            ServerCertificateValidation = Roots(uri)?.ServerCertificateValidation(),
        });
    }

    private static Uri CheckedAddress(string address)
    {
        if (!Uri.TryCreate(address, UriKind.Absolute, out Uri? uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) || uri.AbsolutePath != "/")
            throw new UsageException($"--admin: '{address}' is not an admin address like {DefaultAdminUrl}");
        return uri;
    }

    private TrustedRoots? Roots(Uri admin)
    {
        if (string.IsNullOrEmpty(_caCertFile)) return null;
        if (admin.Scheme != Uri.UriSchemeHttps)
            throw new UsageException($"--ca-cert: only for an https:// admin address, got '{admin.GetLeftPart(UriPartial.Authority)}'");
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

    /// <summary>The call on the primary: following a standby's refusal or past an address that takes no connection.</summary>
    public async Task<TResponse> UnaryAsync<TRequest, TResponse>(GrpcMethod<TRequest, TResponse> method, TRequest request)
        where TRequest : class, Google.Protobuf.IMessage<TRequest> where TResponse : class, Google.Protobuf.IMessage<TResponse>
    {
        var tried = new HashSet<string>(StringComparer.Ordinal);
        bool followed = false;
        while (true)
        {
            tried.Add(Normal(_current));
            try
            {
                return await Channel.UnaryAsync(method, request, new CallOptions
                {
                    Headers = Headers, Timeout = TimeSpan.FromMilliseconds(UnaryTimeoutMs), CancellationToken = _cancellationToken,
                });
            }
            catch (RpcException e) when (NextAfter(e, tried, ref followed) is { } next)
            {
                MoveTo(next);
            }
        }
    }

    /// <summary>The call on every address given, each on its own connection, none followed (`switchctl cluster`): each
    /// node's answer, or why it gave none.</summary>
    public async Task<IReadOnlyList<(string Address, TResponse? Reply, string? Failure)>> EachAsync<TRequest, TResponse>(GrpcMethod<TRequest, TResponse> method, TRequest request)
        where TRequest : class, Google.Protobuf.IMessage<TRequest> where TResponse : class, Google.Protobuf.IMessage<TResponse>
    {
        _ = Channel; // checks every address and the key first (UsageException: nothing on the wire)
        return await Task.WhenAll(_addresses.Select(async address =>
        {
            Uri uri = CheckedAddress(address);
            using GrpcChannel channel = GrpcChannel.ForAddress(uri, new GrpcChannelOptions
            {
                ConnectTimeout = TimeSpan.FromMilliseconds(ConnectTimeoutMs),
                ServerCertificateValidation = Roots(uri)?.ServerCertificateValidation(),
            });
            try
            {
                TResponse reply = await channel.UnaryAsync(method, request, new CallOptions
                {
                    Headers = Headers, Timeout = TimeSpan.FromMilliseconds(UnaryTimeoutMs), CancellationToken = _cancellationToken,
                });
                return (address, (TResponse?)reply, (string?)null);
            }
            catch (RpcException e)
            {
                return (address, null, $"{e.StatusCode}: {e.Status.Detail}");
            }
        }));
    }

    /// <summary>Before a stream: the primary, found by a WhoAmI that follows (a stream refused later is reported as it is).</summary>
    public Task FindPrimaryAsync() => UnaryAsync(AdminMethods.WhoAmI, new WhoAmIRequest());

    /// <summary>Where to go after a failed call, or null: it is reported. Only failures that did nothing move on: a
    /// standby's refusal (to the primary it names, once; else the next address), or a connection never opened.</summary>
    private string? NextAfter(RpcException e, HashSet<string> tried, ref bool followed)
    {
        if (e.StatusCode != StatusCode.Unavailable || _cancellationToken.IsCancellationRequested) return null;
        bool notPrimary = e.Status.Detail.StartsWith(NotPrimaryCode + ":", StringComparison.Ordinal);
        if (!notPrimary && !NeverConnected(e)) return null;
        if (notPrimary && !followed && e.Trailers.GetValue(PrimaryAdminTrailer) is { } named
            && Uri.TryCreate(named, UriKind.Absolute, out Uri? uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            && !tried.Contains(Normal(named)))
        {
            followed = true;
            return uri.GetLeftPart(UriPartial.Authority);
        }
        return _addresses.FirstOrDefault(a => !tried.Contains(Normal(a)));
    }

    /// <summary>The connection was refused or never made: the call never reached a switch.</summary>
    private static bool NeverConnected(Exception e)
    {
        for (Exception? x = e.InnerException; x is not null; x = x.InnerException)
        {
            if (x is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError }) return true;
        }
        return false;
    }

    private static string Normal(string address) => Uri.TryCreate(address, UriKind.Absolute, out Uri? uri) ? uri.GetLeftPart(UriPartial.Authority) : address;

    private void MoveTo(string address)
    {
        CheckedAddress(address);
        _channel?.Dispose();
        _channel = null;
        _current = address;
        Moved = true;
    }

    /// <summary>Streams run until the caller cancels (Ctrl-C); no deadline.</summary>
    public CallOptions StreamOptions => new() { Headers = Headers, CancellationToken = _cancellationToken };

    public CancellationToken CancellationToken => _cancellationToken;

    public void Dispose() => _channel?.Dispose();
}
