using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
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

    /// <summary>Kestrel's per-stream receive window; larger windows keep big streams from stalling on round trips.</summary>
    public int InitialStreamWindowBytes { get; init; } = 768 * 1024;

    /// <summary>Kestrel's per-connection receive window; must be at least the stream window.</summary>
    public int InitialConnectionWindowBytes { get; init; } = 1024 * 1024;
}

/// <summary>Kestrel configuration for gRPC.</summary>
public static class GrpcKestrel
{
    /// <summary>Applies the HTTP/2 limits and adds the listen endpoint (HTTP/2 only; TLS when a certificate is given).</summary>
    public static void ListenGrpc(this KestrelServerOptions kestrel, GrpcEndpointOptions endpoint)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(endpoint.MaxStreamsPerConnection, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(endpoint.InitialConnectionWindowBytes, endpoint.InitialStreamWindowBytes);
        kestrel.AddServerHeader = false;
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

/// <summary>A started Kestrel server whose only middleware is a <see cref="GrpcRouter"/> (replaceable: <see cref="Serve"/>).</summary>
public sealed class GrpcServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private volatile GrpcRouter _router = null!;

    private GrpcServer(WebApplication app, GrpcRouter router)
    {
        _app = app;
        _router = router;
    }

    /// <summary>The bound address, e.g. http://127.0.0.1:5000 (the real port when 0 was asked for).</summary>
    public Uri Address { get; private set; } = null!;

    public int Port => Address.Port;

    public static async Task<GrpcServer> StartAsync(GrpcRouter router, GrpcEndpointOptions endpoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(router);
        ArgumentNullException.ThrowIfNull(endpoint);
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Logging.ClearProviders(); // Callers observe errors through GrpcServerOptions.OnHandlerException.
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenGrpc(endpoint));
        var app = builder.Build();
        var server = new GrpcServer(app, router);
        app.Run(http => server._router.HandleAsync(http));
        await app.StartAsync(cancellationToken).ConfigureAwait(false);

        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses;
        string bound = addresses?.FirstOrDefault() ?? throw new InvalidOperationException("Kestrel reported no bound address.");
        server.Address = new Uri(bound);
        return server;
    }

    /// <summary>
    /// Routes calls that start from now on to <paramref name="router"/>; calls under way finish on the old one. Lets a
    /// process listen (health, reflection) before it can serve its methods, then serve them without closing the port.
    /// </summary>
    public void Serve(GrpcRouter router)
    {
        ArgumentNullException.ThrowIfNull(router);
        _router = router;
    }

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5)); // Bounded: in-flight calls get 5 s.
        try { await _app.StopAsync(timeout.Token).ConfigureAwait(false); }
        finally { await _app.DisposeAsync().ConfigureAwait(false); }
    }
}
