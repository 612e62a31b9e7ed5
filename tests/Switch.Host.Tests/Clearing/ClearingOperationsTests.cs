using System.Runtime.CompilerServices;
using System.Text;
using Google.Protobuf;
using Switch.Clearing;
using Switch.Contracts.V1;
using Switch.Engine.Clearing;
using Switch.Grpc;
using Switch.Host.Admin;
using Switch.Host.Tests.EndToEnd;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;
using BreakTotal = Switch.Contracts.V1.BreakTotal;
using SettlementLine = Switch.Contracts.V1.SettlementLine;

namespace Switch.Host.Tests.Clearing;

/// <summary>The clearing operator operations against a real host: payments over the institution API, a close,
/// the settlement and reconciliation files on disk, and a bank's own record compared with the switch's.</summary>
public sealed class ClearingOperationsTests : IAsyncLifetime
{
    private const string Operator = "ops-alice";
    private RunningSwitch _switch = null!;
    private ClearingOperations _ops = null!;

    public async Task InitializeAsync()
    {
        _switch = await RunningSwitch.StartAsync();
        _ops = new ClearingOperations(_switch.Host.Clearing);
    }

    public async Task DisposeAsync() => await _switch.DisposeAsync();

    [Fact]
    public async Task A_closed_batch_settles_to_zero_and_a_banks_crafted_breaks_are_each_reported_with_totals()
    {
        var paid = new List<TransferResult>();
        for (int i = 1; i <= 6; i++)
        {
            paid.Add(await PayAsync(Payment($"CLR-{i}", 10_000 * i), i % 2 == 0 ? TenpayKey : AlipayKey));
        }
        Assert.All(paid, p => Assert.Equal(TransactionStatus.Succeeded, p.Status));

        CloseBatchReply closed = await _ops.CloseBatchAsync(new CloseBatchRequest { Reason = "end of day" }, Operator, CancellationToken.None);
        Assert.Equal(1, closed.BatchId);
        BatchInfo batch = await WaitForFilesAsync(closed.BatchId);
        Assert.Equal(6, batch.Transactions);
        Assert.Equal(Operator, batch.ClosedBy);
        Assert.True(batch.ClosedUnixUs >= batch.OpenedUnixUs);
        Assert.Equal(2, _ops.ListBatches(new ListBatchesRequest()).OpenBatchId);

        SettlementReply settlement = _ops.GetSettlement(new SettlementRequest { BatchId = 1 });
        Assert.Equal(0, settlement.SumNetFen);
        Assert.Equal(0, settlement.Lines.Sum(l => l.NetFen));
        long amountFen = paid.Sum(p => 10_000L * int.Parse(p.OrderNo["CLR-".Length..]));
        long feeFen = paid.Sum(p => p.FeeFen);
        SettlementLine bank = settlement.Lines.Single(l => l.ParticipantKind == "BANK" && l.ParticipantId == "102");
        Assert.Equal(6, bank.Count);
        Assert.Equal(amountFen, Math.Abs(bank.NetFen));
        Assert.Equal(feeFen, settlement.Lines.Single(l => l.ParticipantKind == "SWITCH").NetFen);
        Assert.Equal(3, settlement.Lines.Single(l => l.ParticipantId == "ALIPAY").Count);
        Assert.True(File.Exists(Path.Combine(_switch.DataDirectory, settlement.File)));
        string dir = ClearingFiles.BatchDirectory(_switch.DataDirectory, 1);
        string bankFile = Path.Combine(dir, "recon-bank-102.csv");
        Assert.True(File.Exists(Path.Combine(dir, "recon-institution-ALIPAY.csv")));

        // The switch's own file, submitted back, is clean.
        byte[] ours = await File.ReadAllBytesAsync(bankFile);
        BreakReportReply clean = await _ops.SubmitRecordsAsync(Chunks(ours, 100), CancellationToken.None);
        Assert.Equal(6, clean.Matched);
        Assert.Empty(clean.Breaks);
        Assert.All(clean.Totals, t => Assert.Equal(0, t.Count));

        // The bank's record: one line missing, one extra, one amount and one status differ.
        ReconciliationFile switchFile = ReconciliationFile.Parse(new MemoryStream(ours));
        var lines = switchFile.Lines.OrderBy(l => l.SwitchId).ToList();
        ReconLine missing = lines[0], amount = lines[1], status = lines[2];
        var theirs = new List<ReconLine>(lines.Skip(1))
        {
            new(lines[^1].SwitchId + 1000, "ALIPAY", "BANK-ONLY-1", "AGREEMENT_PAYMENT", "102", 4_321, 3, "SUCCEEDED", "", amount.ReceivedUs, amount.FinalUs),
        };
        theirs[0] = amount with { AmountFen = amount.AmountFen + 50 };
        theirs[1] = status with { Status = "FAILED", BankReason = "ACCOUNT_FROZEN" };
        BreakReportReply report = await _ops.SubmitRecordsAsync(Chunks(ReconBytes(switchFile, theirs), 64), CancellationToken.None);

        Assert.Equal(1, report.BatchId);
        Assert.Equal("BANK", report.ParticipantKind);
        Assert.Equal("102", report.ParticipantId);
        Assert.Equal(6, report.SwitchLines);
        Assert.Equal(6, report.ParticipantLines);
        Assert.Equal(3, report.Matched);
        Assert.False(report.BreaksTruncated);
        Assert.Equal(4, report.Breaks.Count);
        BreakLine Of(string kind) => Assert.Single(report.Breaks, b => b.Kind == kind);
        Assert.Equal(missing.SwitchId, Of("MISSING_AT_PARTICIPANT").TransactionId);
        Assert.Equal(missing.OrderNo, Of("MISSING_AT_PARTICIPANT").OrderNo);
        Assert.Equal(lines[^1].SwitchId + 1000, Of("MISSING_AT_SWITCH").TransactionId);
        Assert.Equal(4_321, Of("MISSING_AT_SWITCH").ParticipantAmountFen);
        Assert.Equal(amount.AmountFen + 50, Of("AMOUNT_MISMATCH").ParticipantAmountFen);
        Assert.Equal(amount.AmountFen, Of("AMOUNT_MISMATCH").SwitchAmountFen);
        Assert.Equal(("SUCCEEDED", "FAILED"), (Of("STATUS_MISMATCH").SwitchStatus, Of("STATUS_MISMATCH").ParticipantStatus));
        Dictionary<string, BreakTotal> totals = report.Totals.ToDictionary(t => t.Kind);
        Assert.Equal((1L, missing.AmountFen), (totals["MISSING_AT_PARTICIPANT"].Count, totals["MISSING_AT_PARTICIPANT"].AmountFen));
        Assert.Equal((1L, 4_321L), (totals["MISSING_AT_SWITCH"].Count, totals["MISSING_AT_SWITCH"].AmountFen));
        Assert.Equal((1L, 50L), (totals["AMOUNT_MISMATCH"].Count, totals["AMOUNT_MISMATCH"].AmountFen));
        Assert.Equal(1, totals["STATUS_MISMATCH"].Count);
        Assert.Empty(Directory.EnumerateFiles(_ops.SpoolDirectory)); // uploads do not linger
    }

