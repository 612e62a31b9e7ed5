using Google.Protobuf;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Server;

namespace Switch.Host.Admin;

/// <summary>A unary admin method as the JSON API calls it: parse the request, run it as the operator.</summary>
public sealed record JsonMethod(string RequestType, Func<string, IMessage> Parse, Func<IMessage, AuthenticatedOperator, CancellationToken, Task<IMessage>> Invoke);

/// <summary>
/// switch.v1.AdminService: every method mapped once onto gRPC (the admin gRPC port) and, for the unary ones, into
/// the JSON API table (POST /api/v1/{Method} on the admin HTTP port). Both authenticate the same way and call the
/// same implementation (<see cref="AdminOperations"/>, <see cref="ClearingOperations"/>).
/// </summary>
public sealed class AdminService
{
    private readonly OperatorAuthenticator _auth;
    private readonly AdminOperations _ops;
    private readonly ClearingOperations _clearing;
    private readonly MemberReports _members;
    private readonly OrderExplanations _explanations;
    private readonly SnapshotOperations _snapshots;
    private readonly NodeRole _role;
    private readonly Func<NodeStatusRequest, CancellationToken, Task<NodeStatus>> _nodeStatus;
    private readonly Dictionary<string, JsonMethod> _json = new(StringComparer.Ordinal);

    public AdminService(OperatorAuthenticator auth, AdminOperations ops, ClearingOperations clearing, MemberReports members,
        OrderExplanations explanations, SnapshotOperations snapshots, NodeRole role, Func<NodeStatusRequest, CancellationToken, Task<NodeStatus>> nodeStatus)
    {
        _role = role;
        _nodeStatus = nodeStatus;
        _snapshots = snapshots;
        _members = members;
        _explanations = explanations;
        _auth = auth;
        _ops = ops;
        _clearing = clearing;
    }

    public OperatorAuthenticator Authenticator => _auth;

    /// <summary>The unary methods by name, for the JSON API.</summary>
    public IReadOnlyDictionary<string, JsonMethod> JsonMethods => _json;

    public GrpcRouter Map(GrpcRouter router)
    {
        Unary(router, AdminMethods.WhoAmI, (_, op, _) => Task.FromResult(_ops.WhoAmI(op)), scoped: true);
        Unary(router, AdminMethods.GetMemberReport, (r, op, _) => Task.FromResult(_members.GetMemberReport(r, op)), scoped: true);
        Unary(router, AdminMethods.ExplainOrder, _explanations.ExplainAsync, scoped: true);
        Unary(router, AdminMethods.ListBanks, (r, _, _) => Task.FromResult(_ops.ListBanks(r)));
        Unary(router, AdminMethods.SetWeights, _ops.SetWeightsAsync);
        Unary(router, AdminMethods.SetEndpointState, _ops.SetEndpointStateAsync);
        Unary(router, AdminMethods.GetStats, (r, _, _) => Task.FromResult(_ops.GetStats(r)));
        Unary(router, AdminMethods.GetHistory, (r, _, _) => Task.FromResult(_ops.GetHistory(r)));
        Unary(router, AdminMethods.ListAlerts, (_, _, _) => Task.FromResult(_ops.ListAlerts()));
        Unary(router, AdminMethods.ListAudit, (r, _, _) => Task.FromResult(_ops.ListAudit(r)));
        Unary(router, AdminMethods.CloseBatch, (r, op, c) =>
        {
            op.RequireOperate("close batches");
            return _clearing.CloseBatchAsync(r, op.Id, c);
        });
        Unary(router, AdminMethods.TakeSnapshot, (_, op, c) => _snapshots.TakeAsync(op, c));
        Unary(router, AdminMethods.GetNodeStatus, (r, _, c) => _nodeStatus(r, c));
        Unary(router, AdminMethods.ListBatches, (r, _, _) => Task.FromResult(_clearing.ListBatches(r)));
        Unary(router, AdminMethods.GetSettlement, (r, _, _) => Task.FromResult(_clearing.GetSettlement(r)));
        router.MapClientStreaming(AdminMethods.SubmitRecords, async (requests, context) =>
        {
            Authenticate(context).RequireUnscoped(AdminMethods.SubmitRecords.Name);
            BreakReportReply? reply = null;
            // Streams end with NOT_PRIMARY when the node leaves office (unary calls under way finish).
            await _role.InOfficeAsync(context, RolePort.AdminGrpc, async cancel =>
                reply = await _clearing.SubmitRecordsAsync(requests.ReadAllAsync(cancel), cancel));
            return reply!;
        });
        router.MapServerStreaming(AdminMethods.WatchStats, WatchStatsAsync);
        router.MapServerStreaming(AdminMethods.TailAudit, TailAuditAsync);
        return router;
    }

