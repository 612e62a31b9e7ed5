namespace Switch.Grpc.Http2.Hpack;

/// <summary>
/// The decoder's dynamic table (RFC 7541 §2.3.2, §4): entries newest first, each counted as name + value + 32 bytes,
/// evicted from the oldest. Every entry's bytes lie contiguous in one arena allocated up front, so a look-up hands out
/// spans into it. The arena holds twice the largest table: an entry that does not fit before the arena's end goes
/// to its start, and the live entries, under half the arena, always leave it room there (see <see cref="Add"/>).
/// </summary>
internal sealed class HpackDynamicTable
{
    /// <summary>RFC 7541 §4.1: an entry's overhead counted in the table's size.</summary>
    public const int EntryOverheadBytes = 32;

    private readonly byte[] _arena;
    // A ring of entries, oldest at _oldest; at most limit / 32 entries fit, since each counts at least 32 bytes.
    private readonly int[] _offsets;
    private readonly int[] _nameLengths;
    private readonly int[] _valueLengths;
    private int _oldest;
    private int _count;

    public HpackDynamicTable(int limitBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limitBytes);
        // Twice the limit stays within an array's size for any limit a peer may be offered (2^30 at most here).
        ArgumentOutOfRangeException.ThrowIfGreaterThan(limitBytes, 1 << 30);
        LimitBytes = limitBytes;
        MaxSizeBytes = limitBytes;
        _arena = new byte[2 * limitBytes];
        int maxEntries = limitBytes / EntryOverheadBytes + 1;
        _offsets = new int[maxEntries];
        _nameLengths = new int[maxEntries];
        _valueLengths = new int[maxEntries];
    }

    /// <summary>The most a size update may set (the SETTINGS_HEADER_TABLE_SIZE this side announces).</summary>
    public int LimitBytes { get; }

    /// <summary>The table's current maximum size (RFC 7541 §4.2), set by size updates.</summary>
    public int MaxSizeBytes { get; private set; }

    /// <summary>The table's size: the sum of its entries' name + value + 32.</summary>
    public int SizeBytes { get; private set; }

    public int Count => _count;

    /// <summary>Entry <paramref name="index"/>, 1 the newest to <see cref="Count"/> the oldest.</summary>
    public void Get(int index, out ReadOnlySpan<byte> name, out ReadOnlySpan<byte> value)
    {
        if ((uint)(index - 1) >= (uint)_count) throw new ArgumentOutOfRangeException(nameof(index), index, $"the table holds {_count} entries");
        int slot = Slot(_count - index);
        var entry = new ReadOnlySpan<byte>(_arena, _offsets[slot], _nameLengths[slot] + _valueLengths[slot]);
        name = entry[.._nameLengths[slot]];
        value = entry[_nameLengths[slot]..];
    }

    /// <summary>Sets the maximum size (a size update: 0 to <see cref="LimitBytes"/>), evicting the oldest entries
    /// until the table fits.</summary>
    public void SetMaxSize(int maxSizeBytes)
    {
        if ((uint)maxSizeBytes > (uint)LimitBytes) throw new ArgumentOutOfRangeException(nameof(maxSizeBytes), maxSizeBytes, $"over the limit {LimitBytes}");
        MaxSizeBytes = maxSizeBytes;
        EvictUntil(maxSizeBytes);
    }

    /// <summary>
    /// Adds an entry as the newest (RFC 7541 §4.4): evicts the oldest until it fits, or empties the table if it is
    /// larger than the maximum size. <paramref name="name"/> and <paramref name="value"/> must not lie in this table
    /// (an entry evicted here may be overwritten): the caller copies a name it looked up here first.
    /// </summary>
    public void Add(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        if (name.Overlaps(_arena) || value.Overlaps(_arena)) throw new ArgumentException("the entry's bytes lie in the table itself");
        long entryBytes = (long)name.Length + value.Length + EntryOverheadBytes;
        if (entryBytes > MaxSizeBytes)
        {
            EvictUntil(0);
            return;
        }
        EvictUntil(MaxSizeBytes - (int)entryBytes);
        int length = name.Length + value.Length;
        int offset = 0;
        if (_count > 0)
        {
            int newest = Slot(_count - 1);
            int newestEnd = _offsets[newest] + _nameLengths[newest] + _valueLengths[newest];
            int oldestStart = _offsets[_oldest];
            // The live bytes run from the oldest's start to the newest's end, across the arena's end when wrapped.
            bool wrapped = newestEnd < oldestStart;
            offset = newestEnd + length <= _arena.Length ? newestEnd : 0;
            // The live entries' bytes are at most MaxSizeBytes - length, under half the arena, so the space after the
            // newest (or, at the arena's end, before the oldest) holds this entry: a failure is a bug here, not input.
            bool fits = offset == newestEnd ? !wrapped || newestEnd + length <= oldestStart : !wrapped && length <= oldestStart;
            if (!fits) throw new InvalidOperationException($"dynamic table arena: an entry of {length} bytes at {offset} would overwrite live entries ({oldestStart} to {newestEnd})");
        }
        name.CopyTo(_arena.AsSpan(offset));
        value.CopyTo(_arena.AsSpan(offset + name.Length));
        int slot = Slot(_count);
        _offsets[slot] = offset;
        _nameLengths[slot] = name.Length;
        _valueLengths[slot] = value.Length;
        _count++;
        SizeBytes += (int)entryBytes;
    }

    private void EvictUntil(int sizeBytes)
    {
        while (SizeBytes > sizeBytes)
        {
            SizeBytes -= _nameLengths[_oldest] + _valueLengths[_oldest] + EntryOverheadBytes;
            _oldest = Slot(1);
            _count--;
        }
        if (_count == 0) _oldest = 0;
    }

    /// <summary>The ring slot of the entry <paramref name="fromOldest"/> places after the oldest (0 to Count).</summary>
    private int Slot(int fromOldest)
    {
        int slot = _oldest + fromOldest; // both under the ring's length: one subtraction wraps it (no division)
        return slot < _offsets.Length ? slot : slot - _offsets.Length;
    }
}
