using Switch.Engine.Snapshots;
using Switch.Engine.Events;
using Switch.Engine.Hashing;

namespace Switch.Engine.Business;

/// <summary>
/// A bank's running cut-over ramp: from the weights it started at to a target in N equal steps, step k due at
/// start + k × duration / N (event time; applied on ticks). One per bank, allocated once and reused.
/// </summary>
public sealed class WeightRamp
{
    public const int MaxSteps = 100;
    public const long MaxDurationMs = 86_400_000;

    public bool Active { get; private set; }
    public int Steps { get; private set; }
    public int StepsDone { get; private set; }
    public long StartUs { get; private set; }
    public long DurationUs { get; private set; }
    public EndpointWeights FromBps;
    public EndpointWeights TargetBps;
    /// <summary>Who started it and why: each step's audit entry carries them.</summary>
    public Text32 Operator;
    public Text64 Note;

    /// <summary>When the next step is due; only meaningful while <see cref="Active"/>.</summary>
    public long NextStepUs => StartUs + DurationUs * (StepsDone + 1) / Steps;

    public static bool IsValid(int steps, long durationMs) =>
        (steps == 0 && durationMs == 0) || (steps is >= 1 and <= MaxSteps && durationMs is >= 1 and <= MaxDurationMs);

    public void Start(in EndpointWeights fromBps, in EndpointWeights targetBps, int steps, long durationMs, long nowUs,
        in Text32 operatorId, in Text64 note)
    {
        if (!IsValid(steps, durationMs) || steps == 0) throw new ArgumentOutOfRangeException(nameof(steps), "ramp: invalid steps or duration");
        Active = true;
        Steps = steps;
        StepsDone = 0;
        StartUs = nowUs;
        DurationUs = durationMs * 1_000;
        FromBps = fromBps;
        TargetBps = targetBps;
        Operator = operatorId;
        Note = note;
    }

    /// <summary>Applies the next step's weights into <paramref name="weightsBps"/>; true when it was the last one.</summary>
    public bool Step(int endpointCount, Span<int> weightsBps)
    {
        if (!Active) throw new InvalidOperationException("ramp: step while not running");
        StepsDone++;
        WeightsAt(FromBps, TargetBps, endpointCount, StepsDone, Steps, weightsBps);
        if (StepsDone == Steps)
        {
            Active = false;
        }
        return !Active;
    }

    public void Cancel() => Active = false;

    public void Save(StateWriter w)
    {
        w.Bool(Active);
        w.Int(Steps);
        w.Int(StepsDone);
        w.Long(StartUs);
        w.Long(DurationUs);
        w.Value(in FromBps);
        w.Value(in TargetBps);
        w.Value(in Operator);
        w.Value(in Note);
    }

    public void Restore(ref StateReader r)
    {
        Active = r.Bool();
        Steps = r.Int();
        StepsDone = r.Int();
        StartUs = r.Long();
        DurationUs = r.Long();
        FromBps = r.Value<EndpointWeights>();
        TargetBps = r.Value<EndpointWeights>();
        Operator = r.Value<Text32>();
        Note = r.Value<Text64>();
        if (Active && (Steps is < 1 or > MaxSteps || StepsDone < 0 || StepsDone >= Steps || DurationUs <= 0))
            throw new InvalidDataException($"snapshot: a ramp at step {StepsDone} of {Steps} over {DurationUs} µs");
    }

    public ulong Hash(ulong h, int endpointCount)
    {
        h = StableHash.Combine(h, Active ? 1UL : 0UL);
        if (!Active)
        {
            return h;
        }
        h = StableHash.Combine(h, (ulong)(uint)Steps | (ulong)(uint)StepsDone << 32);
        h = StableHash.Combine(h, (ulong)StartUs);
        h = StableHash.Combine(h, (ulong)DurationUs);
        for (int i = 0; i < endpointCount; i++)
        {
            h = StableHash.Combine(h, (ulong)(uint)FromBps[i] | (ulong)(uint)TargetBps[i] << 32);
        }
        return StableHash.Combine(h, StableHash.OfBytes(Operator.Span));
    }

    /// <summary>
    /// The weights after step k of n: each endpoint moves k/n of the way, floored; the basis points the floors lose
    /// (fewer than the endpoint count) go one each to the largest remainders, lowest index first on ties. So every
    /// step sums to exactly the total and step n is exactly the target.
    /// </summary>
    public static void WeightsAt(in EndpointWeights fromBps, in EndpointWeights targetBps, int count, int k, int n, Span<int> weightsBps)
    {
        if (k < 0 || k > n || n < 1 || count < 1 || count > InputEvent.MaxEndpointsPerBank) throw new ArgumentOutOfRangeException(nameof(k));
        Span<int> remainders = stackalloc int[InputEvent.MaxEndpointsPerBank];
        long sum = 0;
        for (int i = 0; i < count; i++)
        {
            // Both weights are 0..10,000 and n <= 100: the numerator fits easily.
            long numerator = (long)fromBps[i] * (n - k) + (long)targetBps[i] * k;
            weightsBps[i] = (int)(numerator / n);
            remainders[i] = (int)(numerator % n);
            sum += weightsBps[i];
        }
        long missing = Routing.TotalWeightBps - sum;
        if (missing < 0 || missing >= count) throw new InvalidOperationException($"ramp: {missing} bps to distribute over {count} endpoints");
        for (; missing > 0; missing--)
        {
            int best = -1;
            for (int i = 0; i < count; i++)
            {
                if (remainders[i] > 0 && (best < 0 || remainders[i] > remainders[best]))
                {
                    best = i;
                }
            }
            weightsBps[best]++;
            remainders[best] = 0;
        }
    }
}
