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

    /// <summary>The endpoint for a transaction's <paramref name="followUpNo"/>-th query or reversal (1, 2, ...): the
    /// original one first, then in turn every endpoint able to answer (reachable and not taken down by an operator; a
    /// draining or open one still answers), starting after the original. The bank's endpoints front one set of books,
    /// so an endpoint that is up but never answers in time (slow, hung) cannot hold an outcome unknown. -1 when none can.</summary>
    public static int PickFollowUpEndpoint(Bank bank, int originalEndpoint, int followUpNo)
    {
        if (followUpNo < 1) throw new ArgumentOutOfRangeException(nameof(followUpNo), "follow-ups count from 1");
        int count = bank.Endpoints.Length;
        int able = 0;
        for (int e = 0; e < count; e++)
        {
            if (bank.Endpoints[e].AnswersFollowUps) able++;
        }
        if (able == 0)
        {
            return -1;
        }
        int turn = (followUpNo - 1) % able;
        for (int k = 0; k < count; k++)
        {
            int e = (originalEndpoint + k) % count;
            if (!bank.Endpoints[e].AnswersFollowUps) continue;
            if (turn == 0) return e;
            turn--;
        }
        throw new InvalidOperationException("routing: follow-up turn beyond the endpoints able to answer");
    }
}
