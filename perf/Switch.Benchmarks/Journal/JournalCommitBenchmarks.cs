using BenchmarkDotNet.Attributes;
using Switch.Journal;

namespace Switch.Benchmarks.Journal;

/// <summary>
/// A closed loop's group commit: 32 records of 100 bytes (16 unary calls: each a request and its bank's answer), then
/// Commit; one operation = one commit, so the mean is the commit's latency. <see cref="CommitSlotEveryBytes"/> 0 is
/// the journal before one-write commits (every commit writes its slot after its data: two durable writes in a row);
/// the default (1 MiB) writes the data only, the slot once per MiB of log.
/// </summary>
[MemoryDiagnoser]
public class JournalCommitBenchmarks
{
    private const int RecordsPerCommit = 32;
    private const int CommitsPerInvocation = 200;
    private readonly byte[] _record = new byte[100];
    private string _directory = "";
    private EventJournal? _journal;

    [Params(0L, 1L << 20)]
    public long CommitSlotEveryBytes { get; set; }

    [IterationSetup]
    public void Open()
    {
        _directory = Path.Combine(Path.GetTempPath(), "switch-bench-commit-" + Guid.NewGuid().ToString("N"));
        _journal = EventJournal.Open(new JournalOptions { DirectoryPath = _directory, CommitSlotEveryBytes = CommitSlotEveryBytes });
        _journal.Replay(new NoRecords());
    }

    [IterationCleanup]
    public void Close()
    {
        _journal?.Dispose();
        _journal = null;
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark(OperationsPerInvoke = CommitsPerInvocation)]
    public long SmallGroupCommit()
    {
        var journal = _journal!;
        for (int c = 0; c < CommitsPerInvocation; c++)
        {
            for (int i = 0; i < RecordsPerCommit; i++)
            {
                _record[0] = (byte)i;
                journal.Append(_record);
            }
            journal.Commit();
        }
        return journal.DurableRecordCount;
    }

    private sealed class NoRecords : IJournalVisitor
    {
        public void OnRecord(long address, ReadOnlySpan<byte> record) => throw new InvalidOperationException("a fresh journal has no records");
    }
}
