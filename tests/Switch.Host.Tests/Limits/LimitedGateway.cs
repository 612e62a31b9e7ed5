using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Grpc.Server;
using Switch.Host.Gateway;
using Switch.Host.Tests.EndToEnd;

namespace Switch.Host.Tests.Limits;

/// <summary>
/// A second institution port on a running switch's real engine, with the limits a test chooses (the host's own
/// port has the defaults): same authenticator rules, same answer router and feeds, real sockets.
/// </summary>
public sealed class LimitedGateway : IAsyncDisposable
{
    private readonly GrpcServer _server;

    private LimitedGateway(GrpcServer server, InstitutionGateway gateway)
    {
        _server = server;
        Gateway = gateway;
        Channel = GrpcChannel.ForAddress(server.Address);
    }

    public InstitutionGateway Gateway { get; }
    public GrpcChannel Channel { get; }

    public static async Task<LimitedGateway> StartAsync(RunningSwitch running, GatewayLimits limits, AuthFailureLimiter? failures = null)
    {
        var auth = new ApiKeyAuthenticator(running.Host.Engine.Logic.Config, failures);
        var gateway = new InstitutionGateway(running.Host.EngineClient, auth, running.Host.Feeds, maxInFlightPerStream: 64, limits);
        var router = gateway.Map(new GrpcRouter(new GrpcServerOptions { MaxReceiveMessageBytes = running.Config.MaxMessageBytes }));
        GrpcServer server = await GrpcServer.StartAsync(router, new GrpcEndpointOptions { Port = 0 });
        return new LimitedGateway(server, gateway);
    }

    /// <summary>
    /// Waits (bounded) until the switch executes a payment: right after start the bank connector may still be
    /// connecting, and the answer is then BANK_UNAVAILABLE. Pays through the host's own port, so a test's limits
    /// are untouched; returns how many transactions the warm-up left.
    /// </summary>
    public static async Task<long> WarmUpAsync(RunningSwitch running)
    {
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        for (int attempt = 0; ; attempt++)
        {
            Assert.True(DateTime.UtcNow < deadline, "the switch executed no payment within 30 s of starting");
            try
            {
                TransferResult r = await running.PayAsync(RunningSwitch.Payment($"WARM-UP-{attempt}", 1, account: "warm-up"));
                if (r.Status == TransactionStatus.Succeeded) return running.Host.Engine.Logic.Transactions.LastId;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable)
            {
            }
            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await _server.DisposeAsync();
    }
}
