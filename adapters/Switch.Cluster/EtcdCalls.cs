using Grpc.Core;

namespace Switch.Cluster;

/// <summary>One etcd call with a deadline, its failure turned into a <see cref="LeadershipException"/> with a code:
/// no answer in time or no connection is <c>ETCD_UNAVAILABLE</c>, any other status <c>ETCD_REFUSED</c>.</summary>
internal sealed class EtcdCalls(LeadershipOptions options)
{
    readonly string _endpoints = string.Join(",", options.Endpoints);

    /// <summary>The deadline of a call starting now (gRPC deadlines are wall-clock instants).</summary>
    public DateTime Deadline() => DateTime.UtcNow.AddMilliseconds(options.EtcdTimeoutMs);

    public async Task<T> Run<T>(Func<DateTime, Task<T>> call, string what, CancellationToken ct)
    {
        try
        {
            return await call(Deadline()).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            throw Failure(e, what);
        }
    }

    public LeadershipException Failure(Exception e, string what) => e switch
    {
        LeadershipException l => l,
        RpcException { StatusCode: StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Cancelled } r =>
            new LeadershipException(LeadershipCodes.EtcdUnavailable,
                $"etcd ({_endpoints}) did not {what} within {options.EtcdTimeoutMs} ms (cluster.etcdTimeoutMs): {r.Status.StatusCode} {r.Status.Detail}", e),
        // The client ends a call cancelled by its deadline this way while it is still connecting.
        OperationCanceledException => new LeadershipException(LeadershipCodes.EtcdUnavailable,
            $"etcd ({_endpoints}) did not {what} within {options.EtcdTimeoutMs} ms (cluster.etcdTimeoutMs)", e),
        RpcException r => new LeadershipException(LeadershipCodes.EtcdRefused,
            $"etcd ({_endpoints}) refused to {what}: {r.Status.StatusCode} {r.Status.Detail}", e),
        _ => new LeadershipException(LeadershipCodes.EtcdUnavailable,
            $"etcd ({_endpoints}) did not {what}: {e.GetType().Name}: {e.Message}", e),
    };
}
