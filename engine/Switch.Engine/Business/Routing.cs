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
        long liveWeightBps = LiveWeightBps(bank, withHalfOpen);
        return liveWeightBps == 0 ? -1 : EndpointAt(bank, (long)(hash % (ulong)liveWeightBps), withHalfOpen);
    }

    /// <summary>The sum of the weights of the endpoints in the draw.</summary>
    private static long LiveWeightBps(Bank bank, bool withHalfOpen)
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
        return liveWeightBps;
    }

    /// <summary>The endpoint whose range of the live weights (laid end to end in endpoint order) holds <paramref name="pointBps"/>.</summary>
    private static int EndpointAt(Bank bank, long pointBps, bool withHalfOpen)
    {
        for (int e = 0; e < bank.Endpoints.Length; e++)
        {
            Endpoint endpoint = bank.Endpoints[e];
            if (!(withHalfOpen ? endpoint.InRotation : endpoint.TakesTraffic))
            {
                continue;
            }
            if (pointBps < endpoint.WeightBps)
            {
                return e;
            }
            pointBps -= endpoint.WeightBps;
        }
        throw new InvalidOperationException("routing: point fell outside the live weights (weights changed during the pick?)");
    }

    /// <summary>The draw <see cref="PickEndpoint"/> would make for <paramref name="transactionId"/> now, changing
    /// nothing (a half-open endpoint's probe turn is looked at, not taken): for explaining a decision.</summary>
    public static RoutingDraw Draw(Bank bank, long transactionId)
    {
        var draw = new RoutingDraw { Hash = StableHash.Mix((ulong)transactionId), SecondEndpoint = -1 };
        draw.LiveWeightBps = LiveWeightBps(bank, withHalfOpen: true);
        if (draw.LiveWeightBps == 0)
        {
            draw.Endpoint = draw.Chosen = -1;
            return draw;
        }
        draw.PointBps = (long)(draw.Hash % (ulong)draw.LiveWeightBps);
        draw.Endpoint = draw.Chosen = EndpointAt(bank, draw.PointBps, withHalfOpen: true);
        EndpointBreaker breaker = bank.Endpoints[draw.Endpoint].Breaker;
        if (breaker.State != BreakerState.HalfOpen)
        {
            return draw;
        }
        draw.LandedOnHalfOpen = true;
        draw.ProbeTurn = breaker.IsProbeTurn;
        if (draw.ProbeTurn)
        {
            return draw;
        }
        draw.SecondHash = StableHash.Mix(draw.Hash);
        draw.SecondLiveWeightBps = LiveWeightBps(bank, withHalfOpen: false);
        if (draw.SecondLiveWeightBps > 0)
        {
            draw.SecondPointBps = (long)(draw.SecondHash % (ulong)draw.SecondLiveWeightBps);
            draw.SecondEndpoint = EndpointAt(bank, draw.SecondPointBps, withHalfOpen: false);
        }
        draw.Chosen = draw.SecondEndpoint;
        return draw;
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

/// <summary>A routing draw laid out (<see cref="Routing.Draw"/>): the stable hash of the transaction id, the live
/// weights it was taken over and the point it fell on; when that landed on a half-open endpoint whose probe turn it
/// was not, the second, independent draw over the closed endpoints.</summary>
public struct RoutingDraw
{
    public ulong Hash;
    /// <summary>The weights of the endpoints in rotation (closed or half-open), summed; 0: none takes traffic.</summary>
    public long LiveWeightBps;
    /// <summary>Hash mod <see cref="LiveWeightBps"/>: the point in the endpoints' weight ranges laid end to end.</summary>
    public long PointBps;
    /// <summary>The endpoint the first draw landed on, -1 when none is in rotation.</summary>
    public int Endpoint;
    public bool LandedOnHalfOpen;
    /// <summary>Half-open: whether this transaction was its probe (every BreakerProbeEvery-th turn is).</summary>
    public bool ProbeTurn;
    public ulong SecondHash;
    public long SecondLiveWeightBps;
    public long SecondPointBps;
    public int SecondEndpoint;
    /// <summary>Where the transaction goes: -1 when no endpoint takes it (BANK_UNAVAILABLE).</summary>
    public int Chosen;
}
