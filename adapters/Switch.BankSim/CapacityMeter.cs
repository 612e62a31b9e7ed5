using System.Diagnostics;

namespace Switch.BankSim;

/// <summary>
/// Counts the requests the bank accepted over the trailing second (ten 100 ms buckets) and turns that load into
/// a decision: within capacity, at once; up to twice the capacity, with a queueing delay growing with the
/// overload; past twice, busy. Only accepted requests count, so a flood settles at 2x capacity accepted, as a
/// congested bank that sheds the rest.
/// </summary>
internal sealed class CapacityMeter
{
    private const int Buckets = 10;
    private static readonly long TicksPerBucket = Stopwatch.Frequency / Buckets;

    private readonly int _capacityTps;
    private readonly long _maxQueueingDelayTicks;
    private readonly long[] _counts = new long[Buckets];
    private readonly long[] _bucketIds = new long[Buckets];
    private readonly Lock _gate = new();

    public CapacityMeter(int capacityTps, int maxQueueingDelayMs)
    {
        Debug.Assert(capacityTps >= 0 && maxQueueingDelayMs >= 0);
        _capacityTps = capacityTps;
        _maxQueueingDelayTicks = maxQueueingDelayMs * Stopwatch.Frequency / 1000;
        Array.Fill(_bucketIds, long.MinValue);
    }

    /// <summary>False when over twice the capacity (busy); otherwise the queueing delay to add, in Stopwatch ticks.</summary>
    public bool TryAdmit(long nowTicks, out long queueingDelayTicks)
    {
        queueingDelayTicks = 0;
        if (_capacityTps == 0) return true; // Unlimited.
        long bucket = nowTicks / TicksPerBucket;
        int index = (int)(bucket % Buckets);
        long accepted;
        lock (_gate)
        {
            if (_bucketIds[index] != bucket)
            {
                _bucketIds[index] = bucket;
                _counts[index] = 0;
            }
            accepted = 1; // This request.
            for (int i = 0; i < Buckets; i++)
                if (_bucketIds[i] > bucket - Buckets) accepted += _counts[i];
            if (accepted > 2L * _capacityTps) return false;
            _counts[index]++;
        }
        if (accepted > _capacityTps)
        {
            double overload = (double)(accepted - _capacityTps) / _capacityTps; // (0, 1]
            queueingDelayTicks = (long)(overload * _maxQueueingDelayTicks);
        }
        return true;
    }
}
