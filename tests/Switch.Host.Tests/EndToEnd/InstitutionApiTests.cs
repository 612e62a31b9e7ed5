using Google.Protobuf;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Configuration;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;

namespace Switch.Host.Tests.EndToEnd;

/// <summary>The institution API end to end: our gRPC client → the real host over loopback → simulated banks.</summary>
public sealed class InstitutionApiTests : IAsyncLifetime
{
    private RunningSwitch _switch = null!;

    public async Task InitializeAsync() => _switch = await RunningSwitch.StartAsync();
    public async Task DisposeAsync() => await _switch.DisposeAsync();

    [Fact]
    public async Task Payment_payout_and_refund_succeed_and_the_banks_ledgers_agree()
    {
        TransferResult paid = await _switch.PayAsync(Payment("P-1", 123_456, echo: "flow=A"));
        Assert.Equal(TransactionStatus.Succeeded, paid.Status);
        Assert.Equal(RequestKind.AgreementPayment, paid.Kind);
        Assert.Equal("flow=A", paid.Echo);
        Assert.Equal(74, paid.FeeFen); // 6 bps, floored
        Assert.Equal(1, paid.FeedNo);
        Assert.True(paid.TransactionId > 0);

        TransferResult payout = await _switch.Channel.UnaryAsync(InstitutionMethods.Payout,
            new TransferRequest { OrderNo = "O-1", AmountFen = 50_000, Currency = "CNY", Bank = "105100000017", Account = "6217000011112222" }, As(AlipayKey));
        Assert.Equal(TransactionStatus.Succeeded, payout.Status);
        Assert.Equal(100 + 15, payout.FeeFen);

        TransferResult refund = await _switch.Channel.UnaryAsync(InstitutionMethods.Refund,
            new TransferRequest { OrderNo = "R-1", AmountFen = 23_456, Currency = "CNY", OriginalOrderNo = "P-1" }, As(AlipayKey));
        Assert.Equal(TransactionStatus.Succeeded, refund.Status);

        // Each bank's own ledger has exactly what the switch says it did.
        var executed = _switch.Host.Simulators.Select(s => s.Ledger).Distinct().SelectMany(l => l.Snapshot()).ToDictionary(e => e.TransactionId);
        Assert.Equal(3, executed.Count);
        Assert.Equal(123_456, executed[paid.TransactionId].AmountFen);
        Assert.Equal(50_000, executed[payout.TransactionId].AmountFen);
        Assert.Equal(23_456, executed[refund.TransactionId].AmountFen);
        Assert.Equal(0, _switch.Host.Engine.Logic.PositionSumFen());
    }

    [Fact]
    public async Task A_repeated_order_returns_the_first_outcome_and_a_changed_one_is_a_conflict()
    {
        TransferResult first = await _switch.PayAsync(Payment("DUP-1", 10_000));
        TransferResult again = await _switch.PayAsync(Payment("DUP-1", 10_000));
        Assert.True(again.Duplicate);
        Assert.Equal(first.TransactionId, again.TransactionId);
        Assert.Equal(TransactionStatus.Succeeded, again.Status);

        RpcException conflict = await Assert.ThrowsAsync<RpcException>(() => _switch.PayAsync(Payment("DUP-1", 10_001)));
        Assert.Equal(StatusCode.AlreadyExists, conflict.StatusCode);
        Assert.Contains("DUPLICATE_ORDER_CONFLICT", conflict.Status.Detail);
        Assert.Single(_switch.Host.Simulators.Select(s => s.Ledger).Distinct().SelectMany(l => l.Snapshot()));
    }

