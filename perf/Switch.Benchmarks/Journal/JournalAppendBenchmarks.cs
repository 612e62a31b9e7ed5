using BenchmarkDotNet.Attributes;
using FASTER.core;
using Switch.Journal;

namespace Switch.Benchmarks.Journal;

/// <summary>
/// The journaler's hot path: Append 100-byte records, Commit once per 4096 (one ring batch), to files in a temp
/// directory. One operation = one record, so the reported mean is time per record (records/s = 1 / mean).
/// The raw FasterLog baseline does the same with its own Enqueue and Commit, to show what framing costs.
/// Each iteration starts a fresh journal so the log size, and the disk it takes, stay bounded.
/// </summary>
[MemoryDiagnoser]
public class JournalAppendBenchmarks
{
    private const int RecordBytes = 100;
    private const int RecordsPerCommit = 4096;
    private const int RecordsPerInvocation = 128 * RecordsPerCommit; // 524,288 records, about 64 MiB of log

    private readonly byte[] _record = new byte[RecordBytes];
    private readonly byte[] _rawEntry = new byte[RecordBytes + 20]; // same entry size as a framed record
    private string _directory = "";
    private EventJournal? _journal;
    private IDevice? _rawDevice;
    private FasterLog? _rawLog;

    private static readonly JournalOptions Defaults = new() { DirectoryPath = "unused" };

    [IterationSetup(Target = nameof(EventJournalAppend))]
    public void OpenJournal()
    {
        _directory = NewDirectory();
        _journal = EventJournal.Open(new JournalOptions { DirectoryPath = _directory });
        _journal.Replay(new NoVisitor());
    }

    [IterationSetup(Target = nameof(RawFasterLogEnqueue))]
    public void OpenRawLog()
    {
        _directory = NewDirectory();
        _rawDevice = Devices.CreateLogDevice(Path.Combine(_directory, "log", "raw"));
        _rawLog = new FasterLog(new FasterLogSettings
        {
            LogDevice = _rawDevice,
            LogCommitDir = Path.Combine(_directory, "commits"),
            PageSize = Defaults.PageSizeBytes,
            MemorySize = Defaults.MemorySizeBytes,
            SegmentSize = Defaults.SegmentSizeBytes,
        });
    }

    [IterationCleanup]
    public void Close()
    {
        _journal?.Dispose();
        _rawLog?.Dispose();
        _rawDevice?.Dispose();
        (_journal, _rawLog, _rawDevice) = (null, null, null);
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark(OperationsPerInvoke = RecordsPerInvocation)]
    public long EventJournalAppend()
    {
        var journal = _journal!;
        long last = 0;
        for (int i = 0; i < RecordsPerInvocation; i++)
        {
            _record[0] = (byte)i;
            last = journal.Append(_record);
            if ((i + 1) % RecordsPerCommit == 0) journal.Commit();
        }
        return last;
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = RecordsPerInvocation)]
    public long RawFasterLogEnqueue()
    {
        var log = _rawLog!;
        long last = 0;
        for (int i = 0; i < RecordsPerInvocation; i++)
        {
            _rawEntry[0] = (byte)i;
            last = log.Enqueue(_rawEntry.AsSpan());
            if ((i + 1) % RecordsPerCommit == 0) log.Commit(spinWait: true);
        }
        return last;
    }

    private static string NewDirectory() =>
        Path.Combine(Path.GetTempPath(), "switch-journal-bench", Guid.NewGuid().ToString("N"));

    private sealed class NoVisitor : IJournalVisitor
    {
        public void OnRecord(long address, ReadOnlySpan<byte> record) { }
    }
}
