using System.Buffers;
using Microsoft.Win32.SafeHandles;

namespace Switch.Host.Gateway;

/// <summary>What a <see cref="FeedCursor"/> read found.</summary>
public enum FeedRead
{
    /// <summary>Records were read (or none are there yet: wait on the pulse).</summary>
    Ok,
    /// <summary>The next feed number is older than the oldest kept.</summary>
    NoLongerKept,
    /// <summary>A record on disk failed its check: the file is damaged.</summary>
    Damaged,
}

/// <summary>
/// One subscriber's position in a feed: reads whole runs of records from the segment files into a pooled buffer of
/// at most <c>maxRecords</c> (the memory a subscriber costs, however far behind it is).
/// </summary>
public sealed class FeedCursor : IDisposable
{
    private readonly OutcomeFeed _feed;
    private readonly byte[] _buffer;
    private readonly int _maxRecords;
    private SafeFileHandle? _handle;
    private long _handleFirst;

    internal FeedCursor(OutcomeFeed feed, long fromFeedNo, int maxRecords)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(fromFeedNo, 1);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRecords);
        _feed = feed;
        Next = fromFeedNo;
        _maxRecords = maxRecords;
        _buffer = ArrayPool<byte>.Shared.Rent(maxRecords * FeedRecord.Bytes);
    }

    /// <summary>The next feed number to read.</summary>
    public long Next { get; private set; }

    /// <summary>The record <paramref name="i"/> of the last read.</summary>
    public ResultFields this[int i] => FeedRecord.Read(_buffer.AsSpan(i * FeedRecord.Bytes, FeedRecord.Bytes));

    /// <summary>
    /// Reads the next records (at most one segment's worth at a time); <paramref name="count"/> 0 means none are there
    /// yet: <paramref name="changed"/> completes when some are.
    /// </summary>
    public FeedRead Read(out int count, out Task? changed)
    {
        count = 0;
        changed = null;
        // Take the pulse before looking at the end, so an append between the two still wakes us.
        Task pulse = _feed.Changed();
        long readable = _feed.LastFeedNo;
        if (Next > readable)
        {
            if (Next < _feed.OldestFeedNo) return FeedRead.NoLongerKept;
            changed = pulse;
            return FeedRead.Ok;
        }
        if (Next < _feed.OldestFeedNo) return FeedRead.NoLongerKept;
        _feed.ObserveLag(Next);
        long first = _feed.SegmentFirst(Next);
        if (_handle is null || _handleFirst != first)
        {
            _handle?.Dispose();
            _handle = null;
            try
            {
                _handle = File.OpenHandle(_feed.SegmentPath(first), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            }
            catch (FileNotFoundException)
            {
                return FeedRead.NoLongerKept; // deleted by the retention since we looked
            }
            _handleFirst = first;
        }
        long last = Math.Min(readable, first + _feed.SegmentRecords - 1);
        int n = (int)Math.Min(last - Next + 1, _maxRecords);
        Span<byte> into = _buffer.AsSpan(0, n * FeedRecord.Bytes);
        long offset = (Next - first) * FeedRecord.Bytes;
        for (int done = 0; done < into.Length;)
        {
            int read = RandomAccess.Read(_handle, into[done..], offset + done);
            if (read <= 0) return FeedRead.Damaged; // shorter than the feed says it is
            done += read;
        }
        for (int i = 0; i < n; i++)
        {
            ReadOnlySpan<byte> r = into.Slice(i * FeedRecord.Bytes, FeedRecord.Bytes);
            if (!FeedRecord.IsIntact(r) || FeedRecord.FeedNoOf(r) != Next + i) return FeedRead.Damaged;
        }
        count = n;
        Next += n;
        return FeedRead.Ok;
    }

    public void Dispose()
    {
        _handle?.Dispose();
        _handle = null;
        ArrayPool<byte>.Shared.Return(_buffer);
    }
}