    [Fact]
    public async Task Query_returns_the_status_and_never_another_institutions_order()
    {
        TransferResult paid = await _switch.PayAsync(Payment("Q-1", 777));
        TransferResult queried = await _switch.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = "Q-1" }, As(AlipayKey));
        Assert.Equal(paid.TransactionId, queried.TransactionId);
        Assert.Equal(TransactionStatus.Succeeded, queried.Status);

        RpcException other = await Assert.ThrowsAsync<RpcException>(() =>
            _switch.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = "Q-1" }, As(TenpayKey)));
        Assert.Equal(StatusCode.NotFound, other.StatusCode);

        // The same order number at another institution is another order.
        TransferResult theirs = await _switch.PayAsync(Payment("Q-1", 888), TenpayKey);
        Assert.NotEqual(paid.TransactionId, theirs.TransactionId);
        Assert.False(theirs.Duplicate);
    }

    [Theory]
    [InlineData(null, "missing API key")]
    [InlineData("", "missing API key")]
    [InlineData("demo-alipay-kez", "invalid API key")]
    public async Task Wrong_or_missing_credentials_are_unauthenticated_and_change_nothing(string? key, string message)
    {
        var options = new CallOptions { Headers = key is null ? new Metadata() : new Metadata().Add(InstitutionMethods.ApiKeyHeader, key), Timeout = TimeSpan.FromSeconds(5) };
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => _switch.Channel.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("A-1", 1), options));
        Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
        Assert.Contains(message, e.Status.Detail);
        Assert.Equal(0, _switch.Host.Engine.Logic.Transactions.LastId);
    }

    [Theory]
    [InlineData(0L, "102", "CNY", "INVALID_AMOUNT: amount_fen")]
    [InlineData(-5L, "102", "CNY", "INVALID_AMOUNT: amount_fen")]
    [InlineData(100L, "999", "CNY", "UNKNOWN_BANK: bank")]
    [InlineData(100L, "10x", "CNY", "INVALID_FIELD: bank")]
    [InlineData(100L, "102", "USD", "UNSUPPORTED_CURRENCY: currency")]
    [InlineData(100L, "102", "", "MISSING_FIELD: currency")]
    public async Task Bad_fields_get_invalid_argument_naming_the_field(long amountFen, string bank, string currency, string expected)
    {
        var request = Payment("BAD-1", amountFen, bank);
        request.Currency = currency;
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => _switch.PayAsync(request));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.StartsWith(expected, e.Status.Detail);
        Assert.Equal(0, _switch.Host.Engine.Logic.Transactions.LastId);
    }

    [Fact]
    public async Task Over_long_order_number_and_control_characters_are_refused()
    {
        RpcException tooLong = await Assert.ThrowsAsync<RpcException>(() => _switch.PayAsync(Payment(new string('9', 33), 100)));
        Assert.StartsWith("FIELD_TOO_LONG: order_no", tooLong.Status.Detail);
        RpcException control = await Assert.ThrowsAsync<RpcException>(() => _switch.PayAsync(Payment("A\u0007B", 100)));
        Assert.StartsWith("INVALID_FIELD: order_no", control.Status.Detail);
    }

    [Fact]
    public async Task An_oversized_message_is_resource_exhausted()
    {
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => _switch.PayAsync(Payment("BIG", 100, echo: new string('x', 20_000))));
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
    }

    [Fact]
    public async Task A_unary_request_the_hand_decoder_leaves_to_the_generated_parser_is_answered_as_before()
    {
        // A batch in a unary call is not the hand path's: the generated parser takes it, and the call executes its own
        // fields (the batch ignored, as the generated message always had it). An order number given twice keeps the last.
        TransferRequest payment = Payment("HAND-FIRST", 250, echo: "回执-1");
        payment.Batch.Add(Payment("IN-BATCH", 999));
        byte[] bytes = [.. payment.ToByteArray(), .. new TransferRequest { OrderNo = "PARSED-LAST" }.ToByteArray()];
        var raw = new GrpcMethod<RawBytes, TransferResult>(MethodType.Unary, InstitutionMethods.Service, "AgreementPayment",
            RawBytes.Parser, TransferResult.Parser);
        TransferResult parsed = await _switch.Channel.UnaryAsync(raw, new RawBytes(bytes), As(AlipayKey));
        Assert.Equal(("PARSED-LAST", TransactionStatus.Succeeded, 250L, "回执-1", RequestKind.AgreementPayment),
            (parsed.OrderNo, parsed.Status, parsed.AmountFen, parsed.Echo, parsed.Kind));

        // The hand path: the same shape without the batch.
        byte[] plain = [.. Payment("HAND-FIRST-2", 260, echo: "回执-2").ToByteArray(), .. new TransferRequest { OrderNo = "HAND-LAST" }.ToByteArray()];
        TransferResult hand = await _switch.Channel.UnaryAsync(raw, new RawBytes(plain), As(AlipayKey));
        Assert.Equal(("HAND-LAST", TransactionStatus.Succeeded, 260L, "回执-2", RequestKind.AgreementPayment),
            (hand.OrderNo, hand.Status, hand.AmountFen, hand.Echo, hand.Kind));

        RpcException e = await Assert.ThrowsAsync<RpcException>(() => _switch.Channel.UnaryAsync(InstitutionMethods.Query,
            new TransferRequest { OrderNo = "IN-BATCH" }, As(AlipayKey)));
        Assert.Equal(StatusCode.NotFound, e.StatusCode); // the batch's element was never executed
    }

    [Fact]
    public async Task A_kind_naming_another_method_or_none_known_is_refused_and_changes_nothing()
    {
        TransferRequest payout = Payment("KIND-PAYOUT", 100);
        payout.Kind = RequestKind.Payout;
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => _switch.PayAsync(payout));
        Assert.Equal((StatusCode.InvalidArgument, "INVALID_FIELD: kind Payout was sent to the AgreementPayment method (leave it unset, or send it to its own method)"),
            (e.StatusCode, e.Status.Detail));

        TransferRequest unknown = Payment("KIND-99", 100);
        unknown.Kind = (RequestKind)99;
        e = await Assert.ThrowsAsync<RpcException>(() => _switch.PayAsync(unknown));
        Assert.Equal((StatusCode.InvalidArgument, "UNSUPPORTED_REQUEST_TYPE: kind is not a request the switch executes (99)"),
            (e.StatusCode, e.Status.Detail));

        foreach (string order in new[] { "KIND-PAYOUT", "KIND-99" })
        {
            e = await Assert.ThrowsAsync<RpcException>(() => _switch.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = order }, As(AlipayKey)));
            Assert.Equal(StatusCode.NotFound, e.StatusCode);
        }
        TransferRequest matching = Payment("KIND-MATCH", 100);
        matching.Kind = RequestKind.AgreementPayment;
        Assert.Equal(TransactionStatus.Succeeded, (await _switch.PayAsync(matching)).Status);
    }

    [Fact]
    public async Task A_malformed_message_is_refused_and_the_switch_keeps_serving()
    {
        // Bytes that are not a TransferRequest: field 2 (order_no) claims 100 bytes but has 1.
        var garbage = new GrpcMethod<RawBytes, TransferResult>(MethodType.Unary, InstitutionMethods.Service, "AgreementPayment",
            RawBytes.Parser, TransferResult.Parser);
        RpcException e = await Assert.ThrowsAsync<RpcException>(() =>
            _switch.Channel.UnaryAsync(garbage, new RawBytes([0x12, 100, 0x41]), As(AlipayKey)));
        Assert.True(e.StatusCode is StatusCode.Internal or StatusCode.InvalidArgument, $"got {e.Status}");
        Assert.Equal(TransactionStatus.Succeeded, (await _switch.PayAsync(Payment("AFTER", 100))).Status);
    }

    [Fact]
    public async Task The_transact_stream_carries_many_requests_and_their_results_tagged_by_order()
    {
        const int count = 2_000;
        using DuplexStreamingCall<TransferRequest, TransferResult> call = _switch.Channel.DuplexStreaming(InstitutionMethods.Transact, As(AlipayKey, 60_000));
        Task<List<TransferResult>> reading = Task.Run(async () =>
        {
            var results = new List<TransferResult>();
            await foreach (TransferResult r in call.ResponseStream.ReadAllAsync()) results.Add(r);
            return results;
        });
        for (int i = 0; i < count; i++)
        {
            var request = Payment($"S-{i}", 100 + i, account: $"62220000{i:D8}");
            request.Kind = RequestKind.AgreementPayment;
            await call.RequestStream.WriteAsync(request);
        }
        var bad = Payment("S-bad", 0);
        bad.Kind = RequestKind.AgreementPayment;
        await call.RequestStream.WriteAsync(bad);
        await call.RequestStream.CompleteAsync();
        List<TransferResult> results = await reading.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(count + 1, results.Count);
        Assert.Equal(count + 1, results.Select(r => r.OrderNo).Distinct().Count());
        Assert.All(results.Where(r => r.OrderNo != "S-bad"), r => Assert.Equal(TransactionStatus.Succeeded, r.Status));
        TransferResult rejected = results.Single(r => r.OrderNo == "S-bad");
        Assert.Equal(TransactionStatus.Rejected, rejected.Status);
        Assert.Equal("INVALID_AMOUNT", rejected.RejectCode);
        Assert.Equal("amount_fen", rejected.RejectField);
    }

    [Fact]
    public async Task The_outcome_feed_after_a_reconnect_misses_nothing_and_repeats_nothing()
    {
        for (int i = 0; i < 30; i++) await _switch.PayAsync(Payment($"F-{i}", 1_000 + i, account: $"A{i}"));

        var seen = new List<TransferResult>();
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20)))
        using (ServerStreamingCall<TransferResult> first = _switch.Channel.ServerStreaming(InstitutionMethods.Outcomes,
            new OutcomesRequest { AfterFeedNo = 0 }, As(AlipayKey) with { Timeout = null, CancellationToken = cts.Token }))
        {
            while (seen.Count < 12 && await first.ResponseStream.ReadAsync() is { } outcome) seen.Add(outcome);
            cts.Cancel(); // the connection drops mid-feed
        }
        for (int i = 30; i < 50; i++) await _switch.PayAsync(Payment($"F-{i}", 1_000 + i, account: $"A{i}"));

        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20)))
        using (ServerStreamingCall<TransferResult> second = _switch.Channel.ServerStreaming(InstitutionMethods.Outcomes,
            new OutcomesRequest { AfterFeedNo = seen[^1].FeedNo }, As(AlipayKey) with { Timeout = null, CancellationToken = cts.Token }))
        {
            while (seen.Count < 50 && await second.ResponseStream.ReadAsync() is { } outcome) seen.Add(outcome);
        }
        Assert.Equal(Enumerable.Range(1, 50).Select(i => (long)i), seen.Select(o => o.FeedNo));
        Assert.Equal(Enumerable.Range(0, 50).Select(i => $"F-{i}"), seen.Select(o => o.OrderNo));

        RpcException negative = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using ServerStreamingCall<TransferResult> call = _switch.Channel.ServerStreaming(InstitutionMethods.Outcomes,
                new OutcomesRequest { AfterFeedNo = -1 }, As(AlipayKey));
            await call.ResponseStream.ReadAsync();
        });
        Assert.Equal(StatusCode.InvalidArgument, negative.StatusCode);
        Assert.Equal("INVALID_FIELD: after_feed_no must be 0 to 9223372036854775806", negative.Status.Detail);
        RpcException last = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using ServerStreamingCall<TransferResult> call = _switch.Channel.ServerStreaming(InstitutionMethods.Outcomes,
                new OutcomesRequest { AfterFeedNo = long.MaxValue }, As(AlipayKey));
            await call.ResponseStream.ReadAsync();
        });
        Assert.Equal(StatusCode.InvalidArgument, last.StatusCode);
    }

    [Fact]
    public async Task A_deadline_shorter_than_the_bank_is_deadline_exceeded()
    {
        await using RunningSwitch slow = await RunningSwitch.StartAsync(
            RunningSwitch.TestConfig("", new SimulatedBanksConfig { Latency = "fixed:800", FailureRate = 0 }));
        RpcException e = await Assert.ThrowsAsync<RpcException>(() =>
            slow.Channel.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("D-1", 100), As(AlipayKey, timeoutMs: 100)));
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        // The payment itself goes on; the institution finds its outcome by query once the bank has answered.
        TransferResult later;
        long until = Environment.TickCount64 + 20_000;
        do
        {
            await Task.Delay(200);
            later = await slow.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = "D-1" }, As(AlipayKey));
        }
        while (later.Status == TransactionStatus.Processing && Environment.TickCount64 < until);
        Assert.Equal(TransactionStatus.Succeeded, later.Status);
    }
}

