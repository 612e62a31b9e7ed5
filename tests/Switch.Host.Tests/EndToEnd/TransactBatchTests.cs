using System.Globalization;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;

namespace Switch.Host.Tests.EndToEnd;

/// <summary>The Transact stream's batch form (institution.proto) against the real host over loopback: batches of
/// requests, results in batches to a caller that declared it reads them, malformed batches refused whole.</summary>
public sealed class TransactBatchTests : IAsyncLifetime
{
    private RunningSwitch _switch = null!;

    public async Task InitializeAsync() => _switch = await RunningSwitch.StartAsync();
    public async Task DisposeAsync() => await _switch.DisposeAsync();

    /// <summary>Every result message as received, and the status.</summary>
    private async Task<(List<TransferResult> Messages, Status Status)> TransactAsync(IReadOnlyList<TransferRequest> messages, int? resultBatchMax)
    {
        CallOptions options = As(AlipayKey, (int)DuplexMessages.Bound.TotalMilliseconds);
        if (resultBatchMax is { } max) options.Headers!.Add(TransactBatch.InstitutionBatchMaxHeader, BatchForm.Format(max));
        var (received, status, _) = await DuplexMessages.ExchangeAsync(_switch.Channel, InstitutionMethods.Transact, messages, options);
        return (received, status);
    }

    private static TransferRequest Pay(string orderNo, long amountFen, int account) => new()
    {
        Kind = RequestKind.AgreementPayment, OrderNo = orderNo, AmountFen = amountFen, Currency = "CNY", Bank = "103",
        Account = "62220203" + account.ToString("D8", CultureInfo.InvariantCulture),
    };

    private static TransferRequest Batch(IEnumerable<TransferRequest> requests)
    {
        var message = new TransferRequest();
        message.Batch.AddRange(requests);
        return message;
    }

    private static List<TransferResult> Flatten(IEnumerable<TransferResult> messages) => messages.SelectMany(m => m.Batch.Count > 0 ? m.Batch : [m]).ToList();

    [Fact]
    public async Task A_batch_of_requests_mixed_with_single_ones_is_executed_and_answered_in_batches_to_a_caller_that_reads_them()
    {
        List<TransferRequest> first = Enumerable.Range(0, 100).Select(i => Pay($"TB-{i}", 1_000 + i, i)).ToList();
        TransferRequest[] messages = [Pay("TB-single-1", 500, 900), Batch(first), Pay("TB-single-2", 600, 901)];

        var (results, status) = await TransactAsync(messages, resultBatchMax: 64);

        Assert.Equal(StatusCode.OK, status.Code);
        List<TransferResult> answers = Flatten(results);
        Assert.Equal(102, answers.Count);
        Assert.Equal(102, answers.Select(a => a.OrderNo).Distinct().Count());
        Assert.All(answers, a => Assert.Equal(TransactionStatus.Succeeded, a.Status));
        Assert.All(results, m => Assert.InRange(m.Batch.Count, 0, 64));
        Assert.Contains(results, m => m.Batch.Count > 1); // What was ready together went out together.
        // The bank's books hold exactly what the switch answered, with its amounts.
        Dictionary<long, long> executed = _switch.Host.Simulators.Select(s => s.Ledger).Distinct().SelectMany(l => l.Snapshot())
            .ToDictionary(e => e.TransactionId, e => e.AmountFen);
        Assert.All(answers, a => Assert.Equal(a.AmountFen, executed[a.TransactionId]));
    }

    [Fact]
    public async Task A_caller_that_declares_nothing_gets_single_results_for_its_batches_and_a_bad_element_is_rejected_on_its_own()
    {
        TransferRequest bad = Pay("TB-bad", 0, 3); // INVALID_AMOUNT
        var (results, status) = await TransactAsync([Batch([Pay("TB-a", 100, 1), bad, Pay("TB-b", 200, 2)])], resultBatchMax: null);

        Assert.Equal(StatusCode.OK, status.Code);
        Assert.All(results, r => Assert.Empty(r.Batch));
        Dictionary<string, TransferResult> byOrder = results.ToDictionary(r => r.OrderNo);
        Assert.Equal((TransactionStatus.Rejected, "INVALID_AMOUNT", "amount_fen"), (byOrder["TB-bad"].Status, byOrder["TB-bad"].RejectCode, byOrder["TB-bad"].RejectField));
        Assert.Equal(TransactionStatus.Succeeded, byOrder["TB-a"].Status);
        Assert.Equal(TransactionStatus.Succeeded, byOrder["TB-b"].Status);
    }

    public static TheoryData<string, TransferRequest> Malformed()
    {
        TransferRequest mixed = Batch([Pay("TB-m1", 100, 11), Pay("TB-m2", 100, 12)]);
        mixed.OrderNo = "TB-m3";
        return new TheoryData<string, TransferRequest>
        {
            { "BATCH_TOO_LARGE: a batch of 8191 requests, over the 8190", Batch(Enumerable.Range(0, 8_191).Select(_ => new TransferRequest())) },
            { "BATCH_MIXED: a batch of 2 requests with fields of a single one beside it", mixed },
            { "BATCH_NESTED: element 1 of a batch of 2 requests is itself a batch", Batch([Pay("TB-m1", 100, 11), Batch([Pay("TB-m2", 100, 12)])]) },
        };
    }

    [Theory]
    [MemberData(nameof(Malformed))]
    public async Task A_malformed_batch_ends_the_stream_with_its_precise_error_after_the_answers_due_and_none_of_it_executes(string expected, TransferRequest malformed)
    {
        int booksBefore = _switch.Host.Simulators.Select(s => s.Ledger).Distinct().Sum(l => l.Snapshot().Count);

        var (results, status) = await TransactAsync([Pay("TB-before", 100, 20), malformed, Pay("TB-after", 100, 21)], resultBatchMax: 16);

        Assert.Equal(StatusCode.InvalidArgument, status.Code);
        Assert.StartsWith(expected, status.Detail);
        TransferResult before = Assert.Single(Flatten(results));
        Assert.Equal(("TB-before", TransactionStatus.Succeeded), (before.OrderNo, before.Status));
        Assert.Equal(booksBefore + 1, _switch.Host.Simulators.Select(s => s.Ledger).Distinct().Sum(l => l.Snapshot().Count));
        RpcException none = await Assert.ThrowsAsync<RpcException>(() =>
            _switch.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = "TB-m1" }, As(AlipayKey)));
        Assert.Equal(StatusCode.NotFound, none.StatusCode);
    }

    [Fact]
    public async Task A_result_batch_header_out_of_range_is_refused_naming_it()
    {
        var (results, status) = await TransactAsync([Pay("TB-h", 100, 30)], resultBatchMax: 0);

        Assert.Empty(results);
        Assert.Equal(StatusCode.InvalidArgument, status.Code);
        Assert.StartsWith($"INVALID_FIELD: {TransactBatch.InstitutionBatchMaxHeader} must be 1 to 8190", status.Detail);
    }
}
