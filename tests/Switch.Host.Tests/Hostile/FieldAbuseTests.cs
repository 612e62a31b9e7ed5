using Google.Protobuf;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Tests.EndToEnd;
using Switch.Host.Tests.Limits;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;

namespace Switch.Host.Tests.Hostile;

/// <summary>
/// Abusive field values over the wire: each is refused with a precise status naming the field, and changes
/// nothing — no transaction, no outcome on the feed, and the order number is still free for the right content.
/// </summary>
public sealed class FieldAbuseTests : IAsyncLifetime
{
    private RunningSwitch _switch = null!;

    public async Task InitializeAsync()
    {
        _switch = await RunningSwitch.StartAsync();
        await LimitedGateway.WarmUpAsync(_switch);
        // Every input the warm-up published is applied before a test counts transactions (an attempt the client gave
        // up on may still be in the ring).
        Assert.True(_switch.Host.Engine.WaitUntilIdle(10_000), "the engine did not become idle after the warm-up");
    }

    public async Task DisposeAsync() => await _switch.DisposeAsync();

    public static TheoryData<string, StatusCode, string> Cases() => new()
    {
        { "amount=0", StatusCode.InvalidArgument, "INVALID_AMOUNT: amount_fen" },
        { "amount=-1", StatusCode.InvalidArgument, "INVALID_AMOUNT: amount_fen" },
        { "amount=min", StatusCode.InvalidArgument, "INVALID_AMOUNT: amount_fen" },
        { "amount=max", StatusCode.InvalidArgument, "AMOUNT_OVER_LIMIT: amount_fen" },
        { "account=33", StatusCode.InvalidArgument, "FIELD_TOO_LONG: account" },
        { "account=newline", StatusCode.InvalidArgument, "INVALID_FIELD: account" },
        { "echo=65", StatusCode.InvalidArgument, "FIELD_TOO_LONG: echo" },
        { "echo=cjk66bytes", StatusCode.InvalidArgument, "FIELD_TOO_LONG: echo" },
        { "echo=control", StatusCode.InvalidArgument, "INVALID_FIELD: echo" },
        { "echo=del", StatusCode.InvalidArgument, "INVALID_FIELD: echo" },
        { "currency=lower", StatusCode.InvalidArgument, "UNSUPPORTED_CURRENCY: currency" },
        { "currency=USD", StatusCode.InvalidArgument, "UNSUPPORTED_CURRENCY: currency" },
        { "currency=nul", StatusCode.InvalidArgument, "UNSUPPORTED_CURRENCY: currency" },
        { "bank=4digits", StatusCode.InvalidArgument, "INVALID_FIELD: bank" },
        { "bank=fullwidth", StatusCode.InvalidArgument, "INVALID_FIELD: bank" },
        { "kind=99", StatusCode.InvalidArgument, "UNSUPPORTED_REQUEST_TYPE: kind is not a request the switch executes (99)" },
        { "kind=payout", StatusCode.InvalidArgument, "INVALID_FIELD: kind Payout was sent to the AgreementPayment method" },
    };

