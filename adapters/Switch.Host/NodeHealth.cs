using Switch.Contracts.V1;
using Switch.Grpc.Health;
using ServingStatus = Switch.Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace Switch.Host;

/// <summary>Where the switch process is in its life, as its health answers tell it.</summary>
public enum NodeState
{
    /// <summary>Listening, the journal being replayed: nothing is served but health, reflection and /healthz.</summary>
    Recovering,
    /// <summary>The engine runs and every API is served.</summary>
    Serving,
    /// <summary>The engine runs as a standby: calls are refused NOT_PRIMARY (health NOT_SERVING, so load balancers skip it).</summary>
    Standby,
    /// <summary>Stopping: no new calls; in-flight work finishing.</summary>
    Stopping,
    /// <summary>The engine stopped on a fault: it accepts nothing more.</summary>
    Faulted,
}

/// <summary>
/// The one serving state of the process, shown on every port: grpc.health.v1.Health on the institution and admin gRPC
/// ports (SERVING only in <see cref="NodeState.Serving"/>) and /readyz on the admin HTTP port. A state once left for
/// Stopping or Faulted is never re-entered; Serving and Standby alternate as the node's role changes.
/// </summary>
public sealed class NodeHealth
{
    private readonly object _lock = new();
    private NodeState _state = NodeState.Recovering;

    public HealthService Institution { get; } = new([InstitutionMethods.Service]);
    public HealthService Admin { get; } = new([AdminMethods.Service]);

    public NodeState State
    {
        get { lock (_lock) return _state; }
    }

    public bool Serving => State == NodeState.Serving;

    /// <summary>"serving", "recovering", ...: what /readyz says.</summary>
    public string StateName => State.ToString().ToLowerInvariant();

    public void MarkServing() => Move(NodeState.Serving);

    /// <summary>Running, but not the primary (and back to Serving when it takes office).</summary>
    public void MarkStandby() => Move(NodeState.Standby);

    public void MarkFaulted() => Move(NodeState.Faulted);

    /// <summary>NOT_SERVING everywhere, and the Watch streams end so the ports can close without waiting for them.</summary>
    public void MarkStopping()
    {
        Move(NodeState.Stopping);
        Institution.Close();
        Admin.Close();
    }

    private void Move(NodeState next)
    {
        lock (_lock)
        {
            if (_state is NodeState.Stopping or NodeState.Faulted) return; // terminal
            _state = next;
            // Under the lock: two moves racing must leave the boards agreeing with the state.
            ServingStatus status = next == NodeState.Serving ? ServingStatus.Serving : ServingStatus.NotServing;
            Institution.SetAll(status);
            Admin.SetAll(status);
        }
    }
}
