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
