using System.Collections.Concurrent;

namespace Switch.Host.Gateway;

/// <summary>
/// Which institution each connection of the institution port belongs to: the first institution that
/// authenticates a call on it. Counts each institution's connections under its cap (<see cref="InstitutionLimiter"/>)
/// and gives the place back when the connection closes. Connections nobody authenticated on are not here: Kestrel's
/// global connection limit bounds them. The map holds at most that many entries.
/// </summary>
public sealed class InstitutionConnections(InstitutionLimiter limiter)
{
    private readonly ConcurrentDictionary<string, int> _owners = new(StringComparer.Ordinal);

    /// <summary>
    /// Held while a connection not yet in the map is counted and added: the look and the count are one step. Taken only
    /// by a connection's first calls (and by the calls of one refused at its cap), never by the usual call.
    /// </summary>
    private readonly Lock _attributing = new();

    /// <summary>The limiter the connections are counted in.</summary>
    public InstitutionLimiter Limiter => limiter;

    /// <summary>Connections attributed now, all institutions together.</summary>
    public int Count => _owners.Count;

    /// <summary>
    /// True when the call's connection is (now) attributed; false when it is new and the institution already has
    /// its cap of connections: the call is then refused, and the connection stays unattributed. A connection that
    /// belongs to one institution carries another's calls without counting again.
    /// </summary>
    public bool TryAttribute(string connectionId, CancellationToken connectionClosed, int institution)
    {
        if (connectionId.Length == 0 || _owners.ContainsKey(connectionId)) return true; // the usual call: one look-up
        lock (_attributing)
        {
            // Several first calls on one new connection come at once (HTTP/2 carries a burst on one): each looked before
            // any had added it, and each took a place of the cap, so calls were refused CONNECTION_LIMIT with fewer
            // connections open than the cap. Under the lock the first counts it and the others find it here.
            if (_owners.ContainsKey(connectionId)) return true;
            if (!limiter.TryOpenConnection(institution)) return false;
            if (!_owners.TryAdd(connectionId, institution))
            {
                limiter.CloseConnection(institution);
                throw new InvalidOperationException("institution connections: a connection was added outside the lock");
            }
        }
        // Runs at once if the connection has already closed. Registered by the one call that counted the connection.
        connectionClosed.Register(() =>
        {
            if (_owners.TryRemove(connectionId, out int owner)) limiter.CloseConnection(owner);
        });
        return true;
    }
}
