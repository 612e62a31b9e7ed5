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

    /// <summary>
    /// A connection's bytes are handled on the thread whose socket operation completed (Kestrel's sockets
    /// <c>UnsafePreferInlineScheduling</c>), rather than handed to another pool thread at each step: the received bytes to
    /// the HTTP/2 frame reader, and a flushed response to the socket's send. Each hand-off is a work item that can wake a
    /// sleeping pool thread (a context switch of several µs on a small VM), twice a request and twice a response.
    /// Safe here because the socket completions themselves run on pool threads (the runtime's sockets dispatch them
    /// unless DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS is set, which this server never asks for), and Kestrel runs
    /// each HTTP/2 request's handler as a work item of its own: only Kestrel's framing and the send run inline.
    /// </summary>
    public bool InlineSocketScheduling { get; init; } = true;
}
