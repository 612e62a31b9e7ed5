using Switch.Grpc.Health;
using Switch.Grpc.Reflection;
using Switch.Grpc.Server;

namespace Switch.Host;

/// <summary>
/// What every gRPC port of the switch serves besides its API: grpc.health.v1.Health and server reflection (v1 and
/// v1alpha) over the port's own services. Neither asks for a key: load balancers and tools call them.
/// </summary>
internal sealed class PortServices(int maxReceiveMessageBytes, bool compressResponses, Action<string, Exception> handlerFailed,
    HealthService health, IEnumerable<Google.Protobuf.Reflection.ServiceDescriptor> api)
{
    private readonly ReflectionService _reflection = new(api.Append(HealthService.Descriptor));

    /// <summary>While the journal is replayed: health and reflection; any other method UNAVAILABLE (clients retry it).</summary>
    public GrpcRouter Recovering() => Standard(new GrpcRouter(Options(
        new Grpc.Status(Grpc.StatusCode.Unavailable, "UNAVAILABLE: the switch is recovering its journal; retry shortly"))));

    /// <summary>Once the engine runs: the API too.</summary>
    /// <param name="callCompleted">Told each served call's status (the gRPC metrics); health and reflection included.</param>
    public GrpcRouter Serving(Func<GrpcRouter, GrpcRouter> mapApi, Action<Grpc.StatusCode> callCompleted) =>
        Standard(mapApi(new GrpcRouter(Options(null, callCompleted))));

    /// <summary>
    /// On a standby: health and reflection; any other method UNAVAILABLE "NOT_PRIMARY: ..." with the trailer naming the
    /// primary's port of this kind (clients go there). Built per role change: the message names the primary of the moment.
    /// </summary>
    /// <param name="mapServed">What a standby still serves on this port (the admin port: GetNodeStatus); null: nothing.</param>
    public GrpcRouter Standby(RoleState role, RolePort port, Action<Grpc.StatusCode> callCompleted, Func<GrpcRouter, GrpcRouter>? mapServed = null)
    {
        var router = new GrpcRouter(Options(new Grpc.Status(Grpc.StatusCode.Unavailable, role.RefusalMessage(port)), callCompleted, role.RefusalTrailers(port)));
        return Standard(mapServed is null ? router : mapServed(router));
    }

    private GrpcRouter Standard(GrpcRouter router) => _reflection.Map(health.Map(router));

    private GrpcServerOptions Options(Grpc.Status? unknownMethod, Action<Grpc.StatusCode>? callCompleted = null, Grpc.Metadata? unknownTrailers = null) => new()
    {
        MaxReceiveMessageBytes = maxReceiveMessageBytes,
        MalformedRequestCode = Grpc.StatusCode.InvalidArgument, // the caller's input is wrong: say so, code first
        CompressResponses = compressResponses,
        OnHandlerException = handlerFailed,
        UnknownMethodStatus = unknownMethod,
        UnknownMethodTrailers = unknownTrailers,
        OnCallCompleted = callCompleted,
    };
}
