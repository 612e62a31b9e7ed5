using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Switch.Grpc.Server;

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

    /// <summary>A service of the server's host (for tests: the transport's options as Kestrel took them).</summary>
    internal T HostService<T>() where T : notnull => _app.Services.GetRequiredService<T>();

    public static async Task<GrpcServer> StartAsync(GrpcRouter router, GrpcEndpointOptions endpoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(router);
        ArgumentNullException.ThrowIfNull(endpoint);
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Logging.ClearProviders(); // Callers observe errors through GrpcServerOptions.OnHandlerException.
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenGrpc(endpoint));
        builder.WebHost.UseSockets(sockets => sockets.UnsafePreferInlineScheduling = endpoint.InlineSocketScheduling);
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
