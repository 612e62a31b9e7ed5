using Switch.Clearing;
using Switch.Engine.Clearing;
using Switch.Engine.Events;
using Switch.Engine.Logging;

namespace Switch.Host.Tests.Logging;

/// <summary>The engine side logs through the host's one log: its records are the same logfmt records as the host's.</summary>
public sealed class EngineLogTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "switch-engine-log-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_data)) Directory.Delete(_data, recursive: true);
    }

    [Fact]
    public void A_clearing_failure_on_the_engine_side_is_one_structured_alert_record_of_the_host_log()
    {
        var output = new StringWriter();
        var errors = new StringWriter();
        var log = new Log(output, errors);
        Exception? fault;
        // A directory where the settlement file's temporary copy goes: writing the batch's files fails.
        Directory.CreateDirectory(Path.Combine(ClearingFiles.BatchDirectory(_data, 1), ClearingFiles.SettlementFile + ".tmp"));
        using (var recorder = new ClearingRecorder(_data, log))
        {
            var closed = new OutputEvent { Kind = OutputKind.BatchClosed, BatchId = 1, BatchOpenedUs = 1_000, BatchClosedUs = 2_000, ParticipantCount = 0 };
            recorder.Record(closed);
            Assert.False(recorder.WaitForFiles(1, 20_000));
            fault = recorder.Fault;
            Assert.NotNull(fault);
        }

        Assert.Equal("", output.ToString()); // an alert goes to the error stream only
        string line = Assert.Single(errors.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        LogRecord record = LogRecord.TryParse(line) ?? throw new Xunit.Sdk.XunitException($"not a log record: {line}");
        Assert.Equal(("alert", "clearing_files_failed", "1"), (record.Level, record.Event, record["batch"]));
        Assert.Equal($"{fault.GetType().Name}: {fault.Message}", record["error"]);
    }

    [Theory]
    [InlineData(LogSeverity.Info, "info", false)]
    [InlineData(LogSeverity.Warn, "warn", false)]
    [InlineData(LogSeverity.Error, "error", true)]
    [InlineData(LogSeverity.Alert, "alert", true)]
    public void Each_engine_severity_is_the_log_level_of_the_same_name(LogSeverity severity, string level, bool toErrors)
    {
        var output = new StringWriter();
        var errors = new StringWriter();
        IEventLog log = new Log(output, errors);
        log.Write(severity, "engine_said", "something", ("batch", 7L), ("note", "a b"));
        string line = (toErrors ? errors : output).ToString().TrimEnd('\n');
        Assert.Equal("", (toErrors ? output : errors).ToString());
        LogRecord record = LogRecord.TryParse(line)!;
        Assert.Equal((level, "engine_said", "something", "7", "a b"), (record.Level, record.Event, record.Message, record["batch"], record["note"]));
    }
}