    /// <summary>A standby's admin port: GetNodeStatus is the one method it serves (for `switchctl cluster`); the
    /// primary's comes with the rest in <see cref="Map"/>.</summary>
    public GrpcRouter MapNodeStatus(GrpcRouter router) =>
        router.MapUnary(AdminMethods.GetNodeStatus, async (request, context) =>
        {
            Authenticate(context).RequireUnscoped(AdminMethods.GetNodeStatus.Name);
            return await _nodeStatus(request, context.CancellationToken);
        });

    private AuthenticatedOperator Authenticate(ServerCallContext context) =>
        _auth.Authenticate(context.RequestHeaders.GetValue(AdminMethods.OperatorKeyHeader));

    private void Unary<TReq, TResp>(GrpcRouter router, GrpcMethod<TReq, TResp> method,
        Func<TReq, AuthenticatedOperator, CancellationToken, Task<TResp>> handler, bool scoped = false)
        where TReq : class, IMessage<TReq>, new() where TResp : class, IMessage<TResp>
    {
        if (!scoped)
        {
            // A bank's or institution's key reaches only the methods that limit what it sees to its own.
            Func<TReq, AuthenticatedOperator, CancellationToken, Task<TResp>> inner = handler;
            handler = (request, op, cancellation) =>
            {
                op.RequireUnscoped(method.Name);
                return inner(request, op, cancellation);
            };
        }
        router.MapUnary(method, async (request, context) =>
        {
            RoleState role = _role.Current; // a call that began just as the node left office
            if (!role.IsPrimary) throw role.Refusal(RolePort.AdminGrpc);
            return await handler(request, Authenticate(context), context.CancellationToken);
        });
        _json.Add(method.Name, new JsonMethod(typeof(TReq).Name, json => JsonParser.Default.Parse<TReq>(json), async (request, op, cancellation) => await handler((TReq)request, op, cancellation)));
    }

    private ValueTask WatchStatsAsync(StatsRequest request, ServerResponseStream<StatsReply> responses, ServerCallContext context)
    {
        Authenticate(context).RequireUnscoped(AdminMethods.WatchStats.Name);
        TimeSpan interval = AdminOperations.WatchInterval(request);
        return _role.InOfficeAsync(context, RolePort.AdminGrpc, cancel => WatchStatsAsync(request, interval, responses, cancel));
    }

    private async ValueTask WatchStatsAsync(StatsRequest request, TimeSpan interval, ServerResponseStream<StatsReply> responses, CancellationToken cancel)
    {
        using var timer = new PeriodicTimer(interval);
        do
        {
            await responses.WriteAndFlushAsync(_ops.GetStats(request), cancel);
        }
        while (await WaitAsync(timer, cancel));
    }

    /// <summary>The next tick of <paramref name="timer"/>; false once <paramref name="cancel"/> fires.</summary>
    internal static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken cancel)
    {
        try { return await timer.WaitForNextTickAsync(cancel); }
        catch (OperationCanceledException) { return false; } // the caller went away: the stream ends
    }

    private ValueTask TailAuditAsync(AuditRequest request, ServerResponseStream<AuditEntry> responses, ServerCallContext context)
    {
        Authenticate(context).RequireUnscoped(AdminMethods.TailAudit.Name);
        (int limit, string? bank) = _ops.CheckAudit(request);
        return _role.InOfficeAsync(context, RolePort.AdminGrpc, cancel => TailAuditAsync(request.AfterAuditNo, limit, bank, responses, cancel));
    }

    private async ValueTask TailAuditAsync(long after, int limit, string? bank, ServerResponseStream<AuditEntry> responses, CancellationToken cancel)
    {
        AuditLog audit = _ops.Audit;
        try
        {
            while (!cancel.IsCancellationRequested)
            {
                Task changed = audit.Changed();
                List<AuditEntry> entries = audit.Entries(after, limit, bank);
                foreach (AuditEntry entry in entries)
                {
                    await responses.WriteAsync(entry, cancel);
                    after = entry.AuditNo;
                }
                if (entries.Count > 0)
                {
                    await responses.FlushAsync(cancel);
                    if (entries.Count == limit) continue; // more may be waiting
                }
                await changed.WaitAsync(cancel);
            }
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            // the caller cancelled: the stream ends normally
        }
    }
}
