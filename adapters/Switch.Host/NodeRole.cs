using Switch.Grpc;
using Switch.Grpc.Server;

namespace Switch.Host;

/// <summary>Where the primary can be reached, as a standby names it in its refusals; any part may be unknown (null).</summary>
/// <param name="Institution">Its institution port (what x-switch-primary names).</param>
/// <param name="AdminGrpc">Its admin gRPC port (x-switch-primary-admin on admin gRPC refusals).</param>
/// <param name="AdminHttp">Its admin HTTP port (x-switch-primary-admin on JSON API refusals).</param>
public sealed record PrimaryAddresses(Uri? Institution, Uri? AdminGrpc, Uri? AdminHttp);

/// <summary>The three client-facing ports, each of which names the primary's port of its own kind.</summary>
public enum RolePort { Institution, AdminGrpc, AdminHttp }

/// <summary>
/// One role, immutable: primary, or standby with the primary's addresses if known. A primary's <see cref="Office"/>
/// is canceled when it leaves office, which ends its open streams.
/// </summary>
public sealed class RoleState
{
    public const string NotPrimaryCode = "NOT_PRIMARY";
    /// <summary>Names the primary's institution address on an institution call's refusal.</summary>
    public const string PrimaryTrailer = "x-switch-primary";
    /// <summary>Names the primary's admin address of the same kind (gRPC or HTTP) on an operator call's refusal.</summary>
    public const string PrimaryAdminTrailer = "x-switch-primary-admin";

    private static readonly CancellationToken NotInOffice = new(canceled: true);

    private RoleState(bool isPrimary, PrimaryAddresses? primary, CancellationToken office)
    {
        IsPrimary = isPrimary;
        Primary = primary;
        Office = office;
    }

    internal static RoleState InOffice(CancellationToken office) => new(true, null, office);

    internal static RoleState Standby(PrimaryAddresses? primary) => new(false, primary, NotInOffice);

    public bool IsPrimary { get; }

    /// <summary>Null on a primary, or on a standby that does not know the primary (an election under way).</summary>
    public PrimaryAddresses? Primary { get; }

    /// <summary>Canceled once this node is no longer the primary (already canceled on a standby).</summary>
    public CancellationToken Office { get; }

    /// <summary>The primary's address a refusal on <paramref name="port"/> names, or null when unknown.</summary>
    public Uri? PrimaryFor(RolePort port) => port switch
    {
        RolePort.Institution => Primary?.Institution,
        RolePort.AdminGrpc => Primary?.AdminGrpc,
        _ => Primary?.AdminHttp,
    };

    /// <summary>The trailer (gRPC) or header (HTTP) that names the primary on <paramref name="port"/>.</summary>
    public static string TrailerFor(RolePort port) => port == RolePort.Institution ? PrimaryTrailer : PrimaryAdminTrailer;

    /// <summary>"NOT_PRIMARY: this node is a standby; the primary is ..." (the refusal's message on every port).</summary>
    public string RefusalMessage(RolePort port) => PrimaryFor(port) is { } address
        ? $"{NotPrimaryCode}: this node is a standby; the primary is {Address(address)}"
        : $"{NotPrimaryCode}: this node is a standby; the primary is unknown (election under way)";

    /// <summary>The trailers of a refusal on <paramref name="port"/>: the primary's address, or none when unknown.</summary>
    public Metadata RefusalTrailers(RolePort port)
    {
        var trailers = new Metadata();
        if (PrimaryFor(port) is { } address) trailers.Add(TrailerFor(port), Address(address));
        return trailers;
    }

    /// <summary>UNAVAILABLE (clients retry it elsewhere) with the message and trailers of <paramref name="port"/>.</summary>
    public RpcException Refusal(RolePort port) => new(StatusCode.Unavailable, RefusalMessage(port), RefusalTrailers(port));

    /// <summary>"http://10.0.0.2:7001": scheme, host and port, as a client passes it back (no trailing slash).</summary>
    public static string Address(Uri address) => address.GetLeftPart(UriPartial.Authority);
}

/// <summary>
/// The node's role, the seam the leadership (etcd) drives: primary (the default, a single node's only role) or standby.
/// Changes are applied in order under one lock: every observer sees them in the order they were made; a primary's
/// <see cref="RoleState.Office"/> is canceled after the observers ran, so a stream it ends finds the new role's refusal.
/// Reading the role is one volatile read.
/// </summary>
public sealed class NodeRole
{
    private readonly object _lock = new();
    private readonly List<Action<RoleState>> _observers = new();
    private CancellationTokenSource? _office;
    private volatile RoleState _current;

    /// <summary>A node that starts as the primary (as a single switch always is).</summary>
    public NodeRole()
    {
        _office = new CancellationTokenSource();
        _current = RoleState.InOffice(_office.Token);
    }

    /// <summary>A node that starts as a standby (the primary's addresses if known).</summary>
    public static NodeRole StartingAsStandby(PrimaryAddresses? primary)
    {
        var role = new NodeRole();
        role.BecomeStandby(primary);
        return role;
    }

    public RoleState Current => _current;

    public bool IsPrimary => _current.IsPrimary;

    /// <summary>Takes office: the ports serve every method from now on.</summary>
    public void BecomePrimary()
    {
        lock (_lock)
        {
            if (_current.IsPrimary) return;
            _office = new CancellationTokenSource();
            Publish(RoleState.InOffice(_office.Token));
        }
    }

    /// <summary>
    /// Leaves office (or names another primary): new calls are refused NOT_PRIMARY, open streams end with it. Called
    /// again on a standby it only changes the primary named.
    /// </summary>
    public void BecomeStandby(PrimaryAddresses? primary)
    {
        lock (_lock)
        {
            if (!_current.IsPrimary && Equals(_current.Primary, primary)) return; // no change: observers hear only changes
            CancellationTokenSource? leaving = _office;
            _office = null;
            Publish(RoleState.Standby(primary));
            if (leaving is null) return;
            leaving.Cancel(); // after the observers: the streams it ends read the new role's refusal
            leaving.Dispose();
        }
    }

    /// <summary>Calls <paramref name="observer"/> with the role now and after every change, in order (under the role's lock:
    /// keep it short), until the returned handle is disposed.</summary>
    public IDisposable Observe(Action<RoleState> observer)
    {
        lock (_lock)
        {
            _observers.Add(observer);
            observer(_current);
        }
        return new Observation(this, observer);
    }

    private sealed class Observation(NodeRole role, Action<RoleState> observer) : IDisposable
    {
        public void Dispose()
        {
            lock (role._lock) role._observers.Remove(observer);
        }
    }

    private void Publish(RoleState next)
    {
        _current = next;
        foreach (Action<RoleState> observer in _observers) observer(next);
    }

    /// <summary>
    /// Runs a streaming call's body while this node holds office: refused at once on a standby, and ended with NOT_PRIMARY
    /// (whatever the body was doing) when the node leaves office while the caller is still there. The body runs on a
    /// token canceled by either the call's end or the office's.
    /// </summary>
    public async ValueTask InOfficeAsync(ServerCallContext context, RolePort port, Func<CancellationToken, ValueTask> body)
    {
        RoleState held = _current;
        if (!held.IsPrimary) throw held.Refusal(port);
        using var both = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, held.Office);
        try
        {
            await body(both.Token);
        }
        catch (Exception) when (LeftOffice(held, context))
        {
        }
        if (LeftOffice(held, context)) throw _current.Refusal(port);
    }

    private static bool LeftOffice(RoleState held, ServerCallContext context) =>
        held.Office.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested;
}
