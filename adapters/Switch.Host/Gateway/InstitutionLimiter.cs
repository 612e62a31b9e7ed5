namespace Switch.Host.Gateway;

/// <summary>Why a request was or was not admitted.</summary>
public enum Admission
{
    Admitted,
    RateLimited,
    InFlightFull,
}

/// <summary>
/// Per-institution fair use: a token bucket on requests per second (with a burst), a cap on requests accepted
/// and not yet answered, and counts of open streams and connections under their caps. Each institution has its own lock, so one at its limit never waits on another.
/// Allocation-free.
/// </summary>
public sealed class InstitutionLimiter
{
    private readonly Slot[] _slots;
    private readonly Func<long> _nowMs;

    /// <param name="nowMs">A monotonic clock in milliseconds; tests pass a fake one.</param>
    public InstitutionLimiter(int institutions, GatewayLimits limits, Func<long>? nowMs = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(institutions, 0);
        Limits = limits.Validated();
        _nowMs = nowMs ?? (() => Environment.TickCount64);
        long now = _nowMs();
        _slots = new Slot[institutions];
        for (int i = 0; i < institutions; i++)
        {
            _slots[i] = new Slot { Bucket = TokenBucket.PerSecond(limits.RequestsPerSecond, limits.BurstRequests, now) };
        }
    }

    public GatewayLimits Limits { get; }

    public int InFlight(int institution) => Volatile.Read(ref _slots[institution].InFlight);

    /// <summary>
    /// Takes a rate token and, when <paramref name="holdsInFlight"/>, an in-flight place (give it back with
    /// <see cref="Release"/> once answered). Nothing is taken unless the request is admitted.
    /// </summary>
    public Admission TryAdmit(int institution, bool holdsInFlight = true)
    {
        if (holdsInFlight) return TryAdmit(institution, 1, out _);
        Slot slot = _slots[institution];
        long now = _nowMs();
        lock (slot)
        {
            return slot.Bucket.TryTake(now) ? Admission.Admitted : Admission.RateLimited;
        }
    }

    /// <summary>
    /// Admits as many of <paramref name="wanted"/> requests that hold in-flight places as the limits allow now, in one
    /// look (a stream's message of many requests: one lock and one clock read instead of one each); <paramref name="admitted"/>
    /// is how many (1 to <paramref name="wanted"/> when admitted, else 0). Give each back with <see cref="Release(int, int)"/>.
    /// </summary>
    public Admission TryAdmit(int institution, int wanted, out int admitted)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(wanted, 1);
        Slot slot = _slots[institution];
        long now = _nowMs();
        admitted = 0;
        lock (slot)
        {
            int room = Limits.MaxInFlight - slot.InFlight;
            if (room <= 0) return Admission.InFlightFull;
            int taken = slot.Bucket.TryTake(now, Math.Min(wanted, room));
            if (taken == 0) return Admission.RateLimited;
            slot.InFlight += taken;
            admitted = taken;
            return Admission.Admitted;
        }
    }

    public void Release(int institution) => Release(institution, 1);

    /// <summary>Gives back <paramref name="count"/> in-flight places at once.</summary>
    public void Release(int institution, int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        Slot slot = _slots[institution];
        lock (slot)
        {
            if (slot.InFlight < count) throw new InvalidOperationException("institution limiter: released more than admitted");
            slot.InFlight -= count;
        }
    }

    public int OpenStreams(int institution) => Volatile.Read(ref _slots[institution].Streams);

    /// <summary>Answers queued on the institution's streams for their writers (not yet handed to the transport).</summary>
    public int QueuedAnswers(int institution) => Volatile.Read(ref _slots[institution].QueuedAnswers);

    /// <summary>Counts answers queued (positive) or taken or dropped (negative); lock-free, called per answer.</summary>
    public void CountQueued(int institution, int delta) => Interlocked.Add(ref _slots[institution].QueuedAnswers, delta);

    public int OpenConnections(int institution) => Volatile.Read(ref _slots[institution].Connections);

    /// <summary>Counts one more open stream of the institution unless it is at MaxStreamsPerInstitution; <see cref="CloseStream"/> at its end.</summary>
    public bool TryOpenStream(int institution) => TryCount(ref _slots[institution].Streams, _slots[institution], Limits.MaxStreamsPerInstitution);

    public void CloseStream(int institution) => Uncount(ref _slots[institution].Streams, _slots[institution]);

    /// <summary>Counts one more connection of the institution unless it is at MaxConnectionsPerInstitution; <see cref="CloseConnection"/> when it closes.</summary>
    public bool TryOpenConnection(int institution) => TryCount(ref _slots[institution].Connections, _slots[institution], Limits.MaxConnectionsPerInstitution);

    public void CloseConnection(int institution) => Uncount(ref _slots[institution].Connections, _slots[institution]);

    private static bool TryCount(ref int count, Slot slot, int max)
    {
        lock (slot)
        {
            if (count >= max) return false;
            count++;
            return true;
        }
    }

    private static void Uncount(ref int count, Slot slot)
    {
        lock (slot)
        {
            if (count <= 0) throw new InvalidOperationException("institution limiter: closed more than opened");
            count--;
        }
    }

    /// <summary>Milliseconds until the institution's next rate token.</summary>
    public long MsUntilToken(int institution)
    {
        Slot slot = _slots[institution];
        long now = _nowMs();
        lock (slot) return slot.Bucket.MsUntilToken(now);
    }

    /// <summary>The status message for a refusal: which limit, and what to do.</summary>
    public string Describe(Admission refusal, int institution) => refusal switch
    {
        Admission.RateLimited =>
            $"institution rate limit of {Limits.RequestsPerSecond} requests/s (burst {Limits.BurstRequests}) reached; retry after {Math.Max(1, MsUntilToken(institution))} ms",
        Admission.InFlightFull =>
            $"institution in-flight limit of {Limits.MaxInFlight} unanswered requests reached; wait for answers before sending more",
        _ => throw new ArgumentOutOfRangeException(nameof(refusal)),
    };

    private sealed class Slot
    {
        public TokenBucket Bucket;
        public int InFlight;
        public int Streams;
        public int Connections;
        public int QueuedAnswers;
    }
}
