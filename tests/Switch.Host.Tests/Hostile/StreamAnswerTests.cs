using System.Text.Json;
using Google.Protobuf;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Grpc.Tests;
using Switch.Host.Tests.EndToEnd;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;

namespace Switch.Host.Tests.Hostile;

/// <summary>
/// Every request the switch accepted on a Transact stream is answered on it before the stream ends, whatever the
/// client sends after it: a message that parses but is invalid gets a REJECTED result and the stream goes on;
/// bytes that are not a TransferRequest end the stream INVALID_ARGUMENT "MALFORMED_MESSAGE: ..." once the answers
/// already due are written. Over real sockets, with grpc-js (an independent implementation) and with our client.
/// </summary>
public sealed class StreamAnswerTests : IClassFixture<NodeInteropFixtureWithoutServer>, IAsyncLifetime
{
    /// <summary>Field 2 (order_no) claims 100 bytes and has 1: not a TransferRequest.</summary>
    private static readonly byte[] Garbage = [0x12, 100, 0x41];

    private readonly NodeInteropFixtureWithoutServer _node;
    private RunningSwitch _switch = null!;

    public StreamAnswerTests(NodeInteropFixtureWithoutServer node) => _node = node;

    public async Task InitializeAsync()
    {
        _switch = await RunningSwitch.StartAsync();
        await Limits.LimitedGateway.WarmUpAsync(_switch);
    }

    public async Task DisposeAsync() => await _switch.DisposeAsync();

    [Fact]
    public async Task Grpc_js_a_payment_then_a_malformed_message_gets_the_payments_answer_then_malformed_message()
    {
        for (int round = 0; round < 3; round++)
        {
            string prefix = $"JS{round}";
            JsonElement r = await _node.Peer.RunScriptAsync("institution.js", $"127.0.0.1:{_switch.Host.InstitutionAddress.Port} {AlipayKey} payment_then_malformed {prefix}");

            Assert.True((int)StatusCode.InvalidArgument == r.GetProperty("code").GetInt32(), r.ToString());
            Assert.StartsWith("MALFORMED_MESSAGE: ", r.GetProperty("details").GetString());
            var results = r.GetProperty("results").EnumerateArray().ToDictionary(x => x.GetProperty("order_no").GetString()!);
            Assert.Equal(2, results.Count);
            Assert.Equal("TRANSACTION_STATUS_SUCCEEDED", results[$"{prefix}-PAID"].GetProperty("status").GetString());
            Assert.Equal("TRANSACTION_STATUS_REJECTED", results[$"{prefix}-ZERO"].GetProperty("status").GetString());
            Assert.Equal("INVALID_AMOUNT", results[$"{prefix}-ZERO"].GetProperty("reject_code").GetString());
            // What the stream answered is what the switch did.
            Assert.Equal("TRANSACTION_STATUS_SUCCEEDED", r.GetProperty("query").GetProperty("status").GetString());
        }
    }

    [Fact]
    public async Task Our_client_a_payment_then_a_malformed_message_gets_the_payments_answer_then_malformed_message()
    {
        var raw = new GrpcMethod<RawBytes, TransferResult>(MethodType.DuplexStreaming, InstitutionMethods.Service, "Transact",
            RawBytes.Parser, TransferResult.Parser);
        using DuplexStreamingCall<RawBytes, TransferResult> call = _switch.Channel.DuplexStreaming(raw, As(AlipayKey, 30_000));
        var paid = Payment("OURS-PAID", 100);
        paid.Kind = RequestKind.AgreementPayment;
        await call.RequestStream.WriteAsync(new RawBytes(paid.ToByteArray()));
        await call.RequestStream.WriteAsync(new RawBytes(Garbage));
        var (results, e) = await CloseAndReadAsync(call);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.StartsWith("MALFORMED_MESSAGE: ", e.Status.Detail);
        TransferResult answer = Assert.Single(results);
        Assert.Equal("OURS-PAID", answer.OrderNo);
        Assert.Equal(TransactionStatus.Succeeded, answer.Status);
        TransferResult queried = await _switch.Channel.UnaryAsync(InstitutionMethods.Query,
            new TransferRequest { OrderNo = "OURS-PAID" }, As(AlipayKey));
        Assert.Equal(answer.TransactionId, queried.TransactionId);
        Assert.Equal(TransactionStatus.Succeeded, queried.Status);
    }

    [Fact]
    public async Task An_oversized_message_after_a_payment_gets_the_payments_answer_then_message_too_large()
    {
        using DuplexStreamingCall<TransferRequest, TransferResult> call = _switch.Channel.DuplexStreaming(InstitutionMethods.Transact, As(AlipayKey, 30_000));
        var paid = Payment("BIG-PAID", 100);
        paid.Kind = RequestKind.AgreementPayment;
        var big = Payment("BIG-BIG", 100, echo: new string('x', 20_000));
        big.Kind = RequestKind.AgreementPayment;
        await call.RequestStream.WriteAsync(paid);
        await call.RequestStream.WriteAsync(big);
        var (results, e) = await CloseAndReadAsync(call);
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.StartsWith("MESSAGE_TOO_LARGE: ", e.Status.Detail);
        Assert.Equal("BIG-PAID", Assert.Single(results).OrderNo);
    }

    /// <summary>Half-closes, reads every result, and returns them with the error status the stream must end with.</summary>
    private static async Task<(List<TransferResult> Results, RpcException Status)> CloseAndReadAsync<T>(DuplexStreamingCall<T, TransferResult> call)
        where T : class, IMessage<T>
    {
        await call.RequestStream.CompleteAsync();
        var results = new List<TransferResult>();
        RpcException e = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (TransferResult result in call.ResponseStream.ReadAllAsync()) results.Add(result);
        });
        return (results, e);
    }
}

/// <summary>The grpc-js scripts, installed once, without the interop server (the switch is the server here).</summary>
public sealed class NodeInteropFixtureWithoutServer : IAsyncLifetime
{
    public NodeInteropFixture Peer { get; } = new();
    public Task InitializeAsync() => Peer.InstallAsync();
    public Task DisposeAsync() => Task.CompletedTask;
}
