using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Switch.Clearing;

/// <summary>What a comparison needs of one reconciliation line, in 64 fixed bytes (no references): sortable in
/// bulk and written to run files as raw memory.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct ReconEntry
{
    public const int Bytes = 64;
    /// <summary>The switch's order numbers are at most 32 bytes; a longer one in a file is malformed.</summary>
    public const int OrderNoMaxBytes = 32;

    public long SwitchId;
    public long AmountFen;
    public long FeeFen;
    /// <summary>The line in its file (1-based), for errors.</summary>
    public int LineNo;
    public bool Succeeded;
    public byte OrderNoLength;
    private short _unused;
    public OrderNoBytes OrderNoUtf8;

    public static ReconEntry From(ReconLine line, int lineNo)
    {
        var e = new ReconEntry
        {
            SwitchId = line.SwitchId, AmountFen = line.AmountFen, FeeFen = line.FeeFen, LineNo = lineNo,
            Succeeded = line.Status == "SUCCEEDED",
        };
        e.OrderNoLength = (byte)Encoding.UTF8.GetBytes(line.OrderNo, e.OrderNoUtf8);
        return e;
    }

    public readonly string OrderNo => Encoding.UTF8.GetString(((ReadOnlySpan<byte>)OrderNoUtf8)[..OrderNoLength]);
    public readonly string Status => Succeeded ? "SUCCEEDED" : "FAILED";

    [InlineArray(OrderNoMaxBytes)]
    public struct OrderNoBytes
    {
        private byte _first;
    }

    /// <summary>By switch id, then line: a duplicate id's occurrences come out in file order.</summary>
    public readonly struct ByIdThenLine : IComparer<ReconEntry>
    {
        public int Compare(ReconEntry a, ReconEntry b) => a.SwitchId != b.SwitchId ? a.SwitchId.CompareTo(b.SwitchId) : a.LineNo.CompareTo(b.LineNo);
    }
}

/// <summary>
/// A reconciliation file read once, line by line (every field, the totals and the body hash checked as it goes), its
/// entries sorted by switch id in bounded memory: runs of at most <c>runEntries</c> are sorted in memory and, when the
/// file holds more, written to temporary run files and merged back on reading. Memory: the run buffer (64 bytes per
/// entry, at most <see cref="DefaultRunEntries"/> = 16 MiB) plus a 64 KiB read buffer per run while merging, whatever
/// the file's size; a file that would take more than <see cref="MaxRuns"/> runs is refused.
/// </summary>
public sealed class SortedReconFile : IDisposable
{
    public const int DefaultRunEntries = 1 << 18;
    public const int MaxRuns = 1024;
    private const int MergeBufferEntries = 1024;

    private readonly string _tempDirectory;
    private readonly string _runPrefix = $"sort-{Guid.NewGuid():N}-";
    private readonly List<string> _runs = new();
    private ReconEntry[] _buffer;
    private int _buffered;
    private readonly int _runEntries;

    static SortedReconFile()
    {
        if (Unsafe.SizeOf<ReconEntry>() != ReconEntry.Bytes) throw new InvalidOperationException($"recon entry: {Unsafe.SizeOf<ReconEntry>()} bytes, not {ReconEntry.Bytes}");
    }

    private SortedReconFile(string tempDirectory, int runEntries)
    {
        if (runEntries < 2) throw new ArgumentOutOfRangeException(nameof(runEntries));
        _tempDirectory = tempDirectory;
        _runEntries = runEntries;
        // Grows up to the run size: a small file takes small memory.
        _buffer = new ReconEntry[Math.Min(runEntries, 4096)];
    }

    public ReconHeader Header { get; private set; } = null!;
    public ReconTotals Totals { get; private set; }
    public long Lines => Totals.Count;
    /// <summary>Runs spilled to disk (0: the file fit in one run in memory).</summary>
    public int SpilledRuns => _runs.Count;

