using System.Text;
using Switch.Clearing;
using Switch.Engine.Clearing;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Engine.Tests.Support;
using Switch.Ring;

namespace Switch.Engine.Tests.Clearing;

/// <summary>Settlement instructions and reconciliation files from closed batches: content, bytes, restarts.</summary>
public sealed class ClearingFilesTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static void Feed(ClearingRecorder recorder, IEnumerable<OutputEvent> outputs)
    {
        foreach (OutputEvent o in outputs) recorder.Record(o);
    }

    private static Dictionary<string, byte[]> FilesOf(string dataDirectory, long batchId) =>
        Directory.GetFiles(ClearingFiles.BatchDirectory(dataDirectory, batchId))
            .ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);

    private static ReconciliationFile Recon(string dataDirectory, long batchId, string file)
    {
        using var stream = File.OpenRead(Path.Combine(ClearingFiles.BatchDirectory(dataDirectory, batchId), file));
        return ReconciliationFile.Parse(stream);
    }

    [Fact]
    public void A_closed_batch_gives_settlement_instructions_and_a_reconciliation_file_per_participant()
    {
        var h = new LogicHarness();
        using var recorder = new ClearingRecorder(_dir.Path, new RecordingLog());
        h.PayAndSettle("P1", 100_000);
        h.PayAndSettle("P,\"2\"", 3_000, BankReply.Failed); // an order number that needs CSV quoting
        OutputEvent payout = LogicHarness.Single(h.Payout("O1", 20_000), OutputKind.BankRequest);
        h.BankAnswer(payout.TransactionId, BankOperation.Credit, BankReply.Succeeded, reason: "OK,00");
        h.Refund("R1", "P1", 1_000);
        OutputEvent tenpay = h.PayAndSettle("T1", 50_000, institution: "TENPAY");
        Feed(recorder, h.Sink.Outputs);
        List<OutputEvent> close = h.CloseBatch();
        Feed(recorder, close);
        Assert.True(recorder.WaitForFiles(1, 30_000), recorder.Fault?.ToString());

        ReconciliationFile bank102 = Recon(_dir.Path, 1, "recon-bank-102.csv");
        Assert.Equal(("BANK", "102", 1L), (bank102.ParticipantKind, bank102.ParticipantId, bank102.BatchId));
        Assert.Equal(["P1", "P,\"2\"", "T1"], bank102.Lines.Select(l => l.OrderNo));
        Assert.Equal(new ReconTotals(3, 153_000, 100 + 3 + 42, 2, 150_000, 100 + 42), bank102.Totals);
        ReconLine failed = bank102.Lines[1];
        Assert.Equal(("FAILED", "AGREEMENT_PAYMENT", "ALIPAY"), (failed.Status, failed.Type, failed.Institution));

        ReconciliationFile bank103 = Recon(_dir.Path, 1, "recon-bank-103.csv");
        ReconLine paid = Assert.Single(bank103.Lines);
        Assert.Equal(("PAYOUT", "OK,00", 20_000L, 11L), (paid.Type, paid.BankReason, paid.AmountFen, paid.FeeFen));

        ReconciliationFile alipay = Recon(_dir.Path, 1, "recon-institution-ALIPAY.csv");
        Assert.Equal(3, alipay.Lines.Count); // the refund is still at the bank: it belongs to the next batch
        Assert.Equal(tenpay.TransactionId, Assert.Single(Recon(_dir.Path, 1, "recon-institution-TENPAY.csv").Lines).SwitchId);
        Assert.Empty(Recon(_dir.Path, 1, "recon-bank-308.csv").Lines);

        string[] settlement = File.ReadAllLines(Path.Combine(ClearingFiles.BatchDirectory(_dir.Path, 1), ClearingFiles.SettlementFile));
        Assert.StartsWith("H,SWITCH-SETTLEMENT,1,1,", settlement[0]);
        Assert.Contains("D,BANK,102,150000,0,0,2,-150000,PAY,150000", settlement);
        Assert.Contains("D,BANK,103,0,20000,0,1,20000,RECEIVE,20000", settlement);
        Assert.Contains("D,BANK,308,0,0,0,0,0,NONE,0", settlement);
        Assert.Contains("D,SWITCH,SWITCH,0,153,153,3,153,RECEIVE,153", settlement);
        Assert.StartsWith("T,6,0,150000,150000,", settlement[^1]);

        // Generating again gives identical bytes.
        Dictionary<string, byte[]> first = FilesOf(_dir.Path, 1);
        BatchFileGenerator.Generate(_dir.Path, Closed(close));
        Dictionary<string, byte[]> again = FilesOf(_dir.Path, 1);
        Assert.Equal(first.Keys.Order(), again.Keys.Order());
        Assert.All(first, f => Assert.Equal(f.Value, again[f.Key]));
        Assert.DoesNotContain(first.Keys, k => k.EndsWith(".tmp"));
    }

    [Theory]
    [InlineData("P1", "", RequestType.AgreementPayment, TransactionStatus.Succeeded, 0L)]
    [InlineData("P,\"1\"", "E,\"X\"", RequestType.Payout, TransactionStatus.Failed, 999_999L)]
    [InlineData("R-9", "余额不足", RequestType.Refund, TransactionStatus.Succeeded, 86_399_999_999L)]
    [InlineData("Q\r\nQ", "a\nb", RequestType.Payout, TransactionStatus.Failed, 1L)]
    public void The_fast_line_formatter_gives_the_bytes_of_the_field_by_field_one(string orderNo, string reason, RequestType type,
        TransactionStatus status, long offsetUs)
    {
        var o = new OutputEvent
        {
            Kind = OutputKind.Feed, TransactionId = 123_456_789, BatchId = 7, AmountFen = 1_000_000_000_000, FeeFen = 17,
            ReceivedUs = LogicHarness.StartUs + offsetUs, FinalUs = LogicHarness.StartUs + 2 * offsetUs + 1, InstitutionIndex = 1,
            BankCode = 8, RequestType = type, Status = status,
        };
        o.OrderNo.Set(orderNo);
        o.Reason.Set(reason);
        byte[] record = new byte[BatchRecord.Bytes];
        BatchRecord.Write(o, record);
        byte[] line = new byte[ReconLineFormatter.MaxLineBytes];
        int length = ReconLineFormatter.Format(record, "TENPAY"u8, line);
        string expected = ClearingCsv.Join(ReconLine.From(BatchRecord.Read(record), "TENPAY").ToFields());
        Assert.Equal(expected, Encoding.UTF8.GetString(line, 0, length));

        // Bytes that are not UTF-8 (a bank's raw reason) take the slow path, which replaces them: still one valid line.
        record[88] = 0xFF;
        record[55] = Math.Max(record[55], (byte)1);
        length = ReconLineFormatter.Format(record, "TENPAY"u8, line);
        Assert.Contains("\uFFFD", Encoding.UTF8.GetString(line, 0, length));
    }

    private static ClosedBatch Closed(List<OutputEvent> outputs)
    {
        var assembler = new ClosedBatchAssembler();
        ClosedBatch? batch = null;
        foreach (OutputEvent o in outputs) batch = assembler.Add(o) ?? batch;
        return batch!;
    }

    [Fact]
    public void A_batch_with_zero_transactions_has_files_with_only_header_and_trailer()
    {
        var h = new LogicHarness();
        using var recorder = new ClearingRecorder(_dir.Path, new RecordingLog());
        Feed(recorder, h.CloseBatch());
        Assert.True(recorder.WaitForFiles(1, 30_000), recorder.Fault?.ToString());
        ReconciliationFile file = Recon(_dir.Path, 1, "recon-institution-ALIPAY.csv");
        Assert.Empty(file.Lines);
        Assert.Equal(new ReconTotals(), file.Totals);
        Assert.Equal(0, new FileInfo(Path.Combine(ClearingFiles.BatchDirectory(_dir.Path, 1), ClearingFiles.RecordsFile)).Length);
    }

    [Fact]
    public void Records_that_do_not_match_the_batch_stop_generation_loudly()
    {
        var h = new LogicHarness();
        h.PayAndSettle("P1", 1_000);
        ClosedBatch batch = Closed(h.CloseBatch());
        Directory.CreateDirectory(ClearingFiles.BatchDirectory(_dir.Path, 1));
        File.WriteAllBytes(Path.Combine(ClearingFiles.BatchDirectory(_dir.Path, 1), ClearingFiles.RecordsFile), new byte[100]);
        Assert.Throws<InvalidDataException>(() => BatchFileGenerator.Generate(_dir.Path, batch));
        Assert.False(ClearingFiles.IsComplete(_dir.Path, 1));
    }

    /// <summary>The engine's output handler in these tests: clearing recorder plus a copy for the test.</summary>
    private sealed class Handler(ClearingRecorder? recorder) : IEventHandler<OutputEvent>
    {
        public readonly OutputRecorder Copy = new();

        public void OnEvent(ref OutputEvent evt, long sequence, bool endOfBatch)
        {
            recorder?.Record(evt);
            Copy.OnEvent(ref evt, sequence, endOfBatch);
        }
    }

    /// <summary>Batch 1 closed with payments; batch 2 open with more; the same events every time it is called.</summary>
    private static void RunScript(SwitchEngine engine, Handler handler, ManualClock clock, string prefix, int payments)
    {
        for (int i = 0; i < payments; i++)
        {
            clock.Advance(1_000);
            engine.Client().PublishCopy(LogicHarness.Request(RequestType.AgreementPayment, "ALIPAY", $"{prefix}{i}", 100 + i, "102", account: $"A{i}"));
            Assert.True(engine.WaitUntilIdle(30_000));
            OutputEvent request = handler.Copy.Drain().Single(o => o.Kind == OutputKind.BankRequest);
            clock.Advance(1_000);
            engine.Client().PublishCopy(new InputEvent { Kind = EventKind.BankResult, TransactionId = request.TransactionId, Operation = request.Operation, Reply = i % 5 == 0 ? BankReply.Failed : BankReply.Succeeded });
            Assert.True(engine.WaitUntilIdle(30_000));
            handler.Copy.Drain();
        }
    }

    private static void Close(SwitchEngine engine, ManualClock clock)
    {
        clock.Advance(1_000);
        var close = new InputEvent { Kind = EventKind.CloseBatch, CorrelationId = 99 };
        close.Operator.Set("op-carol");
        engine.Client().PublishCopy(close);
        Assert.True(engine.WaitUntilIdle(30_000));
    }

    [Fact]
    public void A_restart_between_a_close_and_its_files_still_produces_the_same_files()
    {
        // Reference: the recorder sees everything as it happens.
        string reference = _dir.Sub("reference");
        var clock = new ManualClock(LogicHarness.StartUs);
        using (var recorder = new ClearingRecorder(reference, new RecordingLog()))
        {
            var handler = new Handler(recorder);
            using (SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(reference, clock), TestConfigs.Small(), handler))
            {
                RunScript(engine, handler, clock, "A", 30);
                Close(engine, clock);
                RunScript(engine, handler, clock, "B", 10);
            }
            Assert.True(recorder.WaitForFiles(1, 30_000), recorder.Fault?.ToString());
        }

        // Crashed: the close is journaled, but no file was written before the process died; batch 2's records are torn.
        string crashed = _dir.Sub("crashed");
        clock = new ManualClock(LogicHarness.StartUs);
        var noFiles = new Handler(null);
        using (SwitchEngine engine = SwitchEngine.Start(EngineTestOptions.For(crashed, clock), TestConfigs.Small(), noFiles))
        {
            RunScript(engine, noFiles, clock, "A", 30);
            Close(engine, clock);
            RunScript(engine, noFiles, clock, "B", 10);
        }
        Directory.CreateDirectory(ClearingFiles.BatchDirectory(crashed, 2));
        File.WriteAllBytes(Path.Combine(ClearingFiles.BatchDirectory(crashed, 2), ClearingFiles.RecordsFile), new byte[BatchRecord.Bytes * 3 + 17]);

        using (var recorder = new ClearingRecorder(crashed, new RecordingLog()))
        {
            var handler = new Handler(recorder);
            EngineOptions options = EngineTestOptions.For(crashed, clock) with { ReplaySink = recorder.ReplaySink() };
            using (SwitchEngine engine = SwitchEngine.Start(options, TestConfigs.Small(), handler))
            {
                Assert.True(recorder.WaitForFiles(1, 30_000), recorder.Fault?.ToString());
                Dictionary<string, byte[]> expected = FilesOf(reference, 1), actual = FilesOf(crashed, 1);
                Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
                Assert.All(expected, f => Assert.True(f.Value.AsSpan().SequenceEqual(actual[f.Key]), $"{f.Key} differs"));
                Assert.Equal(30, Recon(crashed, 1, "recon-bank-102.csv").Lines.Count);

                // The open batch goes on from its replayed records.
                RunScript(engine, handler, clock, "C", 5);
                Close(engine, clock);
                Assert.True(recorder.WaitForFiles(2, 30_000), recorder.Fault?.ToString());
                Assert.Equal(15, Recon(crashed, 2, "recon-bank-102.csv").Lines.Count);
            }
        }

        // A later restart finds both batches complete and rewrites nothing.
        DateTime written = File.GetLastWriteTimeUtc(Path.Combine(ClearingFiles.BatchDirectory(crashed, 1), ClearingFiles.SettlementFile));
        using (var recorder = new ClearingRecorder(crashed, new RecordingLog()))
        {
            EngineOptions options = EngineTestOptions.For(crashed, clock) with { ReplaySink = recorder.ReplaySink() };
            using (SwitchEngine engine = SwitchEngine.Start(options, TestConfigs.Small(), new Handler(recorder)))
            {
                Assert.Equal(2, recorder.GeneratedThrough);
                Assert.Equal(0, recorder.GeneratedCount);
            }
        }
        Assert.Equal(written, File.GetLastWriteTimeUtc(Path.Combine(ClearingFiles.BatchDirectory(crashed, 1), ClearingFiles.SettlementFile)));
    }
}
