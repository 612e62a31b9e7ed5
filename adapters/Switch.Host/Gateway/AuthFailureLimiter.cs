namespace Switch.Host.Gateway;

/// <summary>What the authenticator may do with a call from an address, before it looks at the key.</summary>
public enum AuthAdmission
{
    /// <summary>The address has failures left in its budget: a wrong key is answered at once.</summary>
    Free,
    /// <summary>Past its budget, a tarpit place is held: a wrong key is answered only after the delay.</summary>
    Tarpit,
    /// <summary>Past its budget with every tarpit place taken: refused before the key is looked at.</summary>
    Refused,
}

/// <summary>
/// Keeps guessing API keys slow without refusing a correct key because of someone else's failures (several
/// clients may share a source address behind a NAT). The key is always checked (a SHA-256 digest compared in
/// constant time: cheap) and a correct one is accepted. Each address has a budget of failures (a token bucket:
/// a burst, then so many a minute); a wrong key within the budget is answered at once, so a misconfigured client
/// learns quickly. Past the budget a wrong key is answered only after <c>delayMs</c> (a tarpit), and at most
/// <c>maxDelayed</c> such answers may be pending per address; a call arriving while all are pending is refused
/// before its key is looked at, so the refusal tells nothing about the key. Guesses an address can have judged
/// are thus at most its budget plus <c>maxDelayed × 1000 / delayMs</c> a second, however many calls it sends.
/// <para>
/// A correct key can be refused only while its address has <c>maxDelayed</c> wrong keys pending at once: a
/// flood of concurrent guesses, not a client retrying a stale key (which waits for each answer).
/// </para>
/// While no address is tracked the check costs one volatile read: no lock, no allocation. The table is bounded:
/// at most <c>maxAddresses</c> tracked, the least recently failing forgotten first; O(1) operations (amortised
/// for pruning of refilled entries).
/// </summary>
public sealed class AuthFailureLimiter
{
    private readonly object _gate = new();
    private readonly Dictionary<string, LinkedListNode<Entry>> _byAddress;
    /// <summary>Least recently failing first: with one rule for all, also the first to be full again.</summary>
    private readonly LinkedList<Entry> _byLastFailure = new();
    private readonly int _burst;
    private readonly int _perMinute;
    private readonly int _maxAddresses;
    private readonly int _maxDelayed;
    private readonly Func<long> _nowMs;
    private int _tracked;
    private long _failures;

    /// <param name="delayMs">How long a wrong key past the budget waits for its answer.</param>
    /// <param name="maxDelayed">Wrong-key answers that may wait at once per address.</param>
    /// <param name="nowMs">A monotonic clock in milliseconds; tests pass a fake one.</param>
    public AuthFailureLimiter(int burst, int perMinute, int maxAddresses, int delayMs = 1_000, int maxDelayed = 32, Func<long>? nowMs = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxAddresses, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(delayMs, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDelayed, 1);
        _ = TokenBucket.PerMinute(perMinute, burst, 0); // validates the rule once, up front
        _burst = burst;
        _perMinute = perMinute;
        _maxAddresses = maxAddresses;
        DelayMs = delayMs;
        _maxDelayed = maxDelayed;
        _nowMs = nowMs ?? (() => Environment.TickCount64);
        _byAddress = new Dictionary<string, LinkedListNode<Entry>>(Math.Min(maxAddresses, 1024), StringComparer.Ordinal);
    }

    public AuthFailureLimiter(GatewayLimits limits) : this(limits.AuthFailureBurst, limits.AuthFailuresPerMinute, limits.AuthTrackedAddresses,
        limits.AuthFailureDelayMs, limits.AuthDelayedPerAddress)
    {
    }

    /// <summary>How long a wrong key past its address's budget waits for its answer.</summary>
    public int DelayMs { get; }

    public int MaxDelayed => _maxDelayed;

    /// <summary>Addresses tracked now (each has failed and has not yet earned back its whole burst).</summary>
    public int Tracked => Volatile.Read(ref _tracked);

