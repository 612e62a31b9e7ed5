using Switch.Contracts.V1;
using Switch.Engine.Pipeline;
using Switch.Engine.Snapshots;
using Switch.Grpc;

namespace Switch.Host.Admin;

/// <summary>The operator's snapshot command (TakeSnapshot): asks the engine for one now and answers once it is published.</summary>
public sealed class SnapshotOperations(SwitchEngine engine)
{
    public async Task<TakeSnapshotReply> TakeAsync(AuthenticatedOperator op, CancellationToken cancellation)
    {
        op.RequireOperate("take snapshots");
        SnapshotResult result;
        try
        {
            result = await engine.RequestSnapshotAsync("operator").WaitAsync(cancellation);
        }
        catch (InvalidOperationException e) when (e.Message.StartsWith("SNAPSHOTS_DISABLED", StringComparison.Ordinal))
        {
            throw new RpcException(StatusCode.FailedPrecondition, e.Message);
        }
        catch (InvalidOperationException e) when (e.Message.StartsWith("SNAPSHOT_NOT_RUNNING", StringComparison.Ordinal))
        {
            throw new RpcException(StatusCode.Unavailable, e.Message);
        }
        catch (Exception e) when (e is not OperationCanceledException and not RpcException)
        {
            throw new RpcException(StatusCode.Internal, $"SNAPSHOT_FAILED: {e.Message}");
        }
        return new TakeSnapshotReply
        {
            Position = result.Position.RecordNo,
            Events = result.Position.EventsApplied,
            File = Path.GetFileName(result.Path),
            Bytes = result.Bytes,
            PauseUs = result.PauseUs,
            WriteMs = result.WriteMs,
            ArchiveCheckpointMs = result.ArchiveCheckpointMs,
            ViewsMs = result.ViewsMs,
            PacedMs = result.PacedMs,
            PagesCopiedAside = result.PagesCopiedAside,
            AsideAllocatedPages = result.PagesAllocatedAside,
            AsideAllocatedBytes = result.BytesAllocatedAside,
            ArchiveFoldOverBytes = result.ArchiveFoldOverBytes,
        };
    }
}

/// <summary>The last snapshot this process published and when (wall clock, for its age in /metrics and the dashboard).</summary>
public sealed class SnapshotStatus
{
    public void Published(SnapshotResult result, long atUnixUs) => Volatile.Write(ref _boxed, new Box(result, atUnixUs));

    private Box? _boxed;
    private sealed record Box(SnapshotResult Result, long AtUnixUs);

    /// <summary>Null until this process has published one.</summary>
    public (SnapshotResult Result, long AtUnixUs)? Last => Volatile.Read(ref _boxed) is { } b ? (b.Result, b.AtUnixUs) : null;
}