    /// <summary>Reads and checks <paramref name="stream"/>; throws <see cref="ClearingFormatException"/> naming the line.</summary>
    public static SortedReconFile Read(Stream stream, long maxBytes, string tempDirectory, int runEntries = DefaultRunEntries)
    {
        var file = new SortedReconFile(tempDirectory, runEntries);
        try
        {
            (ReconHeader header, ReconTotals totals) = ReconciliationFile.Read(stream, maxBytes, (lineNo, line) => file.Add(ReconEntry.From(line, lineNo)));
            file.Header = header;
            file.Totals = totals;
            file.SortLastRun();
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private void Add(in ReconEntry entry)
    {
        if (_buffered == _buffer.Length)
        {
            if (_buffer.Length < _runEntries) Array.Resize(ref _buffer, Math.Min(_runEntries, _buffer.Length * 2));
            else Spill();
        }
        _buffer[_buffered++] = entry;
    }

    private void Spill()
    {
        if (_runs.Count == MaxRuns) throw new ClearingFormatException(0, $"more than {(long)MaxRuns * _runEntries} lines");
        Span<ReconEntry> run = _buffer.AsSpan(0, _buffered);
        run.Sort(new ReconEntry.ByIdThenLine());
        Directory.CreateDirectory(_tempDirectory);
        string path = Path.Combine(_tempDirectory, _runPrefix + _runs.Count + ".run");
        _runs.Add(path);
        using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
        {
            file.Write(MemoryMarshal.AsBytes(run));
        }
        _buffered = 0;
    }

    private void SortLastRun()
    {
        // With runs on disk the last one joins them; else it stays in memory, sorted.
        if (_runs.Count > 0 && _buffered > 0) Spill();
        else _buffer.AsSpan(0, _buffered).Sort(new ReconEntry.ByIdThenLine());
    }

    /// <summary>The entries by switch id (then line). Enumerate once.</summary>
    public IEnumerable<ReconEntry> Sorted()
    {
        if (_runs.Count == 0)
        {
            for (int i = 0; i < _buffered; i++) yield return _buffer[i];
            yield break;
        }
        _buffer = []; // the runs are on disk: the sort buffer is no longer needed
        var readers = new List<RunReader>(_runs.Count);
        try
        {
            var heads = new PriorityQueue<int, ReconEntry>(_runs.Count, new ReconEntry.ByIdThenLine());
            foreach (string path in _runs)
            {
                var reader = new RunReader(path);
                readers.Add(reader);
                if (reader.TryNext(out ReconEntry first)) heads.Enqueue(readers.Count - 1, first);
            }
            while (heads.TryDequeue(out int run, out ReconEntry entry))
            {
                yield return entry;
                if (readers[run].TryNext(out ReconEntry next)) heads.Enqueue(run, next);
            }
        }
        finally
        {
            foreach (RunReader r in readers) r.Dispose();
        }
    }

    public void Dispose()
    {
        foreach (string path in _runs) File.Delete(path);
        _runs.Clear();
        _buffer = [];
    }

    private sealed class RunReader(string path) : IDisposable
    {
        private readonly FileStream _file = new(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
        private readonly ReconEntry[] _entries = new ReconEntry[MergeBufferEntries];
        private int _count, _next;

        public bool TryNext(out ReconEntry entry)
        {
            if (_next == _count)
            {
                int read = _file.ReadAtLeast(MemoryMarshal.AsBytes(_entries.AsSpan()), _entries.Length * ReconEntry.Bytes, throwOnEndOfStream: false);
                if (read % ReconEntry.Bytes != 0) throw new InvalidDataException($"clearing: sort run {path} ends in a torn entry");
                _count = read / ReconEntry.Bytes;
                _next = 0;
                if (_count == 0)
                {
                    entry = default;
                    return false;
                }
            }
            entry = _entries[_next++];
            return true;
        }

        public void Dispose() => _file.Dispose();
    }
}
