using System.Net;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Switch.Contracts.V1;
using Switch.Grpc.Server;
using Switch.GrpcCompare.Official;
using Own = Switch.Grpc;

namespace Switch.GrpcCompare;

/// <summary>What both servers answer: the work a handler does is the same tiny copy on either stack.</summary>
internal static class Answers
{
    public static TransferResult For(TransferRequest request) => new()
    {
        OrderNo = request.OrderNo,
        TransactionId = request.AmountFen,
        Status = TransactionStatus.Succeeded,
        AmountFen = request.AmountFen,
    };

    public static TransferRequest Request(long n) => new()
    {
        OrderNo = "B-" + n,
        AmountFen = 1_000 + n % 1_000,
        Currency = "CNY",
        Bank = "102",
        Account = "6222020200112233",
    };
}

/// <summary>The same Kestrel HTTP/2 settings for both servers (windows, stream limit): only the gRPC layer differs.</summary>
internal static class Servers
{
    public const string Service = "switch.bench.Bench";

    public static readonly Own.GrpcMethod<TransferRequest, TransferResult> Pay =
        new(Own.MethodType.Unary, Service, "Pay", TransferRequest.Parser, TransferResult.Parser);
    public static readonly Own.GrpcMethod<TransferRequest, TransferResult> Transact =
        new(Own.MethodType.DuplexStreaming, Service, "Transact", TransferRequest.Parser, TransferResult.Parser);

    private static GrpcEndpointOptions Endpoint(int port) => new() { Address = IPAddress.Loopback, Port = port };

    /// <summary>The own layer: flush a stream's answers when the next request is not already here (as the gateway does).</summary>
    public static async Task<(Uri Address, IAsyncDisposable Server)> StartOwnAsync(int port)
    {
        var router = new GrpcRouter()
            .MapUnary(Pay, (request, _) => ValueTask.FromResult(Answers.For(request)))
            .MapDuplexStreaming(Transact, async (requests, responses, _) =>
            {
                while (true)
                {
                    ValueTask<TransferRequest?> next = requests.ReadAsync();
                    if (!next.IsCompleted) await responses.FlushAsync();
                    if (await next is not { } request) return;
                    await responses.WriteAsync(Answers.For(request));
                }
            });
        GrpcServer server = await GrpcServer.StartAsync(router, Endpoint(port));
        return (server.Address, server);
    }

    /// <summary>Grpc.AspNetCore on the same Kestrel settings.</summary>
    public static async Task<(Uri Address, IAsyncDisposable Server)> StartOfficialAsync(int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenGrpc(Endpoint(port)));
        builder.Services.AddGrpc();
        WebApplication app = builder.Build();
        app.MapGrpcService<OfficialBench>();
        await app.StartAsync();
        string bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return (new Uri(bound), app);
    }

    private sealed class OfficialBench : Bench.BenchBase
    {
        public override Task<TransferResult> Pay(TransferRequest request, global::Grpc.Core.ServerCallContext context) => Task.FromResult(Answers.For(request));

        public override async Task Transact(IAsyncStreamReader<TransferRequest> requestStream, IServerStreamWriter<TransferResult> responseStream,
            global::Grpc.Core.ServerCallContext context)
        {
            await foreach (TransferRequest request in requestStream.ReadAllAsync(context.CancellationToken))
                await responseStream.WriteAsync(Answers.For(request)); // the official writer flushes every message
        }
    }
}

/// <summary>A client of either stack, reduced to what the workloads do.</summary>
internal interface IBenchClient : IDisposable
{
    Task<TransferResult> PayAsync(TransferRequest request);
    IBenchStream OpenTransact();
}

internal interface IBenchStream : IDisposable
{
    ValueTask WriteAsync(TransferRequest request);
    /// <summary>Sends what is buffered (a no-op where every write is already sent).</summary>
    ValueTask FlushAsync();
    Task CompleteAsync();
    ValueTask<TransferResult?> ReadAsync();
}

internal sealed class OwnClient(Uri address) : IBenchClient
{
    private readonly Own.Client.GrpcChannel _channel = Own.Client.GrpcChannel.ForAddress(address);

    public Task<TransferResult> PayAsync(TransferRequest request) => _channel.UnaryAsync(Servers.Pay, request);

    public IBenchStream OpenTransact() => new Stream(_channel.DuplexStreaming(Servers.Transact));

    public void Dispose() => _channel.Dispose();

    private sealed class Stream(Own.Client.DuplexStreamingCall<TransferRequest, TransferResult> call) : IBenchStream
    {
        public ValueTask WriteAsync(TransferRequest request) => call.RequestStream.WriteAsync(request);
        public ValueTask FlushAsync() => call.RequestStream.FlushAsync();
        public Task CompleteAsync() => call.RequestStream.CompleteAsync();
        public ValueTask<TransferResult?> ReadAsync() => call.ResponseStream.ReadAsync();
        public void Dispose() => call.Dispose();
    }
}

internal sealed class OfficialClient : IBenchClient
{
    private readonly global::Grpc.Net.Client.GrpcChannel _channel;
    private readonly Bench.BenchClient _client;

    public OfficialClient(Uri address)
    {
        // The same transport settings as the own client: several HTTP/2 connections, the same stream window.
        _channel = global::Grpc.Net.Client.GrpcChannel.ForAddress(address, new global::Grpc.Net.Client.GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true, InitialHttp2StreamWindowSize = 768 * 1024, UseProxy = false },
        });
        _client = new Bench.BenchClient(_channel);
    }

    public Task<TransferResult> PayAsync(TransferRequest request) => _client.PayAsync(request).ResponseAsync;

    public IBenchStream OpenTransact() => new Stream(_client.Transact());

    public void Dispose() => _channel.Dispose();

    private sealed class Stream(AsyncDuplexStreamingCall<TransferRequest, TransferResult> call) : IBenchStream
    {
        public ValueTask WriteAsync(TransferRequest request) => new(call.RequestStream.WriteAsync(request));
        public ValueTask FlushAsync() => ValueTask.CompletedTask;
        public Task CompleteAsync() => call.RequestStream.CompleteAsync();
        public async ValueTask<TransferResult?> ReadAsync() => await call.ResponseStream.MoveNext(CancellationToken.None) ? call.ResponseStream.Current : null;
        public void Dispose() => call.Dispose();
    }
}
