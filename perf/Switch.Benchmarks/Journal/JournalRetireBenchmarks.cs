using BenchmarkDotNet.Attributes;
using Switch.Journal;

namespace Switch.Benchmarks.Journal;

/// <summary>
/// A retirement as a snapshot's end runs it: a journal of <see cref="LogMiB"/> MiB of 200-byte records with the default
/// options (1 MiB pages, 8 MiB in memory: nearly all of it read back from the segment files), all but its last record
/// retired into an archive file, with no write budget. One operation = one retirement; Allocated / <see cref="LogMiB"/>
/// is the allocation per retired MiB (all threads: the memory diagnoser counts the process's).
/// Run: dotnet run -c Release --project perf/Switch.Benchmarks -- --filter '*JournalRetire*'
/// </summary>
[MemoryDiagnoser]
[SimpleJob(invocationCount: 1, iterationCount: 6, warmupCount: 1)]
public class JournalRetireBenchmarks
{
    public const int LogMiB = 64;
    private const int RecordBytes = 200;
    private const int RecordsPerCommit = 4096;

    private readonly byte[] _record = new byte[RecordBytes];
    private string _directory = "";
    private EventJournal? _journal;
    private long _lastAddress;
    private long _lastRecordNo;

    [IterationSetup]
    public void Fill()
    {
        _directory = Path.Combine(Path.GetTempPath(), "switch-bench-retire-" + Guid.NewGuid().ToString("N"));
        _journal = EventJournal.Open(new JournalOptions { DirectoryPath = Path.Combine(_directory, "journal") });
        _journal.Replay(new NoRecords());
        long records = 0;
        while (true)
        {
            BitConverter.TryWriteBytes(_record, records);
            _lastAddress = _journal.Append(_record);
            _lastRecordNo = records++;
            if (records % RecordsPerCommit == 0)
            {
                _journal.Commit();
                if (_lastAddress >= (long)LogMiB << 20) break;
            }
        }
        _journal.Commit();
    }

    [IterationCleanup]
    public void Close()
    {
        _journal?.Dispose();
        _journal = null;
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark]
    public long Retire() => _journal!.Retire(_lastAddress, _lastRecordNo, Path.Combine(_directory, "archive"));

    private sealed class NoRecords : IJournalVisitor
    {
        public void OnRecord(long address, ReadOnlySpan<byte> record) => throw new InvalidOperationException("a fresh journal has no records");
    }
}
