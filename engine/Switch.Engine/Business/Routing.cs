using Switch.Engine.Events;
using Switch.Engine.Hashing;

namespace Switch.Engine.Business;

/// <summary>
/// The cut-over rule: which endpoint of a bank a transaction goes to. The pick is a stable hash of the switch
/// transaction id over the weights of the endpoints that take traffic, so a replay routes identically and a
/// weight change applies from the next transaction. An endpoint that is down or draining gets nothing and its
/// share goes to the others in proportion to their weights; a weight of 0 means no traffic at all.
/// </summary>
public static class Routing
{
    public const int TotalWeightBps = 10_000;

    /// <summary>Returns the endpoint index, or -1 when no endpoint with weight is up.</summary>
    public static int PickEndpoint(Bank bank, long transactionId)
    {
        long liveWeightBps = 0;
        for (int e = 0; e < bank.Endpoints.Length; e++)
        {
            Endpoint endpoint = bank.Endpoints[e];
            if (endpoint.State == EndpointState.Up && endpoint.Reachable)
            {
                liveWeightBps += endpoint.WeightBps;
            }
        }
        if (liveWeightBps == 0)
        {
            return -1;
        }
        long point = (long)(StableHash.Mix((ulong)transactionId) % (ulong)liveWeightBps);
        for (int e = 0; e < bank.Endpoints.Length; e++)
        {
            Endpoint endpoint = bank.Endpoints[e];
            if (endpoint.State != EndpointState.Up || !endpoint.Reachable)
            {
                continue;
            }
            if (point < endpoint.WeightBps)
            {
                return e;
            }
            point -= endpoint.WeightBps;
        }
        throw new InvalidOperationException("routing: point fell outside the live weights (weights changed during the pick?)");
    }

    /// <summary>An endpoint able to answer a query or reversal for the bank: the original one if up, else any up.</summary>
    public static int PickFollowUpEndpoint(Bank bank, int originalEndpoint)
    {
        if (bank.Endpoints[originalEndpoint].State != EndpointState.Down)
        {
            return originalEndpoint;
        }
        for (int e = 0; e < bank.Endpoints.Length; e++)
        {
            if (bank.Endpoints[e].State != EndpointState.Down)
            {
                return e;
            }
        }
        return -1;
    }
}