/// <summary>A message that is just bytes, to send what a real client would never build.</summary>
public sealed class RawBytes(byte[] bytes) : Google.Protobuf.IMessage<RawBytes>, Google.Protobuf.IBufferMessage
{
    public void InternalMergeFrom(ref Google.Protobuf.ParseContext input) => throw new NotSupportedException("only ever sent");

    public void InternalWriteTo(ref Google.Protobuf.WriteContext output)
    {
        foreach (byte b in Bytes) output.WriteRawTag(b);
    }

    public static readonly Google.Protobuf.MessageParser<RawBytes> Parser = new(() => new RawBytes([]));
    public byte[] Bytes { get; private set; } = bytes;
    public Google.Protobuf.Reflection.MessageDescriptor Descriptor => throw new NotSupportedException();
    public int CalculateSize() => Bytes.Length;
    public void MergeFrom(RawBytes message) => Bytes = message.Bytes;
    public void MergeFrom(Google.Protobuf.CodedInputStream input)
    {
        while (input.ReadTag() != 0) input.SkipLastField();
    }

    public void WriteTo(Google.Protobuf.CodedOutputStream output)
    {
        foreach (byte b in Bytes) output.WriteRawTag(b);
    }
    public RawBytes Clone() => new(Bytes);
    public bool Equals(RawBytes? other) => other is not null && Bytes.AsSpan().SequenceEqual(other.Bytes);
}
