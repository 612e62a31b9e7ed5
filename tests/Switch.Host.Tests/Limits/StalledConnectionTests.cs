using System.Text.Json;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Grpc.Tests;
using Switch.Host.Gateway;
using Switch.Host.Tests.EndToEnd;
using Switch.Host.Tests.Hostile;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;

namespace Switch.Host.Tests.Limits;

/// <summary>
/// A client whose streams are stalled (it stopped reading their answers) opens one stream more on the same
/// connection: the refusal (STREAM_LIMIT, trailers-only, no DATA) reaches it, though the stalled streams hold the
/// connection's flow-control window. Real sockets, our client and grpc-js.
/// </summary>
public sealed class StalledConnectionTests(NodeInteropFixtureWithoutServer node) : IClassFixture<NodeInteropFixtureWithoutServer>, IAsyncLifetime
{
    private const int Streams = 3;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private RunningSwitch _switch = null!;
    private LimitedGateway _gateway = null!;

    public async Task InitializeAsync()
    {
        _switch = await RunningSwitch.StartAsync();
        await LimitedGateway.WarmUpAsync(_switch);
        _gateway = await LimitedGateway.StartAsync(_switch, GatewayLimits.Default with { MaxStreamsPerInstitution = Streams });
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _switch.DisposeAsync();
    }

    [Fact]
    public async Task A_new_stream_on_a_connection_whose_streams_are_stalled_gets_STREAM_LIMIT()
    {
        using var flood = new CancellationTokenSource();
        using GrpcChannel channel = GrpcChannel.ForAddress(_gateway.Channel.Address, new GrpcChannelOptions { EnableMultipleHttp2Connections = false });
        var calls = new List<DuplexStreamingCall<TransferRequest, TransferResult>>();
        var writers = new List<Task>();
        for (int s = 0; s < Streams; s++)
        {
            DuplexStreamingCall<TransferRequest, TransferResult> call = channel.DuplexStreaming(InstitutionMethods.Transact, UnreadAnswersTests.Alipay(flood.Token));
            calls.Add(call);
            int stream = s;
            writers.Add(Task.Run(async () =>
            {
                for (int i = 0; ; i++) // until flow control holds the writes: the client never reads
                {
                    var r = Payment($"ST{stream}-{i}", 1, account: $"ST{stream}");
                    r.Kind = RequestKind.AgreementPayment;
                    await call.RequestStream.WriteAsync(r, flood.Token);
                }
            }));
        }
        InstitutionLimiter limiter = _gateway.Gateway.Limiter;
        DateTime deadline = DateTime.UtcNow + Bound;
        int queued = -1;
        while (true)
        {
            await Task.Delay(1_000);
            int now = limiter.QueuedAnswers(0);
            if (now == queued && now > 0 && limiter.OpenStreams(0) == Streams) break; // stalled
            Assert.True(DateTime.UtcNow < deadline, $"{now} answers queued, {limiter.OpenStreams(0)} streams open");
            queued = now;
        }

        try
        {
            using var wait = new CancellationTokenSource(Bound);
            using DuplexStreamingCall<TransferRequest, TransferResult> extra = channel.DuplexStreaming(InstitutionMethods.Transact, UnreadAnswersTests.Alipay(wait.Token));
            RpcException e = await Assert.ThrowsAsync<RpcException>(async () => await extra.ResponseStream.ReadAsync());
            Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
            Assert.StartsWith($"STREAM_LIMIT: institution ALIPAY has {Streams} streams open", e.Status.Detail);
        }
        finally
        {
            flood.Cancel();
            foreach (var call in calls) call.Dispose();
            await Task.WhenAll(writers.Select(w => w.ContinueWith(_ => { })));
        }
    }

    [Fact]
    public async Task Grpc_js_a_new_stream_on_a_connection_whose_streams_are_stalled_gets_STREAM_LIMIT()
    {
        // Streams, 2,000 payments on each (far past what the streams and the transport hold), 5 s to stall, 60 s to answer.
        JsonElement r = await node.Peer.RunScriptAsync("institution.js",
            $"127.0.0.1:{_gateway.Channel.Address.Port} {AlipayKey} stalled_then_new_stream JSST {Streams} 2000 5000 60000");
        JsonElement extra = r.GetProperty("extra");
        Assert.True(extra.TryGetProperty("code", out JsonElement code) && code.GetInt32() == (int)StatusCode.ResourceExhausted, r.ToString());
        Assert.StartsWith($"STREAM_LIMIT: institution ALIPAY has {Streams} streams open", extra.GetProperty("details").GetString());
        Assert.Equal(0, r.GetProperty("query").GetProperty("code").GetInt32()); // a unary call on the connection is served too
    }
}
