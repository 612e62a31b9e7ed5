namespace Switch.Engine.Replication;

/// <summary>When an event counts as durable on a primary that streams its journal to a standby.</summary>
public enum ReplicationMode
{
    /// <summary>Committed locally and acknowledged durable by the standby before the logic sees it: nothing it causes
    /// (an answer, a bank request) leaves the primary before then. RPO 0.</summary>
    Synchronous,
    /// <summary>Committed locally; the standby follows as fast as it can, its lag measured. Never waits.</summary>
    Asynchronous,
}

/// <summary>Synchronous mode with no standby acknowledging.</summary>
public enum StandbyLossPolicy
{
    /// <summary>Wait for one: the switch stops acknowledging (an alert says so after <see cref="ReplicationOptions.StandbyAckTimeoutMs"/>).</summary>
    Wait,
    /// <summary>After <see cref="ReplicationOptions.StandbyAckTimeoutMs"/> run as asynchronous (an alert says so) until a
    /// standby has caught up again (within <see cref="ReplicationOptions.ResyncLagRecords"/>).</summary>
    Degrade,
}

public sealed record ReplicationOptions
{
    public ReplicationMode Mode { get; init; } = ReplicationMode.Synchronous;
    /// <summary>How long a batch waits for the standby's acknowledgement before the policy acts (and the alert).</summary>
    public int StandbyAckTimeoutMs { get; init; } = 2_000;
    public StandbyLossPolicy OnStandbyLost { get; init; } = StandbyLossPolicy.Wait;
    /// <summary>Most bytes of journal frames in one batch read for the standby (a single larger record goes alone).</summary>
    public int MaxBatchBytes { get; init; } = 1 << 20;
    /// <summary>Degraded: synchronous again once the standby's acknowledgements are within this many records of the
    /// journal (behind it the next batches wait for it, bounded by the timeout again).</summary>
    public int ResyncLagRecords { get; init; } = 4096;
    /// <summary>Told of each change a host must log as an alert (stalled, degraded, synchronous again, fenced), on the
    /// thread that saw it (the replication gate's): must not block.</summary>
    public Action<ReplicationAlert>? OnAlert { get; init; }
    /// <summary>Policy Degrade: asked on the gate's thread before it degrades (it may block, briefly); false keeps the
    /// switch waiting as under policy Wait. A cluster's host says in etcd, first, that the standby is no longer in sync.</summary>
    public Func<bool>? MayDegrade { get; init; }
    /// <summary>Read by the gate before each batch passes (and while it waits): false once this node may no longer act
    /// as the primary (its leadership lease may have expired); the gate then fences. Cheap: a clock read.</summary>
    public Func<bool>? MayAct { get; init; }

    public void Validate()
    {
        Require(Enum.IsDefined(Mode), nameof(Mode), "Synchronous or Asynchronous");
        Require(Enum.IsDefined(OnStandbyLost), nameof(OnStandbyLost), "Wait or Degrade");
        Require(StandbyAckTimeoutMs is >= 1 and <= 600_000, nameof(StandbyAckTimeoutMs), "1 to 600000");
        Require(MaxBatchBytes is >= 4096 and <= 64 << 20, nameof(MaxBatchBytes), "4096 to 67108864");
        Require(ResyncLagRecords is >= 0 and <= 1 << 24, nameof(ResyncLagRecords), "0 to 16777216");
    }

    private static void Require(bool ok, string field, string why)
    {
        if (!ok) throw new ArgumentException($"replication options: {field}: {why}");
    }
}

public enum ReplicationAlertKind
{
    /// <summary>Synchronous, waiting: no acknowledgement for the timeout; the switch acknowledges nothing until one comes.</summary>
    StandbyStalled,
    /// <summary>Synchronous, waiting: acknowledgements came back after a stall.</summary>
    StandbyResumed,
    /// <summary>Synchronous, degrading: no acknowledgement for the timeout; running as asynchronous.</summary>
    Degraded,
    /// <summary>Degraded: the standby caught up; synchronous again.</summary>
    Resynchronised,
    /// <summary>Fenced: nothing more passes (the leadership can no longer be trusted).</summary>
    Fenced,
}

/// <summary>A replication change the host logs as an alert. <paramref name="AcknowledgedRecords"/>: the standby's
/// durable count then; <paramref name="JournalRecords"/>: the primary's.</summary>
public sealed record ReplicationAlert(ReplicationAlertKind Kind, long AcknowledgedRecords, long JournalRecords, string Message);

/// <summary>What is in effect now.</summary>
public enum ReplicationState
{
    Synchronous,
    Asynchronous,
    /// <summary>Synchronous configured, running as asynchronous after the standby was lost (policy Degrade).</summary>
    Degraded,
    /// <summary>Synchronous, waiting for the standby past the timeout (policy Wait): nothing is acknowledged.</summary>
    Stalled,
    Fenced,
}

/// <summary>Replication figures for metrics. <paramref name="LagRecords"/>: journal records durable here and not yet
/// acknowledged by the standby; <paramref name="LagUs"/>: how long the oldest of them has been waiting (0 with none).</summary>
public readonly record struct ReplicationStatus(ReplicationMode Mode, ReplicationState State, long JournalRecords,
    long AcknowledgedRecords, long LagRecords, long LagUs);
