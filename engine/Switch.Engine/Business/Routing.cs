using Switch.Engine.Events;
using Switch.Engine.Hashing;

namespace Switch.Engine.Business;

/// <summary>
/// The cut-over rule: which endpoint of a bank a transaction goes to. The pick is a stable hash of the switch
/// transaction id over the weights of the endpoints that take traffic, so a replay routes identically and a
/// weight change applies from the next transaction. An endpoint that is down, draining, unreachable or whose
/// breaker is open gets nothing and its share goes to the others in proportion to their weights; a half-open one
/// gets one in BreakerProbeEvery of its share (probes), the rest going to the others; a weight of 0 means no traffic.
/// </summary>
public static class Routing
{
    public const int TotalWeightBps = 10_000;

    /// <summary>Returns the endpoint index, or -1 when no endpoint with weight takes traffic. Counts a half-open
    /// endpoint's probe turn when the pick lands on it (deterministic: same events, same turns).</summary>
    public static int PickEndpoint(Bank bank, long transactionId)
    {
        ulong hash = StableHash.Mix((ulong)transactionId);
        int e = PickWeighted(bank, hash, withHalfOpen: true);
        if (e < 0 || bank.Endpoints[e].Breaker.State != BreakerState.HalfOpen || bank.Endpoints[e].Breaker.TakeProbeTurn())
        {
            return e;
        }
        // Not the probe's turn: the closed endpoints share it in proportion, by an independent draw.
        return PickWeighted(bank, StableHash.Mix(hash), withHalfOpen: false);
    }

    private static int PickWeighted(Bank bank, ulong hash, bool withHalfOpen)
    {
        long liveWeightBps = 0;
        for (int e = 0; e < bank.Endpoints.Length; e++)
        {
            Endpoint endpoint = bank.Endpoints[e];
            if (withHalfOpen ? endpoint.InRotation : endpoint.TakesTraffic)
            {
                liveWeightBps += endpoint.WeightBps;
            }
        }
        if (liveWeightBps == 0)
        {
            return -1;
        }
        long point = (long)(hash % (ulong)liveWeightBps);
        for (int e = 0; e < bank.Endpoints.Length; e++)
        {
            Endpoint endpoint = bank.Endpoints[e];
            if (!(withHalfOpen ? endpoint.InRotation : endpoint.TakesTraffic))
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

    /// <summary>An endpoint able to answer a query or reversal for the bank: the original one if it can, else the
    /// first that can (reachable and not taken down by an operator; a draining or open one still answers), else -1.</summary>
    public static int PickFollowUpEndpoint(Bank bank, int originalEndpoint)
    {
        if (bank.Endpoints[originalEndpoint].AnswersFollowUps)
        {
            return originalEndpoint;
        }
        for (int e = 0; e < bank.Endpoints.Length; e++)
        {
            if (bank.Endpoints[e].AnswersFollowUps)
            {
                return e;
            }
        }
        return -1;
    }
}
