using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using Switch.Clearing;
using Switch.Engine.Clearing;
using Switch.Engine.Events;

namespace Switch.Benchmarks.Clearing;

/// <summary>
/// Closing a big clearing batch, off the writer thread: from the batch's records file (128 bytes per final
/// transaction, as the recorder leaves it) to every reconciliation file and the settlement instructions, each
/// written to a temporary file, flushed and renamed. One operation = one whole batch. (The close event itself
/// costs the logic thread one pass over the participants, not the transactions.) Monitoring strategy: a batch of
/// 10 million takes seconds, so a few timed runs are the measurement; the files are rewritten in place each run.
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 3)]
[MemoryDiagnoser]
public class ClearingBenchmarks
{
    private static readonly int[] BankCodes = [102, 103, 104, 105];
    private static readonly string[] Institutions = ["ALIPAY", "TENPAY", "YEEPAY"];

    [Params(1_000_000, 10_000_000)]
    public int Transactions { get; set; }

    private string _dataDirectory = "";
    private ClosedBatch _batch = null!;

    [GlobalSetup]
    public void WriteRecords()
    {
        _dataDirectory = Path.Combine(Path.GetTempPath(), "switch-bench-clearing-" + Guid.NewGuid().ToString("N"));
        string batchDirectory = ClearingFiles.BatchDirectory(_dataDirectory, 1);
        Directory.CreateDirectory(batchDirectory);
        var bankTotals = new long[BankCodes.Length];
        var institutionCredits = new long[Institutions.Length];
        var institutionFees = new long[Institutions.Length];
        var bankCounts = new long[BankCodes.Length];
        var institutionCounts = new long[Institutions.Length];
        long feesFen = 0, succeeded = 0;
        var random = new Random(20261130);
        const long startUs = 1_764_460_800_000_000;
        byte[] buffer = new byte[BatchRecord.Bytes * 4096];
        using (var records = new FileStream(Path.Combine(batchDirectory, ClearingFiles.RecordsFile), FileMode.Create, FileAccess.Write))
        {
            var feed = new OutputEvent { Kind = OutputKind.Feed, BatchId = 1, RequestType = RequestType.AgreementPayment };
            for (int i = 0; i < Transactions; i++)
            {
                int bank = i % BankCodes.Length, institution = i % Institutions.Length;
                feed.TransactionId = i + 1;
                feed.InstitutionIndex = institution;
                feed.BankCode = BankCodes[bank];
                feed.AmountFen = random.Next(1, 5_000_000);
                feed.FeeFen = feed.AmountFen * 6 / 10_000;
                feed.ReceivedUs = startUs + i * 5L;
                feed.FinalUs = feed.ReceivedUs + 2_000;
                feed.Status = random.Next(50) == 0 ? TransactionStatus.Failed : TransactionStatus.Succeeded;
                feed.OrderNo.Set($"ORD-{i:D12}");
                feed.Reason.Set(feed.Status == TransactionStatus.Failed ? "INSUFFICIENT_FUNDS" : "");
                int at = (i % 4096) * BatchRecord.Bytes;
                BatchRecord.Write(feed, buffer.AsSpan(at));
                if (i % 4096 == 4095 || i == Transactions - 1) records.Write(buffer, 0, at + BatchRecord.Bytes);
                if (feed.Status != TransactionStatus.Succeeded) continue;
                // A payment: the payer's bank pays the amount, the institution receives it less the fee.
                bankTotals[bank] += feed.AmountFen;
                bankCounts[bank]++;
                institutionCredits[institution] += feed.AmountFen;
                institutionFees[institution] += feed.FeeFen;
                institutionCounts[institution]++;
                feesFen += feed.FeeFen;
                succeeded++;
            }
        }
        var positions = new List<ParticipantPosition>();
        for (int b = 0; b < BankCodes.Length; b++)
        {
            positions.Add(new ParticipantPosition(ParticipantKind.Bank, BankCodes[b].ToString("D3"), bankTotals[b], 0, 0, -bankTotals[b], bankCounts[b]));
        }
        for (int i = 0; i < Institutions.Length; i++)
        {
            positions.Add(new ParticipantPosition(ParticipantKind.Institution, Institutions[i], institutionFees[i], institutionCredits[i],
                institutionFees[i], institutionCredits[i] - institutionFees[i], institutionCounts[i]));
        }
        positions.Add(new ParticipantPosition(ParticipantKind.SwitchFee, ClosedBatch.SwitchFeeId, 0, feesFen, feesFen, feesFen, succeeded));
        _batch = new ClosedBatch(1, startUs, startUs + Transactions * 5L + 10_000, "bench", Transactions, positions);
    }

    [Benchmark]
    public void GenerateBatchFiles() => BatchFileGenerator.Generate(_dataDirectory, _batch);

    [GlobalCleanup]
    public void RemoveFiles() => Directory.Delete(_dataDirectory, recursive: true);
}
