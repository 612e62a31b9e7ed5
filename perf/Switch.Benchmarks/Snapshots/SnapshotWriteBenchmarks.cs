using BenchmarkDotNet.Attributes;
using Switch.Engine.Snapshots;

namespace Switch.Benchmarks.Snapshots;

/// <summary>
/// The snapshot writer's own work on the arrays, without a budget: each page read from its capture, looked at for
/// zeros, encoded sparse, checksummed and written (<c>O_DIRECT</c> where the temporary directory allows it; put it on
/// tmpfs, <c>TMPDIR=/dev/shm</c>, to leave the disk out). The arrays are shaped like the switch's: a table of
/// 344-byte records (43 words) whose fields are zero in some places and set in others, record after record (about 60%
/// of the words zero, as in a full table), and an array as large of zeros (the parked table). One operation is one
/// snapshot of both: 192 MiB of pages.
/// </summary>
public class SnapshotWriteBenchmarks
{
    private const int RecordWords = 43;
    private const int TableWords = 16 << 20; // 128 MiB
    private const int ZeroWords = 8 << 20;   // 64 MiB

    private long[] _table = null!;
    private long[] _zeros = null!;
    private PageCapture<long> _tableCapture = null!;
    private PageCapture<long> _zeroCapture = null!;
    private string _directory = "";
    private readonly byte[] _config = "{}"u8.ToArray();

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(13);
        // Which of a record's words its fields use (the rest stay zero in every record), then each used one set or not
        // record by record (an optional field, a counter still 0).
        bool[] used = new bool[RecordWords];
        for (int w = 0; w < RecordWords; w++) used[w] = random.NextDouble() < 0.48;
        _table = new long[TableWords];
        for (int i = 0; i < _table.Length; i++)
            if (used[i % RecordWords] && random.NextDouble() < 0.85) _table[i] = random.NextInt64(1, long.MaxValue);
        _zeros = new long[ZeroWords];
        _tableCapture = new PageCapture<long>(_table);
        _zeroCapture = new PageCapture<long>(_zeros);
        _directory = Path.Combine(Path.GetTempPath(), "snapshot-write-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_directory);
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_directory, recursive: true);

    [Benchmark]
    public long WriteSnapshot()
    {
        _tableCapture.Begin();
        _zeroCapture.Begin();
        string path = Path.Combine(_directory, SnapshotFile.NameFor(1));
        return SnapshotFile.Write(path, new SnapshotPosition(1, 0, 1, 1), _config, [], [_tableCapture, _zeroCapture],
            views: static () => [], beforePublish: static () => null);
    }
}