    /// <summary>Failures recorded since start (a metrics counter).</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>True when some address is tracked: only then is the caller's address worth formatting.</summary>
    public bool AnyTracked => Volatile.Read(ref _tracked) != 0;

    /// <summary>Wrong-key answers of <paramref name="address"/> waiting now.</summary>
    public int Delayed(string address)
    {
        lock (_gate) return _byAddress.TryGetValue(address, out LinkedListNode<Entry>? node) ? node.Value.Delayed : 0;
    }

    /// <summary>
    /// Before the key is checked: <see cref="AuthAdmission.Tarpit"/> holds a place in the address's tarpit (give it
    /// back with <see cref="Leave"/> once the call is answered, whatever its key).
    /// </summary>
    public AuthAdmission Admit(string address, out Entry? held)
    {
        held = null;
        if (!AnyTracked) return AuthAdmission.Free;
        long now = _nowMs();
        lock (_gate)
        {
            if (!_byAddress.TryGetValue(address, out LinkedListNode<Entry>? node)) return AuthAdmission.Free;
            Entry entry = node.Value;
            if (entry.Bucket.MsUntilToken(now) == 0)
            {
                if (entry.Delayed == 0 && entry.Bucket.IsFull(now)) Forget(node);
                return AuthAdmission.Free;
            }
            if (entry.Delayed >= _maxDelayed) return AuthAdmission.Refused;
            entry.Delayed++;
            held = entry;
            return AuthAdmission.Tarpit;
        }
    }

    /// <summary>Gives back a tarpit place taken by <see cref="Admit"/>.</summary>
    public void Leave(Entry held)
    {
        lock (_gate)
        {
            if (held.Delayed <= 0) throw new InvalidOperationException("auth failure limiter: left a tarpit place never taken");
            held.Delayed--;
        }
    }

    /// <summary>Counts a missing or wrong key from <paramref name="address"/>.</summary>
    public void RecordFailure(string address)
    {
        long now = _nowMs();
        Interlocked.Increment(ref _failures);
        lock (_gate)
        {
            // Entries full again (and with nobody waiting) carry no information: drop them from the old end.
            while (_byLastFailure.First is { } oldest && oldest.Value.Delayed == 0 && oldest.Value.Bucket.IsFull(now))
            {
                Forget(oldest);
            }
            if (_byAddress.TryGetValue(address, out LinkedListNode<Entry>? node))
            {
                _byLastFailure.Remove(node);
            }
            else
            {
                // A forgotten entry's waiting calls still give their places back to it (Leave holds the entry).
                if (_byAddress.Count >= _maxAddresses) Forget(_byLastFailure.First!);
                node = new LinkedListNode<Entry>(new Entry(address, TokenBucket.PerMinute(_perMinute, _burst, now)));
                _byAddress.Add(address, node);
            }
            _byLastFailure.AddLast(node);
            _ = node.Value.Bucket.TryTake(now); // an empty bucket stays empty: the failure is still the latest
            Volatile.Write(ref _tracked, _byAddress.Count);
        }
    }

    private void Forget(LinkedListNode<Entry> node)
    {
        _byLastFailure.Remove(node);
        _byAddress.Remove(node.Value.Address);
        Volatile.Write(ref _tracked, _byAddress.Count);
    }

    /// <summary>
    /// The source address of a peer as formatted by the gRPC layer ("ipv4:10.0.0.1:5000", "ipv6:[::1]:5000"):
    /// the port is dropped, since every connection of one client has its own.
    /// </summary>
    public static string SourceAddress(string peer)
    {
        int close = peer.LastIndexOf(']');
        if (close >= 0) return peer[..(close + 1)];
        int colon = peer.LastIndexOf(':');
        return colon > 0 && peer.IndexOf(':') < colon ? peer[..colon] : peer;
    }

    /// <summary>One failing address: its failure budget and its wrong-key answers waiting (guarded by the limiter's lock).</summary>
    public sealed class Entry
    {
        internal Entry(string address, TokenBucket bucket)
        {
            Address = address;
            Bucket = bucket;
        }

        internal readonly string Address;
        internal TokenBucket Bucket;
        internal int Delayed;
    }
}
