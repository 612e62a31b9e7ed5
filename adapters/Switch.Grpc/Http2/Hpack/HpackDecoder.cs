namespace Switch.Grpc.Http2.Hpack;

/// <summary>
/// Decodes header blocks (RFC 7541): indexed fields, literals with incremental indexing, without indexing and never
/// indexed (each with an indexed or a new name), dynamic table size updates, Huffman strings. Every limit is fixed at
/// construction and all memory is allocated then: decoding allocates nothing. A field's name and value reach the sink
/// as spans into the block itself (a plain literal), the decoder's scratch buffer (a Huffman literal) or its tables.
/// Not thread-safe: one decoder per connection, used by the connection's reader only (the dynamic table is the
/// connection's state, updated block by block in order).
/// </summary>
public sealed class HpackDecoder
{
    private readonly HpackDynamicTable _table;
    // Huffman-decoded names and values (and a name copied out of the table before an insertion that may evict it):
    // one field's name and value together are at most the header list's limit.
    private readonly byte[] _scratch;

    /// <param name="maxDynamicTableBytes">The SETTINGS_HEADER_TABLE_SIZE this side announces: the most a size update
    /// may set, and the table's initial maximum.</param>
    /// <param name="maxHeaderListBytes">The most one block may decode to, counting each field as name + value + 32
    /// bytes (SETTINGS_MAX_HEADER_LIST_SIZE).</param>
    public HpackDecoder(int maxDynamicTableBytes = 4096, int maxHeaderListBytes = 65536)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxHeaderListBytes, HpackDynamicTable.EntryOverheadBytes);
        _table = new HpackDynamicTable(maxDynamicTableBytes);
        MaxHeaderListBytes = maxHeaderListBytes;
        _scratch = new byte[maxHeaderListBytes];
    }

    public int MaxHeaderListBytes { get; }

    public int MaxDynamicTableBytes => _table.LimitBytes;

    /// <summary>The dynamic table's current maximum size, as the peer's last size update set it.</summary>
    public int DynamicTableMaxSizeBytes => _table.MaxSizeBytes;

    /// <summary>The dynamic table's size (entries' name + value + 32).</summary>
    public int DynamicTableSizeBytes => _table.SizeBytes;

    public int DynamicTableCount => _table.Count;

    /// <summary>Dynamic table entry <paramref name="index"/>, 1 the newest: for tests and diagnostics.</summary>
    public void DynamicTableEntry(int index, out ReadOnlySpan<byte> name, out ReadOnlySpan<byte> value) => _table.Get(index, out name, out value);

    /// <summary>
    /// Decodes one complete header block (a HEADERS frame's fragment and any CONTINUATIONs, concatenated), calling
    /// <paramref name="sink"/> once per field, in order. Throws <see cref="HpackException"/> on malformed input or a
    /// block over the limits; the dynamic table is then in an undefined state and the connection must be failed
    /// (COMPRESSION_ERROR). Fields before the error have already reached the sink.
    /// </summary>
    public void Decode(ReadOnlySpan<byte> block, IHeaderSink sink)
    {
        int at = 0;
        bool fieldSeen = false;
        long listBytes = 0;
        while (at < block.Length)
        {
            int start = at;
            byte first = block[at];
            if ((first & 0x80) != 0)
            {
                // §6.1 indexed field: 1xxxxxxx.
                int index = ReadInteger(block, ref at, 7);
                if (index == 0) throw new HpackException("indexed field with index 0", start);
                Lookup(index, start, out ReadOnlySpan<byte> name, out ReadOnlySpan<byte> value);
                Emit(name, value, start, ref listBytes, sink);
                fieldSeen = true;
            }
            else if ((first & 0xC0) == 0x40)
            {
                // §6.2.1 literal with incremental indexing: 01xxxxxx, the name's index on 6 bits (0: a new name).
                int nameIndex = ReadInteger(block, ref at, 6);
                ReadOnlySpan<byte> name;
                int scratchUsed = 0;
                if (nameIndex == 0)
                {
                    name = ReadString(block, ref at, ref scratchUsed);
                }
                else
                {
                    Lookup(nameIndex, start, out name, out _);
                    if (nameIndex > HpackStaticTable.Count)
                    {
                        // Adding the entry may evict the one this name lies in and write over it (RFC 7541 §4.4).
                        if (name.Length > _scratch.Length - HpackDynamicTable.EntryOverheadBytes)
                            throw ListTooLong(name.Length + HpackDynamicTable.EntryOverheadBytes, start);
                        name.CopyTo(_scratch);
                        name = _scratch.AsSpan(0, name.Length);
                        scratchUsed = name.Length;
                    }
                }
                ReadOnlySpan<byte> value = ReadString(block, ref at, ref scratchUsed);
                _table.Add(name, value);
                Emit(name, value, start, ref listBytes, sink);
                fieldSeen = true;
            }
            else if ((first & 0xE0) == 0x20)
            {
                // §6.3 dynamic table size update: 001xxxxx, only before the block's first field (§4.2).
                int maxSizeBytes = ReadInteger(block, ref at, 5);
                if (fieldSeen) throw new HpackException("dynamic table size update after a header field", start);
                if (maxSizeBytes > _table.LimitBytes)
                    throw new HpackException($"dynamic table size update to {maxSizeBytes} bytes, over the {_table.LimitBytes} announced", start);
                _table.SetMaxSize(maxSizeBytes);
            }
            else
            {
                // §6.2.2 without indexing (0000xxxx) and §6.2.3 never indexed (0001xxxx): the name's index on 4 bits.
                // Never indexed only binds intermediaries that re-encode; a decoder treats both alike.
                int nameIndex = ReadInteger(block, ref at, 4);
                ReadOnlySpan<byte> name;
                int scratchUsed = 0;
                if (nameIndex == 0) name = ReadString(block, ref at, ref scratchUsed);
                else Lookup(nameIndex, start, out name, out _);
                ReadOnlySpan<byte> value = ReadString(block, ref at, ref scratchUsed);
                Emit(name, value, start, ref listBytes, sink);
                fieldSeen = true;
            }
        }
    }

    private void Emit(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, int start, ref long listBytes, IHeaderSink sink)
    {
        listBytes += (long)name.Length + value.Length + HpackDynamicTable.EntryOverheadBytes;
        if (listBytes > MaxHeaderListBytes) throw ListTooLong(listBytes, start);
        sink.OnHeader(name, value);
    }

    private HpackException ListTooLong(long listBytes, int start) =>
        new($"header list of at least {listBytes} bytes, over the limit of {MaxHeaderListBytes}", start);

    private void Lookup(int index, int start, out ReadOnlySpan<byte> name, out ReadOnlySpan<byte> value)
    {
        if (index <= HpackStaticTable.Count)
        {
            name = HpackStaticTable.Name(index);
            value = HpackStaticTable.Value(index);
            return;
        }
        int dynamicIndex = index - HpackStaticTable.Count;
        if (dynamicIndex > _table.Count)
            throw new HpackException($"index {index} beyond the tables ({HpackStaticTable.Count} static + {_table.Count} dynamic entries)", start);
        _table.Get(dynamicIndex, out name, out value);
    }

    /// <summary>
    /// Reads a string (§5.2): H bit, length on 7 bits, the bytes. A plain string is returned where it lies in the block;
    /// a Huffman one is decoded into the scratch buffer after the <paramref name="scratchUsed"/> bytes already in use.
    /// </summary>
    private ReadOnlySpan<byte> ReadString(ReadOnlySpan<byte> block, scoped ref int at, scoped ref int scratchUsed)
    {
        int start = at;
        if (at >= block.Length) throw new HpackException("header block ends before a string", start);
        bool huffman = (block[at] & 0x80) != 0;
        int length = ReadInteger(block, ref at, 7);
        if (length > block.Length - at)
            throw new HpackException($"string of {length} bytes, but the block has {block.Length - at} left", start);
        ReadOnlySpan<byte> bytes = block.Slice(at, length);
        at += length;
        if (!huffman) return bytes;
        Span<byte> into = _scratch.AsSpan(scratchUsed);
        int written = HpackHuffman.Decode(bytes, into, start);
        scratchUsed += written;
        return into[..written];
    }

    /// <summary>
    /// Reads an integer with an N-bit prefix (§5.1) starting at <paramref name="at"/>. Rejects a value over
    /// <see cref="int.MaxValue"/>, an encoding that ends early, and an over-long one (a last byte of zero after the
    /// first continuation byte adds nothing: no encoder writes it, and a run of them could pad an integer forever).
    /// </summary>
    internal static int ReadInteger(ReadOnlySpan<byte> block, ref int at, int prefixBits)
    {
        int start = at;
        int mask = (1 << prefixBits) - 1;
        int value = block[at++] & mask;
        if (value < mask) return value;
        long sum = value;
        for (int shift = 0; ; shift += 7)
        {
            if (at >= block.Length) throw new HpackException("header block ends inside an integer", start);
            byte next = block[at++];
            sum += (long)(next & 0x7F) << shift;
            if (sum > int.MaxValue) throw new HpackException($"integer over {int.MaxValue}", start);
            if ((next & 0x80) == 0)
            {
                if (next == 0 && shift > 0) throw new HpackException("integer encoded with a redundant zero byte", start);
                return (int)sum;
            }
            // Five continuation bytes carry 35 bits: a sixth could only be zero (over-long) or overflow.
            if (shift == 28) throw new HpackException("integer longer than 5 continuation bytes", start);
        }
    }
}
