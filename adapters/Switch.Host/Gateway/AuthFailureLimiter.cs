namespace Switch.Host.Gateway;

/// <summary>
/// Limits failed authentications per source address with a token bucket per address: each missing or wrong key
/// takes a token; an address with no token left is refused before its key is even hashed, until the bucket
/// refills. Refused calls take nothing, so a persistent guesser gets exactly the refill rate of attempts.
/// <para>
/// Precisely: an address that is not tracked (it never failed, or its bucket refilled completely) is never
/// refused, and while no address at all is tracked the check costs one volatile read: no lock, no allocation.
/// A tracked address with tokens left is served normally. An address with no token left is refused even with
/// a correct key: the switch cannot tell a correct key without hashing it, and checking keys while refusing
/// would leave the guessing unthrottled. Success does not refill the bucket (one valid key must not
/// launder guesses at others).
/// </para>
/// The table is bounded: at most <c>maxAddresses</c> tracked, the least recently failing forgotten first; all
/// operations are O(1) (amortised for pruning of refilled entries).
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
    private readonly Func<long> _nowMs;
    private int _tracked;
    private long _failures;

    /// <param name="nowMs">A monotonic clock in milliseconds; tests pass a fake one.</param>
    public AuthFailureLimiter(int burst, int perMinute, int maxAddresses, Func<long>? nowMs = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxAddresses, 1);
        _ = TokenBucket.PerMinute(perMinute, burst, 0); // validates the rule once, up front
        _burst = burst;
        _perMinute = perMinute;
        _maxAddresses = maxAddresses;
        _nowMs = nowMs ?? (() => Environment.TickCount64);
        _byAddress = new Dictionary<string, LinkedListNode<Entry>>(Math.Min(maxAddresses, 1024), StringComparer.Ordinal);
    }

    public AuthFailureLimiter(GatewayLimits limits) : this(limits.AuthFailureBurst, limits.AuthFailuresPerMinute, limits.AuthTrackedAddresses)
    {
    }

    /// <summary>Addresses tracked now (each has failed and has not yet earned back its whole burst).</summary>
    public int Tracked => Volatile.Read(ref _tracked);

    /// <summary>Failures recorded since start (a metrics counter).</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>True when some address is tracked: only then is the caller's address worth formatting.</summary>
    public bool AnyTracked => Volatile.Read(ref _tracked) != 0;

    /// <summary>True when <paramref name="address"/> has no failure left; <paramref name="retryAfterS"/> says when it has.</summary>
    public bool IsRefused(string address, out long retryAfterS)
    {
        retryAfterS = 0;
        if (!AnyTracked) return false;
        long now = _nowMs();
        lock (_gate)
        {
            if (!_byAddress.TryGetValue(address, out LinkedListNode<Entry>? node)) return false;
            long waitMs = node.Value.Bucket.MsUntilToken(now);
            if (waitMs == 0)
            {
                if (node.Value.Bucket.IsFull(now)) Forget(node);
                return false;
            }
            retryAfterS = (waitMs + 999) / 1000;
            return true;
        }
    }

    /// <summary>Counts a missing or wrong key from <paramref name="address"/>.</summary>
    public void RecordFailure(string address)
    {
        long now = _nowMs();
        Interlocked.Increment(ref _failures);
        lock (_gate)
        {
            // Entries full again carry no information: drop them from the old end (each is dropped once).
            while (_byLastFailure.First is { } oldest && oldest.Value.Bucket.IsFull(now))
            {
                Forget(oldest);
            }
            if (_byAddress.TryGetValue(address, out LinkedListNode<Entry>? node))
            {
                _byLastFailure.Remove(node);
            }
            else
            {
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

    private sealed class Entry(string address, TokenBucket bucket)
    {
        public readonly string Address = address;
        public TokenBucket Bucket = bucket;
    }
}