    private static TransferRequest Abuse(string name, string orderNo)
    {
        TransferRequest r = Payment(orderNo, 1_234, account: "6222020200998877", echo: "ok");
        switch (name)
        {
            case "amount=0": r.AmountFen = 0; break;
            case "amount=-1": r.AmountFen = -1; break;
            case "amount=min": r.AmountFen = long.MinValue; break;
            case "amount=max": r.AmountFen = long.MaxValue; break;
            case "account=33": r.Account = new string('6', 33); break;
            case "account=newline": r.Account = "6222\n0202"; break;
            case "echo=65": r.Echo = new string('e', 65); break;
            case "echo=cjk66bytes": r.Echo = new string('中', 22); break;
            case "echo=control": r.Echo = "a\u0001b"; break;
            case "echo=del": r.Echo = "a\u007Fb"; break;
            case "currency=lower": r.Currency = "cny"; break;
            case "currency=USD": r.Currency = "USD"; break;
            case "currency=nul": r.Currency = "CNY\0"; break;
            case "bank=4digits": r.Bank = "1020"; break;
            case "bank=fullwidth": r.Bank = "１０２"; break;
            case "kind=99": r.Kind = (RequestKind)99; break;
            case "kind=payout": r.Kind = RequestKind.Payout; break;
            default: throw new ArgumentOutOfRangeException(nameof(name), name);
        }
        return r;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Each_abuse_is_refused_naming_the_field_and_changes_nothing(string name, StatusCode status, string detail)
    {
        string orderNo = "FA-" + name.Replace('=', '-');
        long transactions = _switch.Host.Engine.Logic.Transactions.LastId;
        long feedNo = _switch.Host.Feeds.For(0).LastFeedNo;

        RpcException e = await Assert.ThrowsAsync<RpcException>(() => _switch.PayAsync(Abuse(name, orderNo)));
        Assert.True(status == e.StatusCode, $"{name}: expected {status}, got {e.Status}");
        Assert.StartsWith(detail, e.Status.Detail);

        Assert.Equal(transactions, _switch.Host.Engine.Logic.Transactions.LastId);
        Assert.Equal(feedNo, _switch.Host.Feeds.For(0).LastFeedNo);
        await AssertOrderIsFree(orderNo, transactions, feedNo);
        Reliability.ReliabilityReport.Record("hostile input", $"field abuse: {name}", "a unary AgreementPayment over the wire",
            $"{status} '{e.Status.Detail}'; no transaction, no feed entry, the order number left free");
    }

    [Fact]
    public async Task On_the_transact_stream_an_unknown_kind_and_abusive_fields_are_rejected_results_and_change_nothing()
    {
        long transactions = _switch.Host.Engine.Logic.Transactions.LastId;
        long feedNo = _switch.Host.Feeds.For(0).LastFeedNo;
        using DuplexStreamingCall<TransferRequest, TransferResult> call = _switch.Channel.DuplexStreaming(InstitutionMethods.Transact, As(AlipayKey, 30_000));
        TransferRequest unknownKind = Payment("FA-S-kind", 100);
        unknownKind.Kind = (RequestKind)99;
        TransferRequest unspecified = Payment("FA-S-unspecified", 100);
        TransferRequest huge = Payment("FA-S-max", long.MaxValue);
        huge.Kind = RequestKind.AgreementPayment;
        foreach (TransferRequest r in new[] { unknownKind, unspecified, huge }) await call.RequestStream.WriteAsync(r);
        await call.RequestStream.CompleteAsync();
        var results = new Dictionary<string, TransferResult>();
        await foreach (TransferResult r in call.ResponseStream.ReadAllAsync().WithCancellation(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token))
        {
            results.Add(r.OrderNo, r);
        }
        Assert.Equal(3, results.Count);
        Assert.All(results.Values, r => Assert.Equal(TransactionStatus.Rejected, r.Status));
        Assert.Equal(("UNSUPPORTED_REQUEST_TYPE", "kind"), (results["FA-S-kind"].RejectCode, results["FA-S-kind"].RejectField));
        Assert.Equal(("UNSUPPORTED_REQUEST_TYPE", "kind"), (results["FA-S-unspecified"].RejectCode, results["FA-S-unspecified"].RejectField));
        Assert.Equal(("AMOUNT_OVER_LIMIT", "amount_fen"), (results["FA-S-max"].RejectCode, results["FA-S-max"].RejectField));
        Assert.Equal(transactions, _switch.Host.Engine.Logic.Transactions.LastId);
        Assert.Equal(feedNo, _switch.Host.Feeds.For(0).LastFeedNo);
        await AssertOrderIsFree("FA-S-kind", transactions, feedNo);
    }

    [Theory]
    [InlineData(new byte[] { 0xC3, 0x28 })] // a lead byte without its continuation
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 })] // an encoded surrogate half
    [InlineData(new byte[] { 0xC0, 0xAF })] // an over-long encoding of '/'
    [InlineData(new byte[] { 0xFF })]
    public async Task Non_utf8_in_a_string_field_is_refused_and_changes_nothing(byte[] badUtf8)
    {
        long transactions = _switch.Host.Engine.Logic.Transactions.LastId;
        long feedNo = _switch.Host.Feeds.For(0).LastFeedNo;
        string orderNo = "FA-UTF8-" + Convert.ToHexString(badUtf8);
        byte[] valid = Payment(orderNo, 1_234, account: "6222020200998877").ToByteArray();
        byte[] echo = [0x42, (byte)badUtf8.Length, .. badUtf8]; // field 8 (echo), length-delimited
        var raw = new GrpcMethod<RawBytes, TransferResult>(MethodType.Unary, InstitutionMethods.Service, "AgreementPayment", RawBytes.Parser, TransferResult.Parser);

        RpcException e = await Assert.ThrowsAsync<RpcException>(() => _switch.Channel.UnaryAsync(raw, new RawBytes([.. valid, .. echo]), As(AlipayKey)));
        // The protobuf runtime refuses a string field that is not UTF-8 (since Google.Protobuf 3.2x): the whole message is.
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.StartsWith("INVALID_ARGUMENT: malformed request message", e.Status.Detail);
        Assert.Contains("UTF-8", e.Status.Detail);
        Assert.Equal(transactions, _switch.Host.Engine.Logic.Transactions.LastId);
        Assert.Equal(feedNo, _switch.Host.Feeds.For(0).LastFeedNo);
        TransferResult good = await _switch.PayAsync(Payment(orderNo, 1_234, account: "6222020200998877", echo: "ok"));
        Assert.Equal(TransactionStatus.Succeeded, good.Status);
        Assert.False(good.Duplicate);
    }

    /// <summary>The order number, sent again with correct content, is a new payment: the refusal left no trace.</summary>
    private async Task AssertOrderIsFree(string orderNo, long transactionsBefore, long feedNoBefore)
    {
        TransferResult good = await _switch.PayAsync(Payment(orderNo, 1_234, account: "6222020200998877", echo: "ok"));
        Assert.Equal(TransactionStatus.Succeeded, good.Status);
        Assert.False(good.Duplicate);
        Assert.Equal(1_234, good.AmountFen);
        Assert.Equal(transactionsBefore + 1, _switch.Host.Engine.Logic.Transactions.LastId);
        Assert.Equal(feedNoBefore + 1, good.FeedNo);
        Assert.Equal(0, _switch.Host.Engine.Logic.PositionSumFen());
    }
}
