using System.Net.Http.Headers;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Configuration;
using Switch.Host.Tests.EndToEnd;

namespace Switch.Host.Tests.Admin;

/// <summary>Clients of a running switch's admin ports (gRPC and HTTP/1.1), and helpers to drive traffic.</summary>
public sealed class AdminClient : IDisposable
{
    public const string OpsKey = "demo-operator-key";
    public const string ViewerKey = "demo-viewer-key";

    public AdminClient(RunningSwitch sw)
    {
        Switch = sw;
        Grpc = GrpcChannel.ForAddress(sw.Host.AdminGrpcAddress);
        Http = new HttpClient { BaseAddress = sw.Host.AdminAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    public RunningSwitch Switch { get; }
    public GrpcChannel Grpc { get; }
    public HttpClient Http { get; }

    /// <summary>The test configuration without scheduled batch closes (a close is an audit entry; tests count entries).</summary>
    public static HostConfig Config(string dataDirectory, SimulatedBanksConfig? banks = null) =>
        RunningSwitch.TestConfig(dataDirectory, banks, rules => rules with { BatchCloseTimes = [] });

    /// <summary>A switch on a data directory of the caller's, or (null) on a temporary one deleted with it.</summary>
    public static Task<RunningSwitch> StartAsync(string? dataDirectory = null, SimulatedBanksConfig? banks = null) =>
        RunningSwitch.StartAsync(Config(dataDirectory ?? "set-by-the-fixture", banks), dataDirectory);

    public static CallOptions As(string? key, int timeoutMs = 30_000) => new()
    {
        Headers = key is null ? new Metadata() : new Metadata().Add(AdminMethods.OperatorKeyHeader, key),
        Timeout = TimeSpan.FromMilliseconds(timeoutMs),
    };

    public Task<TResp> CallAsync<TReq, TResp>(GrpcMethod<TReq, TResp> method, TReq request, string? key = OpsKey)
        where TReq : class, Google.Protobuf.IMessage<TReq> where TResp : class, Google.Protobuf.IMessage<TResp> =>
        Grpc.UnaryAsync(method, request, As(key));

    public async Task<BankView> BankAsync(string code) =>
        (await CallAsync(AdminMethods.ListBanks, new ListBanksRequest { Bank = code }, ViewerKey)).Banks.Single();

    public async Task<List<AuditEntry>> AuditAsync(long after = 0) =>
        (await CallAsync(AdminMethods.ListAudit, new AuditRequest { AfterAuditNo = after }, ViewerKey)).Entries.ToList();

    /// <summary>The operators' entries only: the connector may add reachability entries at any time (a slow first probe).</summary>
    public async Task<List<AuditEntry>> OperatorAuditAsync(long after = 0) =>
        (await AuditAsync(after)).Where(e => e.OperatorId is "ops" or "viewer").ToList();

    /// <summary>Waits until every endpoint of the bank takes traffic (the connector reached them all).</summary>
    public Task WaitAllTakeTrafficAsync(string bank) =>
        WaitUntilAsync(async () => (await BankAsync(bank)).Endpoints.All(e => e.TakesTraffic), $"every endpoint of bank {bank} taking traffic");

    /// <summary>A POST to the JSON API: the HTTP status and the body.</summary>
    public async Task<(int Status, string Body, string? ContentType)> PostJsonAsync(string method, string json, string? key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/{method}") { Content = new StringContent(json) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        if (key is not null) request.Headers.Add(AdminMethods.OperatorKeyHeader, key);
        using HttpResponseMessage response = await Http.SendAsync(request);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync(), response.Content.Headers.ContentType?.MediaType);
    }

    /// <summary>Pays <paramref name="count"/> agreement payments to a bank over one Transact stream; every one must succeed.</summary>
    public async Task PayManyAsync(string prefix, int count, string bank = "102")
    {
        using DuplexStreamingCall<TransferRequest, TransferResult> call =
            Switch.Channel.DuplexStreaming(InstitutionMethods.Transact, RunningSwitch.As(RunningSwitch.AlipayKey, 120_000));
        Task<List<TransferResult>> reading = Task.Run(async () =>
        {
            var results = new List<TransferResult>();
            await foreach (TransferResult r in call.ResponseStream.ReadAllAsync()) results.Add(r);
            return results;
        });
        for (int i = 0; i < count; i++)
        {
            // A distinct payer account each time: the daily per-account limit must not interfere.
            TransferRequest request = RunningSwitch.Payment($"{prefix}-{i}", 100 + i % 50, bank: bank, account: $"6222{prefix.Length:D2}{i:D10}");
            request.Kind = RequestKind.AgreementPayment;
            await call.RequestStream.WriteAsync(request);
        }
        await call.RequestStream.CompleteAsync();
        List<TransferResult> results = await reading.WaitAsync(TimeSpan.FromSeconds(120));
        Assert.Equal(count, results.Count);
        Assert.All(results, r => Assert.Equal(TransactionStatus.Succeeded, r.Status));
    }

    public static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, int timeoutMs = 30_000)
    {
        long deadline = Environment.TickCount64 + timeoutMs;
        while (!await condition())
        {
            if (Environment.TickCount64 > deadline) throw new TimeoutException($"timed out waiting for: {what}");
            await Task.Delay(25);
        }
    }

    public static async Task<RpcException> FailsAsync(Func<Task> call, StatusCode expected)
    {
        RpcException e = await Assert.ThrowsAsync<RpcException>(call);
        Assert.True(e.StatusCode == expected, $"expected {expected}, got {e.StatusCode}: {e.Status.Detail}");
        return e;
    }

    public void Dispose()
    {
        Grpc.Dispose();
        Http.Dispose();
    }
}
