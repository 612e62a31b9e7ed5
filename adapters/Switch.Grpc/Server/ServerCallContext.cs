using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace Switch.Grpc.Server;

/// <summary>What a handler knows about its call, and the headers/trailers it may add.</summary>
public sealed class ServerCallContext
{
    // The address is kept, not the ConnectionInfo: Kestrel reuses that with the HttpContext after the call.
    private readonly IPAddress? _remoteAddress;
    private readonly int _remotePort;
    private string? _peer;

    // The request's headers as Kestrel holds them, until the call ends (Kestrel reuses them after it): RequestHeaders is
    // made from them on first use, and RequestHeader reads one without making it (a unary call's key, per call).
    private IHeaderDictionary? _wireHeaders;
    private Metadata? _requestHeaders;

    internal ServerCallContext(string method, IHeaderDictionary requestHeaders, DateTime deadlineUtc, IPAddress? remoteAddress, int remotePort,
        X509Certificate2? clientCertificate, CancellationToken cancellationToken, string connectionId = "", CancellationToken connectionClosed = default)
    {
        ConnectionId = connectionId;
        ConnectionClosed = connectionClosed;
        Method = method;
        _wireHeaders = requestHeaders;
        Deadline = deadlineUtc;
        _remoteAddress = remoteAddress;
        _remotePort = remotePort;
        ClientCertificate = clientCertificate;
        CancellationToken = cancellationToken;
    }

    /// <summary>The :path, e.g. "/switch.payments.v1.Payments/Submit".</summary>
    public string Method { get; }

    /// <summary>Custom metadata sent by the client (reserved headers excluded).</summary>
    /// <exception cref="InvalidOperationException">First asked after the call ended.</exception>
    public Metadata RequestHeaders => _requestHeaders ??= Metadata.FromRequestHeaders(WireHeaders);

    /// <summary>
    /// The last value of one text (not -bin) request header, its key in lower case, as <c>RequestHeaders.GetValue(key)</c>
    /// gives it, read where the server holds the headers: no metadata made for a call that wants one header.
    /// </summary>
    /// <exception cref="InvalidOperationException">First asked after the call ended.</exception>
    public string? RequestHeader(string key)
    {
        // Lower case, as metadata keys are: the two places this reads from then agree (Kestrel's ignores case, Metadata's not).
        if (Metadata.IsBinaryKey(key) || Metadata.IsReservedHeader(key) || key.AsSpan().ContainsAnyInRange('A', 'Z'))
            throw new ArgumentException($"'{key}' is not a lower-case text metadata key", nameof(key));
        if (_requestHeaders is { } made) return made.GetValue(key);
        StringValues values = WireHeaders[key];
        return values.Count == 0 ? null : values[values.Count - 1];
    }

    private IHeaderDictionary WireHeaders =>
        _wireHeaders ?? throw new InvalidOperationException("the request's headers were first asked for after the call ended");

    /// <summary>The call has ended: Kestrel's headers are no longer its own.</summary>
    internal void EndOfCall() => _wireHeaders = null;

    /// <summary>UTC deadline from grpc-timeout, or DateTime.MaxValue when the client sent none.</summary>
    public DateTime Deadline { get; }

    /// <summary>The certificate the client presented in the TLS handshake (it passed the listener's validation), or null.</summary>
    public X509Certificate2? ClientCertificate { get; }

    /// <summary>The transport connection the call came on (unique for the server's life), for limits per connection.</summary>
    public string ConnectionId { get; }

    /// <summary>Canceled when the call's connection closes (not cancelable when the transport cannot tell).</summary>
    public CancellationToken ConnectionClosed { get; }

    /// <summary>Canceled at the deadline or when the client goes away.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>The client address, as "ipv4:127.0.0.1:5000" or "ipv6:[::1]:5000".</summary>
    // Formatted on first use: most handlers never ask, and formatting an address allocates on every call.
    public string Peer => _peer ??= FormatPeer(_remoteAddress, _remotePort);

    // Made on first use: most calls add neither, and each is two objects a call.
    private Metadata? _responseHeaders;
    private Metadata? _responseTrailers;

    /// <summary>Headers sent with the first response message (or with the status if none is sent).</summary>
    public Metadata ResponseHeaders => _responseHeaders ??= new();

    /// <summary>Trailers sent with the status.</summary>
    public Metadata ResponseTrailers => _responseTrailers ??= new();

    /// <summary>The response headers added, or null: for the call's writer, which must not make them.</summary>
    internal Metadata? ResponseHeadersAdded => _responseHeaders;

    /// <summary>The trailers added, or null.</summary>
    internal Metadata? ResponseTrailersAdded => _responseTrailers;

    internal static string FormatPeer(IPAddress? address, int port) => address switch
    {
        null => "unknown",
        { AddressFamily: System.Net.Sockets.AddressFamily.InterNetworkV6 } when address.IsIPv4MappedToIPv6 => $"ipv4:{address.MapToIPv4()}:{port}",
        { AddressFamily: System.Net.Sockets.AddressFamily.InterNetworkV6 } => $"ipv6:[{address}]:{port}",
        _ => $"ipv4:{address}:{port}",
    };
}
