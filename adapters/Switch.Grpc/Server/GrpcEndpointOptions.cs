using System.Net;
using Switch.Grpc.Tls;

namespace Switch.Grpc.Server;

/// <summary>One listening endpoint for gRPC: HTTP/2 only, cleartext (prior knowledge) or TLS with ALPN h2.</summary>
public sealed class GrpcEndpointOptions
{
    public IPAddress Address { get; init; } = IPAddress.Loopback;

    /// <summary>0 picks a free port; read it back from <see cref="GrpcServer.Port"/>.</summary>
    public int Port { get; init; }

    /// <summary>Null serves cleartext HTTP/2 (h2c with prior knowledge); otherwise TLS with ALPN "h2".</summary>
    public ServerTlsOptions? Tls { get; init; }

    /// <summary>HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection (Kestrel Http2.MaxStreamsPerConnection).</summary>
    public int MaxStreamsPerConnection { get; init; } = 100;

    /// <summary>Connections open at once (Kestrel MaxConcurrentConnections); past it Kestrel closes new ones at once. Null: no bound.</summary>
    public long? MaxConnections { get; init; }

    /// <summary>Kestrel's per-stream receive window; larger windows keep big streams from stalling on round trips.</summary>
    public int InitialStreamWindowBytes { get; init; } = 768 * 1024;

    /// <summary>Kestrel's per-connection receive window; must be at least the stream window.</summary>
    public int InitialConnectionWindowBytes { get; init; } = 1024 * 1024;
}
