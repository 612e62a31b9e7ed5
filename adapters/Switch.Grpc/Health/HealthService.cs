using System.Threading.Channels;
using Switch.Grpc.Health.V1;
using Switch.Grpc.Server;
using ServingStatus = Switch.Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace Switch.Grpc.Health;

/// <summary>
/// grpc.health.v1.Health (grpc/doc/health-checking.md) over a fixed set of service names: "" (the server as a whole)
/// and the names given. The owner sets the status; Check answers it (NOT_FOUND for a name not in the set), Watch
/// sends it and then every change. Needs no credentials: load balancers and probes call it. Thread-safe.
/// </summary>
public sealed class HealthService
{
    public const string ServiceName = "grpc.health.v1.Health";

    public static readonly GrpcMethod<HealthCheckRequest, HealthCheckResponse> Check =
        new(MethodType.Unary, ServiceName, "Check", HealthCheckRequest.Parser, HealthCheckResponse.Parser);
    public static readonly GrpcMethod<HealthCheckRequest, HealthCheckResponse> Watch =
        new(MethodType.ServerStreaming, ServiceName, "Watch", HealthCheckRequest.Parser, HealthCheckResponse.Parser);

    /// <summary>The grpc.health.v1.Health service, for reflection.</summary>
    public static Google.Protobuf.Reflection.ServiceDescriptor Descriptor => HealthReflection.Descriptor.Services[0];

    /// <summary>Open Watch streams at once, across all names; one more is RESOURCE_EXHAUSTED.</summary>
    public const int MaxWatchers = 1024;

    private static readonly HealthCheckResponse[] Answers =
        Enum.GetValues<ServingStatus>().Select(s => new HealthCheckResponse { Status = s }).ToArray();

    private readonly object _lock = new();
    private readonly Dictionary<string, ServingStatus> _statuses = new(StringComparer.Ordinal);
    private readonly List<(string Service, Channel<ServingStatus> Changes)> _watchers = new();
    private bool _closed;

    /// <param name="services">Fully qualified service names served beside "" (the server as a whole).</param>
    public HealthService(IEnumerable<string> services, ServingStatus initial = ServingStatus.NotServing)
    {
        _statuses[""] = initial;
        foreach (string service in services) _statuses[service] = initial;
    }

    public IReadOnlyCollection<string> Services => _statuses.Keys;

    /// <summary>The status of one name, or null when it is not in the set.</summary>
    public ServingStatus? Get(string service)
    {
        lock (_lock) return _statuses.TryGetValue(service, out ServingStatus status) ? status : null;
    }

    /// <summary>Sets every name at once (the switch serves all its services or none) and tells the watchers.</summary>
    public void SetAll(ServingStatus status)
    {
        if (status is ServingStatus.ServiceUnknown) throw new ArgumentOutOfRangeException(nameof(status), "SERVICE_UNKNOWN is for Watch answers only.");
        lock (_lock)
        {
            foreach (string service in _statuses.Keys) _statuses[service] = status;
            foreach (var (service, changes) in _watchers)
            {
                if (_statuses.ContainsKey(service)) changes.Writer.TryWrite(status); // Capacity 1, newest wins.
            }
        }
    }

    /// <summary>Sets NOT_SERVING, lets every Watch send it, and ends them (UNAVAILABLE: the server is going away).</summary>
    public void Close()
    {
        SetAll(ServingStatus.NotServing);
        lock (_lock)
        {
            _closed = true;
            foreach (var (_, changes) in _watchers) changes.Writer.TryComplete();
        }
    }

    public GrpcRouter Map(GrpcRouter router) => router
        .MapUnary(Check, CheckAsync)
        .MapServerStreaming(Watch, WatchAsync);

    private ValueTask<HealthCheckResponse> CheckAsync(HealthCheckRequest request, ServerCallContext context) =>
        Get(request.Service) is { } status
            ? ValueTask.FromResult(Answers[(int)status])
            : throw new RpcException(StatusCode.NotFound, $"NOT_FOUND: no service '{request.Service}' on this port");

    private async ValueTask WatchAsync(HealthCheckRequest request, ServerResponseStream<HealthCheckResponse> responses, ServerCallContext context)
    {
        var changes = Channel.CreateBounded<ServingStatus>(new BoundedChannelOptions(1)
        {
            FullMode = BoundedChannelFullMode.DropOldest, // A slow watcher needs the latest status, not the history.
            SingleReader = true,
        });
        var entry = (request.Service, changes);
        ServingStatus current;
        lock (_lock)
        {
            if (_closed) throw new RpcException(StatusCode.Unavailable, "UNAVAILABLE: the server is stopping");
            if (_watchers.Count >= MaxWatchers)
                throw new RpcException(StatusCode.ResourceExhausted, $"RESOURCE_EXHAUSTED: at most {MaxWatchers} health watches at once");
            // The spec: a name the server does not know is SERVICE_UNKNOWN, and the stream stays open.
            // (Our names are fixed: such a watch only ever ends.)
            current = _statuses.TryGetValue(request.Service, out ServingStatus known) ? known : ServingStatus.ServiceUnknown;
            _watchers.Add(entry);
        }
        try
        {
            await responses.WriteAndFlushAsync(Answers[(int)current]);
            await foreach (ServingStatus status in changes.Reader.ReadAllAsync(context.CancellationToken))
            {
                if (status == current) continue;
                current = status;
                await responses.WriteAndFlushAsync(Answers[(int)status]);
            }
            throw new RpcException(StatusCode.Unavailable, "UNAVAILABLE: the server is stopping");
        }
        finally
        {
            lock (_lock) _watchers.Remove(entry);
        }
    }
}