    [Fact]
    public async Task Wrong_inputs_get_precise_errors_and_change_nothing()
    {
        await PayAsync(Payment("ERR-1", 5_000));
        async Task<RpcException> CloseFails(string reason) =>
            await Assert.ThrowsAsync<RpcException>(() => _ops.CloseBatchAsync(new CloseBatchRequest { Reason = reason }, Operator, CancellationToken.None));
        Assert.Equal(StatusCode.InvalidArgument, (await CloseFails("")).StatusCode);
        RpcException tooLong = await CloseFails(new string('x', 65));
        Assert.Contains("reason: at most 64 bytes", tooLong.Status.Detail);
        Assert.Contains("control", (await CloseFails("a\nb")).Status.Detail);
        RpcException badOperator = await Assert.ThrowsAsync<RpcException>(() =>
            _ops.CloseBatchAsync(new CloseBatchRequest { Reason = "ok" }, "bad operator id", CancellationToken.None));
        Assert.Equal(StatusCode.InvalidArgument, badOperator.StatusCode);
        Assert.Contains("operator_id", badOperator.Status.Detail);
        ListBatchesReply none = _ops.ListBatches(new ListBatchesRequest());
        Assert.Equal(1, none.OpenBatchId); // nothing closed by the refused commands
        Assert.Empty(none.Batches);

        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() => _ops.ListBatches(new ListBatchesRequest { Limit = 1_001 })).StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() => _ops.GetSettlement(new SettlementRequest { BatchId = 0 })).StatusCode);
        RpcException open = Assert.Throws<RpcException>(() => _ops.GetSettlement(new SettlementRequest { BatchId = 1 }));
        Assert.Equal(StatusCode.NotFound, open.StatusCode);
        Assert.Contains("open batch", open.Status.Detail);
        Assert.Equal(StatusCode.NotFound, Assert.Throws<RpcException>(() => _ops.GetSettlement(new SettlementRequest { BatchId = 9 })).StatusCode);

        await _ops.CloseBatchAsync(new CloseBatchRequest { Reason = "test" }, Operator, CancellationToken.None);
        await WaitForFilesAsync(1);
        byte[] ours = await File.ReadAllBytesAsync(Path.Combine(ClearingFiles.BatchDirectory(_switch.DataDirectory, 1), "recon-bank-102.csv"));
        string text = Encoding.UTF8.GetString(ours);

        // A malformed amount on line 2: the line and the field.
        string[] rows = text.Split('\n');
        string[] fields = rows[1].Split(',');
        fields[6] = "12x";
        rows[1] = string.Join(',', fields);
        RpcException malformed = await Assert.ThrowsAsync<RpcException>(() =>
            _ops.SubmitRecordsAsync(Chunks(Encoding.UTF8.GetBytes(string.Join('\n', rows)), 1 << 20), CancellationToken.None));
        Assert.Equal(StatusCode.InvalidArgument, malformed.StatusCode);
        Assert.Contains("line 2: amount_fen", malformed.Status.Detail);

        // A truncated file (no trailer), not a recon file at all, an unknown batch, an unknown bank.
        RpcException truncated = await Assert.ThrowsAsync<RpcException>(() =>
            _ops.SubmitRecordsAsync(Chunks(ours.AsSpan(0, text.LastIndexOf("T,", StringComparison.Ordinal)).ToArray(), 7), CancellationToken.None));
        Assert.Contains("no trailer", truncated.Status.Detail);
        Assert.Equal(StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(() =>
            _ops.SubmitRecordsAsync(Chunks("hello\n"u8.ToArray(), 3), CancellationToken.None))).StatusCode);
        RpcException unknownBatch = await Assert.ThrowsAsync<RpcException>(() =>
            _ops.SubmitRecordsAsync(Chunks(Encoding.UTF8.GetBytes(text.Replace("H,SWITCH-RECON,1,1,", "H,SWITCH-RECON,1,7,")), 1 << 20), CancellationToken.None));
        Assert.Equal(StatusCode.NotFound, unknownBatch.StatusCode);
        RpcException unknownBank = await Assert.ThrowsAsync<RpcException>(() =>
            _ops.SubmitRecordsAsync(Chunks(Encoding.UTF8.GetBytes(text.Replace(",BANK,102,", ",BANK,999,")), 1 << 20), CancellationToken.None));
        Assert.Equal(StatusCode.NotFound, unknownBank.StatusCode);
        Assert.Contains("not a participant", unknownBank.Status.Detail);
        RpcException bigChunk = await Assert.ThrowsAsync<RpcException>(() =>
            _ops.SubmitRecordsAsync(Chunks(new byte[ClearingOperations.MaxChunkBytes + 1], ClearingOperations.MaxChunkBytes + 1), CancellationToken.None));
        Assert.Equal(StatusCode.InvalidArgument, bigChunk.StatusCode);
        Assert.Empty(Directory.EnumerateFiles(_ops.SpoolDirectory));
    }

    [Fact]
    public async Task A_batch_with_no_transactions_has_empty_files_and_a_zero_settlement()
    {
        CloseBatchReply closed = await _ops.CloseBatchAsync(new CloseBatchRequest { Reason = "quiet hour" }, Operator, CancellationToken.None);
        BatchInfo batch = await WaitForFilesAsync(closed.BatchId);
        Assert.Equal(0, batch.Transactions);
        SettlementReply settlement = _ops.GetSettlement(new SettlementRequest { BatchId = closed.BatchId });
        Assert.NotEmpty(settlement.Lines);
        Assert.All(settlement.Lines, l => Assert.Equal((0L, 0L, 0L), (l.NetFen, l.DebitsFen, l.Count)));
        string bankFile = Path.Combine(ClearingFiles.BatchDirectory(_switch.DataDirectory, closed.BatchId), "recon-bank-102.csv");
        string[] lines = (await File.ReadAllTextAsync(bankFile)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("T,0,0,0,0,0,0,", lines[1]);
        BreakReportReply report = await _ops.SubmitRecordsAsync(Chunks(await File.ReadAllBytesAsync(bankFile), 10), CancellationToken.None);
        Assert.Equal((0L, 0L, 0L), (report.Matched, report.SwitchLines, report.ParticipantLines));
    }

    [Fact]
    public async Task Files_lost_between_a_close_and_a_restart_come_back_with_identical_bytes()
    {
        for (int i = 0; i < 4; i++) await PayAsync(Payment($"RST-{i}", 1_000 + i));
        await _ops.CloseBatchAsync(new CloseBatchRequest { Reason = "before restart" }, Operator, CancellationToken.None);
        await WaitForFilesAsync(1);
        string dir = ClearingFiles.BatchDirectory(_switch.DataDirectory, 1);
        Dictionary<string, byte[]> before = Directory.GetFiles(dir, "*.csv").ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        Assert.Contains("settlement.csv", before.Keys);

        // As if the switch had crashed after the close was journaled and before the files were written.
        string data = _switch.DataDirectory;
        var config = _switch.Config;
        await _switch.StopAsync();
        foreach (string f in Directory.GetFiles(dir)) File.Delete(f);
        _switch = await RunningSwitch.StartAsync(config, data);
        _ops = new ClearingOperations(_switch.Host.Clearing);

        BatchInfo batch = await WaitForFilesAsync(1);
        Assert.Equal(4, batch.Transactions);
        Assert.Equal(Operator, batch.ClosedBy);
        foreach ((string name, byte[] bytes) in before) Assert.Equal(bytes, await File.ReadAllBytesAsync(Path.Combine(dir, name)));
        Assert.Equal(2, _ops.ListBatches(new ListBatchesRequest()).OpenBatchId);
    }

    [Fact]
    public async Task A_failed_file_generation_is_reported_and_its_batch_refused_as_a_precondition()
    {
        await PayAsync(Payment("FLT-1", 2_000));
        // A directory where the writer wants its temporary file: generation of batch 1 fails, for real.
        Directory.CreateDirectory(Path.Combine(ClearingFiles.BatchDirectory(_switch.DataDirectory, 1), "recon-bank-102.csv.tmp"));
        await _ops.CloseBatchAsync(new CloseBatchRequest { Reason = "fault drill" }, Operator, CancellationToken.None);
        ListBatchesReply list = await PollAsync(() => _ops.ListBatches(new ListBatchesRequest()), l => l.FilesFault.Length > 0);
        Assert.False(list.Batches.Single().FilesComplete);
        RpcException refused = Assert.Throws<RpcException>(() => _ops.GetSettlement(new SettlementRequest { BatchId = 1 }));
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains("file generation failed", refused.Status.Detail);
    }

    /// <summary>Pays, retrying while the bank's endpoints are not reachable yet (the connector is still starting):
    /// such a request is refused before it becomes a transaction, so retrying it is safe.</summary>
    private async Task<TransferResult> PayAsync(TransferRequest request, string apiKey = AlipayKey)
    {
        long deadline = Environment.TickCount64 + 30_000;
        while (true)
        {
            try
            {
                return await _switch.PayAsync(request, apiKey);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && Environment.TickCount64 < deadline)
            {
                await Task.Delay(50);
            }
        }
    }

    private async Task<BatchInfo> WaitForFilesAsync(long batchId)
    {
        ListBatchesReply list = await PollAsync(() => _ops.ListBatches(new ListBatchesRequest()),
            l => l.Batches.Any(b => b.BatchId == batchId && b.FilesComplete) || l.FilesFault.Length > 0);
        Assert.Equal("", list.FilesFault);
        return list.Batches.Single(b => b.BatchId == batchId);
    }

    /// <summary>Polls with a generous bound (a slow, shared machine), never a fixed sleep.</summary>
    private static async Task<T> PollAsync<T>(Func<T> read, Func<T, bool> done)
    {
        long deadline = Environment.TickCount64 + 30_000;
        while (true)
        {
            T value = read();
            if (done(value) || Environment.TickCount64 > deadline) return value;
            await Task.Delay(20);
        }
    }

    internal static async IAsyncEnumerable<RecordsChunk> Chunks(byte[] data, int chunkBytes, [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        for (int at = 0; at < data.Length; at += chunkBytes)
        {
            cancellation.ThrowIfCancellationRequested();
            yield return new RecordsChunk { Data = ByteString.CopyFrom(data, at, Math.Min(chunkBytes, data.Length - at)) };
            await Task.Yield();
        }
    }

    /// <summary>A participant's file in the reconciliation format, written by the same writer the switch uses.</summary>
    internal static byte[] ReconBytes(ReconciliationFile like, IEnumerable<ReconLine> lines)
    {
        string path = Path.Combine(Path.GetTempPath(), $"switch-recon-{Guid.NewGuid():N}.csv");
        try
        {
            var totals = new ReconTotals();
            using (var writer = new AtomicCsvWriter(path, ReconciliationFile.Header(like.BatchId, like.ParticipantKind, like.ParticipantId, like.OpenedUs, like.ClosedUs)))
            {
                foreach (ReconLine l in lines)
                {
                    writer.Data(l.ToFields());
                    totals = totals.Add(l);
                }
                writer.Complete(totals.ToTrailer());
            }
            return File.ReadAllBytes(path);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
