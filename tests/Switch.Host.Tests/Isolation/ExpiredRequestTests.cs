using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Tests.EndToEnd;
using Switch.Host.Tests.Faults;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;

namespace Switch.Host.Tests.Isolation;

/// <summary>
/// Issue 11, part 6, over real sockets: a payment whose deadline passes before the switch journals it is refused
/// DEADLINE_EXCEEDED and never executes; a later Query says NOT_FOUND and the order number is free.
/// </summary>
public sealed class ExpiredRequestTests
{
    /// <summary>One unary call over plain HTTP/2 with the grpc-timeout given as is (the project's client refuses to send
    /// a call already late, and rounds): the deadline here passes while the request is on its way to the journal.</summary>
    private static async Task<(string Status, string Message)> CallWithTimeoutAsync(Uri address, TransferRequest request, string grpcTimeout)
    {
        using var http = new HttpClient(new SocketsHttpHandler());
        byte[] body = request.ToByteArray();
        byte[] frame = new byte[5 + body.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)body.Length);
        body.CopyTo(frame, 5);
        using var message = new HttpRequestMessage(HttpMethod.Post, new Uri(address, $"/{InstitutionMethods.Service}/AgreementPayment"))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(frame),
        };
        message.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        message.Headers.TryAddWithoutValidation("te", "trailers");
        message.Headers.TryAddWithoutValidation("grpc-timeout", grpcTimeout);
        message.Headers.TryAddWithoutValidation(InstitutionMethods.ApiKeyHeader, AlipayKey);
        using HttpResponseMessage response = await http.SendAsync(message);
        await response.Content.ReadAsByteArrayAsync();
        string Header(string name) =>
            response.TrailingHeaders.TryGetValues(name, out var t) ? t.First()
            : response.Headers.TryGetValues(name, out var h) ? h.First() : "";
        return (Header("grpc-status"), Uri.UnescapeDataString(Header("grpc-message")));
    }

    [Fact]
    public async Task A_payment_whose_deadline_passes_before_it_is_journaled_never_executes()
    {
        await using RunningSwitch sw = await RunningSwitch.StartAsync();
        Assert.Equal(TransactionStatus.Succeeded, (await sw.PayAsync(Payment("WARM", 100))).Status);
        var logic = sw.Host.Engine.Logic;
        long applied = logic.EventsApplied;
        long lastId = logic.Transactions.LastId;
        long executed = sw.Host.Simulators.Select(s => s.Ledger).Distinct().Sum(l => l.Count);

        // 1 µs: long past by the time the gateway has published it and the journaler appends it.
        (string status, string detail) = await CallWithTimeoutAsync(sw.Host.InstitutionAddress, Payment("EXPIRED-1", 5_000), "1u");
        Assert.Equal(((int)StatusCode.DeadlineExceeded).ToString(), status);
        await FaultyBankRig.WaitUntilAsync(() => logic.EventsApplied > applied, "the engine applied the expired request");
        Assert.True(sw.Host.Engine.WaitUntilIdle(30_000));
        Assert.Equal(lastId, logic.Transactions.LastId); // refused: no transaction, nothing sent to a bank
        Assert.Equal(executed, sw.Host.Simulators.Select(s => s.Ledger).Distinct().Sum(l => l.Count));

        // Consistently unknown to the switch: NOT_FOUND, and the number is free for the same payment sent in time.
        RpcException notFound = await Assert.ThrowsAsync<RpcException>(() =>
            sw.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = "EXPIRED-1" }, As(AlipayKey)));
        Assert.Equal(StatusCode.NotFound, notFound.StatusCode);
        TransferResult again = await sw.PayAsync(Payment("EXPIRED-1", 5_000));
        Assert.Equal(TransactionStatus.Succeeded, again.Status);
        Assert.False(again.Duplicate);
        Assert.Equal(executed + 1, sw.Host.Simulators.Select(s => s.Ledger).Distinct().Sum(l => l.Count));

        // A deadline the request is journaled within: it executes and a Query finds it.
        (status, _) = await CallWithTimeoutAsync(sw.Host.InstitutionAddress, Payment("IN-TIME-1", 5_000), "10S");
        Assert.Equal("0", status);
        Assert.Equal(TransactionStatus.Succeeded,
            (await sw.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = "IN-TIME-1" }, As(AlipayKey))).Status);
    }
}
