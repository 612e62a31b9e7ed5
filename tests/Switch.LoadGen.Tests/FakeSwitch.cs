using System.Net;
using Switch.Contracts.V1;
using Switch.Grpc.Server;

namespace Switch.LoadGen.Tests;

/// <summary>
/// A stand-in for the switch's institution API on a real loopback socket, answering as told: slowly, one at a
/// time, or wrongly (twice, never, about an order never sent), to see that the harness measures and checks.
/// </summary>
internal sealed record FakeBehaviour
{
    /// <summary>Each request takes this long, one after another (a server of fixed capacity 1000/ServiceMs per second).</summary>
    public int ServiceMs { get; init; }
    /// <summary>Stream: how many answers the index-th request gets (1 normally); unary always answers once.</summary>
    public Func<TransferRequest, int, int>? AnswersFor { get; init; }
    /// <summary>Stream: after the requests end, one more answer about an order never sent.</summary>
    public bool AnswerAnUnsentOrder { get; init; }
}

internal sealed class FakeSwitch : IAsyncDisposable
{
    private readonly GrpcServer _server;
    private readonly FakeBehaviour _behaviour;
    private readonly SemaphoreSlim _oneAtATime = new(1);
    private int _received;

    private FakeSwitch(GrpcServer server, FakeBehaviour behaviour)
    {
        _server = server;
        _behaviour = behaviour;
    }

    public Uri Address => _server.Address;
    /// <summary>Requests received so far, unary and stream.</summary>
    public int Received => Volatile.Read(ref _received);

    public static async Task<FakeSwitch> StartAsync(FakeBehaviour behaviour)
    {
        var router = new GrpcRouter();
        FakeSwitch? self = null;
        router.MapDuplexStreaming(InstitutionMethods.Transact, (requests, responses, _) => self!.TransactAsync(requests, responses));
        foreach (var method in new[] { InstitutionMethods.AgreementPayment, InstitutionMethods.Payout, InstitutionMethods.Refund, InstitutionMethods.Query })
        {
            router.MapUnary(method, (request, _) => self!.UnaryAsync(request));
        }
        GrpcServer server = await GrpcServer.StartAsync(router, new GrpcEndpointOptions { Address = IPAddress.Loopback, Port = 0 });
        self = new FakeSwitch(server, behaviour);
        return self;
    }

    private static TransferResult Answer(TransferRequest r) => new()
    {
        OrderNo = r.OrderNo, Status = TransactionStatus.Succeeded, AmountFen = r.AmountFen, Kind = r.Kind, Echo = r.Echo,
    };

    private async Task ServeAsync()
    {
        if (_behaviour.ServiceMs <= 0) return;
        await _oneAtATime.WaitAsync();
        try { await Task.Delay(_behaviour.ServiceMs); } finally { _oneAtATime.Release(); }
    }

    private async ValueTask<TransferResult> UnaryAsync(TransferRequest request)
    {
        Interlocked.Increment(ref _received);
        await ServeAsync();
        return Answer(request);
    }

    private async ValueTask TransactAsync(ServerRequestStream<TransferRequest> requests, ServerResponseStream<TransferResult> responses)
    {
        int index = 0;
        await foreach (TransferRequest request in requests.ReadAllAsync())
        {
            Interlocked.Increment(ref _received);
            await ServeAsync();
            int answers = _behaviour.AnswersFor?.Invoke(request, index) ?? 1;
            for (int i = 0; i < answers; i++) await responses.WriteAndFlushAsync(Answer(request));
            index++;
        }
        if (_behaviour.AnswerAnUnsentOrder) await responses.WriteAndFlushAsync(new TransferResult { OrderNo = "NOT-SENT-1", Status = TransactionStatus.Succeeded });
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        _oneAtATime.Dispose();
    }
}
