using Switch.BankSim;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;

namespace Switch.Host.Tests.BankSim;

/// <summary>A simulated bank on a loopback port with a client channel to it; every wait bounded.</summary>
internal sealed class BankUnderTest : IAsyncDisposable
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private BankUnderTest(BankSimulatorServer server)
    {
        Server = server;
        Channel = GrpcChannel.ForAddress(server.Address);
    }

    public BankSimulatorServer Server { get; }

    public GrpcChannel Channel { get; }

    public BankLedger Ledger => Server.Ledger;

    /// <param name="ledger">The bank's books when shared with another endpoint; null: books of its own.</param>
    public static async Task<BankUnderTest> StartAsync(BankSimulatorOptions? options = null, BankLedger? ledger = null) =>
        new(await BankSimulatorServer.StartAsync(options ?? new BankSimulatorOptions(), ledger: ledger).WaitAsync(Bound));

    public Task<BankResponse> CallAsync(GrpcMethod<BankRequest, BankResponse> method, BankRequest request, TimeSpan? timeout = null) =>
        Channel.UnaryAsync(method, request, new CallOptions { Timeout = timeout ?? Bound }).WaitAsync(Bound);

    /// <summary>Sends every request on one Exchange stream, half-closes, and returns every answer received.</summary>
    public async Task<List<BankResponse>> ExchangeAsync(IReadOnlyList<BankRequest> requests, int flushEvery = 256)
    {
        using var cts = new CancellationTokenSource(Bound);
        using var call = Channel.DuplexStreaming(BankEndpointMethods.Exchange, new CallOptions { CancellationToken = cts.Token });
        var answers = new List<BankResponse>();
        Task reading = Task.Run(async () =>
        {
            await foreach (var response in call.ResponseStream.ReadAllAsync(cts.Token)) answers.Add(response);
        });
        for (int i = 0; i < requests.Count; i++)
        {
            await call.RequestStream.WriteAsync(requests[i]);
            if ((i + 1) % flushEvery == 0) await call.RequestStream.FlushAsync();
        }
        await call.RequestStream.CompleteAsync();
        await reading.WaitAsync(Bound);
        Assert.Equal(StatusCode.OK, call.GetStatus().Code);
        return answers;
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await Server.DisposeAsync();
    }
}

internal static class Requests
{
    public static BankRequest Debit(long id, long amountFen = 10_000, string account = "6222020200001234567") =>
        new() { TransactionId = id, Operation = BankOperation.Debit, AmountFen = amountFen, Account = account, BankCode = 102, Attempt = 1 };

    public static BankRequest Credit(long id, long amountFen = 10_000, string account = "6222020200007654321") =>
        new() { TransactionId = id, Operation = BankOperation.Credit, AmountFen = amountFen, Account = account, BankCode = 102, Attempt = 1 };

    public static BankRequest Query(long id) => new() { TransactionId = id, Operation = BankOperation.Query, BankCode = 102 };

    public static BankRequest Reverse(long id) => new() { TransactionId = id, Operation = BankOperation.Reverse, BankCode = 102 };

    public static long UnixMicrosFromNow(TimeSpan offset) => (DateTime.UtcNow + offset - DateTime.UnixEpoch).Ticks / 10;

    /// <summary>Polls a condition the server reaches asynchronously (e.g. a count after a canceled call), bounded.</summary>
    public static async Task Eventually(Func<bool> condition, string what)
    {
        var bound = DateTime.UtcNow + BankUnderTest.Bound;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < bound, $"timed out waiting for: {what}");
            await Task.Delay(20);
        }
    }
}
