using Switch.Grpc;

namespace Switch.Contracts.V1;

/// <summary>The institution API's methods, as the gateway serves them and clients call them.</summary>
public static class InstitutionMethods
{
    public const string Service = "switch.v1.InstitutionService";
    /// <summary>The metadata header that carries the institution's API key.</summary>
    public const string ApiKeyHeader = "x-api-key";

    public static readonly GrpcMethod<TransferRequest, TransferResult> AgreementPayment = Unary("AgreementPayment");
    public static readonly GrpcMethod<TransferRequest, TransferResult> Payout = Unary("Payout");
    public static readonly GrpcMethod<TransferRequest, TransferResult> Refund = Unary("Refund");
    public static readonly GrpcMethod<TransferRequest, TransferResult> Query = Unary("Query");
    public static readonly GrpcMethod<TransferRequest, TransferResult> Transact =
        new(MethodType.DuplexStreaming, Service, "Transact", TransferRequest.Parser, TransferResult.Parser);
    public static readonly GrpcMethod<OutcomesRequest, TransferResult> Outcomes =
        new(MethodType.ServerStreaming, Service, "Outcomes", OutcomesRequest.Parser, TransferResult.Parser);

    private static GrpcMethod<TransferRequest, TransferResult> Unary(string name) =>
        new(MethodType.Unary, Service, name, TransferRequest.Parser, TransferResult.Parser);
}

/// <summary>The bank endpoint API's methods, as a bank (or the simulator) serves them and the connector calls them.</summary>
public static class BankEndpointMethods
{
    public const string Service = "switch.v1.BankEndpoint";

    public static readonly GrpcMethod<BankRequest, BankResponse> Debit = Unary("Debit");
    public static readonly GrpcMethod<BankRequest, BankResponse> Credit = Unary("Credit");
    public static readonly GrpcMethod<BankRequest, BankResponse> Query = Unary("Query");
    public static readonly GrpcMethod<BankRequest, BankResponse> Reverse = Unary("Reverse");
    public static readonly GrpcMethod<BankRequest, BankResponse> Exchange =
        new(MethodType.DuplexStreaming, Service, "Exchange", BankRequest.Parser, BankResponse.Parser);

    private static GrpcMethod<BankRequest, BankResponse> Unary(string name) =>
        new(MethodType.Unary, Service, name, BankRequest.Parser, BankResponse.Parser);
}

/// <summary>The operator API's methods (admin.proto), served on the admin port only.</summary>
public static class AdminMethods
{
    public const string Service = "switch.v1.AdminService";
    /// <summary>The metadata header that carries the operator's key.</summary>
    public const string OperatorKeyHeader = "x-operator-key";

    public static readonly GrpcMethod<WhoAmIRequest, OperatorInfo> WhoAmI = Unary("WhoAmI", WhoAmIRequest.Parser, OperatorInfo.Parser);
    public static readonly GrpcMethod<ListBanksRequest, ListBanksReply> ListBanks = Unary("ListBanks", ListBanksRequest.Parser, ListBanksReply.Parser);
    public static readonly GrpcMethod<SetWeightsRequest, CommandReply> SetWeights = Unary("SetWeights", SetWeightsRequest.Parser, CommandReply.Parser);
    public static readonly GrpcMethod<SetEndpointStateRequest, CommandReply> SetEndpointState =
        Unary("SetEndpointState", SetEndpointStateRequest.Parser, CommandReply.Parser);
    public static readonly GrpcMethod<StatsRequest, StatsReply> GetStats = Unary("GetStats", StatsRequest.Parser, StatsReply.Parser);
    public static readonly GrpcMethod<StatsRequest, StatsReply> WatchStats =
        new(MethodType.ServerStreaming, Service, "WatchStats", StatsRequest.Parser, StatsReply.Parser);
    public static readonly GrpcMethod<HistoryRequest, HistoryReply> GetHistory = Unary("GetHistory", HistoryRequest.Parser, HistoryReply.Parser);
    public static readonly GrpcMethod<ListAlertsRequest, ListAlertsReply> ListAlerts = Unary("ListAlerts", ListAlertsRequest.Parser, ListAlertsReply.Parser);
    public static readonly GrpcMethod<AuditRequest, AuditReply> ListAudit = Unary("ListAudit", AuditRequest.Parser, AuditReply.Parser);
    public static readonly GrpcMethod<AuditRequest, AuditEntry> TailAudit =
        new(MethodType.ServerStreaming, Service, "TailAudit", AuditRequest.Parser, AuditEntry.Parser);
    public static readonly GrpcMethod<CloseBatchRequest, CloseBatchReply> CloseBatch = Unary("CloseBatch", CloseBatchRequest.Parser, CloseBatchReply.Parser);
    public static readonly GrpcMethod<TakeSnapshotRequest, TakeSnapshotReply> TakeSnapshot = Unary("TakeSnapshot", TakeSnapshotRequest.Parser, TakeSnapshotReply.Parser);
    public static readonly GrpcMethod<NodeStatusRequest, NodeStatus> GetNodeStatus = Unary("GetNodeStatus", NodeStatusRequest.Parser, NodeStatus.Parser);
    public static readonly GrpcMethod<ListBatchesRequest, ListBatchesReply> ListBatches = Unary("ListBatches", ListBatchesRequest.Parser, ListBatchesReply.Parser);
    public static readonly GrpcMethod<SettlementRequest, SettlementReply> GetSettlement = Unary("GetSettlement", SettlementRequest.Parser, SettlementReply.Parser);
    public static readonly GrpcMethod<MemberReportRequest, MemberReportReply> GetMemberReport =
        Unary("GetMemberReport", MemberReportRequest.Parser, MemberReportReply.Parser);
    public static readonly GrpcMethod<ExplainRequest, ExplainReply> ExplainOrder =
        Unary("ExplainOrder", ExplainRequest.Parser, ExplainReply.Parser);
    public static readonly GrpcMethod<RecordsChunk, BreakReportReply> SubmitRecords =
        new(MethodType.ClientStreaming, Service, "SubmitRecords", RecordsChunk.Parser, BreakReportReply.Parser);

    private static GrpcMethod<TRequest, TResponse> Unary<TRequest, TResponse>(string name,
        Google.Protobuf.MessageParser<TRequest> request, Google.Protobuf.MessageParser<TResponse> response)
        where TRequest : class, Google.Protobuf.IMessage<TRequest> where TResponse : class, Google.Protobuf.IMessage<TResponse> =>
        new(MethodType.Unary, Service, name, request, response);
}

/// <summary>Node to node (replication.proto): a standby follows the primary's journal, on the replication port.</summary>
public static class ReplicationMethods
{
    public const string Service = "switch.v1.Replication";

    public static readonly GrpcMethod<FollowerHello, HandshakeReply> Handshake =
        new(MethodType.Unary, Service, "Handshake", FollowerHello.Parser, HandshakeReply.Parser);
    public static readonly GrpcMethod<FollowerMessage, JournalBatch> Follow =
        new(MethodType.DuplexStreaming, Service, "Follow", FollowerMessage.Parser, JournalBatch.Parser);
}
