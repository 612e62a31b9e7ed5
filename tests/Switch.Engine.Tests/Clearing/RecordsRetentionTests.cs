using Switch.Clearing;
using Switch.Engine.Clearing;
using Switch.Engine.Events;
using Switch.Engine.Logging;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Clearing;

/// <summary>Pruning of the per-transaction working records, and the alert when file generation fails.</summary>
public sealed class RecordsRetentionTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static LogicHarness TwoBatches()
    {
        var h = new LogicHarness();
        h.PayAndSettle("R1", 1_000, BankReply.Succeeded);
        h.CloseBatch();
        h.PayAndSettle("R2", 2_000, BankReply.Succeeded);
        h.CloseBatch();
        return h;
    }

    [Theory]
    [InlineData(0L, false)]
    [InlineData(ClearingRecorder.DefaultRecordsRetentionUs, true)]
    public void Records_of_complete_batches_older_than_the_retention_are_pruned_and_the_business_files_kept(long retentionUs, bool kept)
    {
        string data = _dir.Sub($"r{retentionUs}");
        using (var recorder = new ClearingRecorder(data, new RecordingLog(), retentionUs))
        {
            foreach (OutputEvent o in TwoBatches().Sink.Outputs) recorder.Record(o);
            Assert.True(recorder.WaitForFiles(2, 20_000), recorder.Fault?.ToString());
        }
        for (long batch = 1; batch <= 2; batch++)
        {
            string dir = ClearingFiles.BatchDirectory(data, batch);
            Assert.Equal(kept, File.Exists(Path.Combine(dir, ClearingFiles.RecordsFile)));
            Assert.True(File.Exists(Path.Combine(dir, ClearingFiles.SettlementFile)));
            Assert.True(File.Exists(Path.Combine(dir, ClearingFiles.BankFile(102))));
        }
    }

    [Fact]
    public void A_failed_generation_raises_one_alert_line_and_stops()
    {
        var log = new RecordingLog();
        string data = _dir.Sub("fault");
        Directory.CreateDirectory(Path.Combine(ClearingFiles.BatchDirectory(data, 1), ClearingFiles.SettlementFile + ".tmp"));
        using (var recorder = new ClearingRecorder(data, log))
        {
            foreach (OutputEvent o in TwoBatches().Sink.Outputs) recorder.Record(o);
            Assert.False(recorder.WaitForFiles(2, 20_000));
            Assert.NotNull(recorder.Fault);
        }
        RecordingLog.Entry alert = Assert.Single(log.Entries);
        Assert.Equal((LogSeverity.Alert, "clearing_files_failed", 1L), (alert.Severity, alert.Event, alert.Fields["batch"]));
        Assert.False(ClearingFiles.IsComplete(data, 2)); // later batches wait for the operators
    }
}
