using Microsoft.AspNetCore.Server.Kestrel.Core;
using Switch.Grpc.Tls;

namespace Switch.Grpc.Server;

/// <summary>Kestrel configuration for gRPC.</summary>
public static class GrpcKestrel
{
    /// <summary>Applies the HTTP/2 limits and adds the listen endpoint (HTTP/2 only; TLS when a certificate is given).</summary>
    public static void ListenGrpc(this KestrelServerOptions kestrel, GrpcEndpointOptions endpoint)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(endpoint.MaxStreamsPerConnection, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(endpoint.InitialConnectionWindowBytes, endpoint.InitialStreamWindowBytes);
        kestrel.AddServerHeader = false;
        if (endpoint.MaxConnections is { } maxConnections)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(maxConnections, 1);
            kestrel.Limits.MaxConcurrentConnections = maxConnections;
        }
        var http2 = kestrel.Limits.Http2;
        http2.MaxStreamsPerConnection = endpoint.MaxStreamsPerConnection;
        http2.InitialStreamWindowSize = endpoint.InitialStreamWindowBytes;
        http2.InitialConnectionWindowSize = endpoint.InitialConnectionWindowBytes;
        kestrel.Listen(endpoint.Address, endpoint.Port, listen =>
        {
            listen.Protocols = HttpProtocols.Http2;
            if (endpoint.Tls is { } tls)
                listen.UseTls(tls); // With Protocols = Http2, ALPN offers exactly "h2".
        });
    }
}
