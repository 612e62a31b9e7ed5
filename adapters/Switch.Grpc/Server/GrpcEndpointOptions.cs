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
    /// the HTTP/2 frame reader, and a flushed response to the socket's send. Safe (the socket completions themselves run on
    /// pool threads unless DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS is set, and Kestrel runs each HTTP/2 request's
    /// handler as a work item of its own), and it cut the switch's pool work items a unary call by about a fifth, but off:
    /// with the send inline each flush is a send of its own, where Kestrel's I/O queue gathers the flushes that come
    /// while it waits for a thread into one, and in the unary closed loop the switch spent more CPU a call with it
    /// (59.0 against 54.3 µs, medians of 8 and 11 runs alternating with the build before, on a loaded shared machine).
    /// </summary>
    public bool InlineSocketScheduling { get; init; }
}
