namespace Switch.Grpc.Http2.Hpack;

/// <summary>
/// Writes header field representations (RFC 7541 §6) without the dynamic table and without Huffman coding: a request's
/// few headers gain little from either, and the peer's decoder then keeps no state for us. Each method returns the
/// bytes written, or -1 when <c>into</c> is too small (nothing useful is written then). Names must be lower case
/// (RFC 7540 §8.1.2); this writes bytes as given.
/// </summary>
public static class HpackEncoder
{
    /// <summary>§6.1 indexed field: a static entry's name and value, e.g. <see cref="HpackStaticTable.Method_POST"/>.</summary>
    public static int WriteIndexed(int staticIndex, Span<byte> into)
    {
        CheckStaticIndex(staticIndex);
        return WriteInteger(staticIndex, 7, 0x80, into);
    }

    /// <summary>§6.2.2 literal without indexing, the name a static entry's (e.g. <see cref="HpackStaticTable.Path"/>).</summary>
    public static int WriteLiteralWithIndexedName(int staticNameIndex, ReadOnlySpan<byte> value, Span<byte> into)
    {
        CheckStaticIndex(staticNameIndex);
        int written = WriteInteger(staticNameIndex, 4, 0x00, into);
        return Then(written, WriteString(value, Rest(into, written)));
    }

    /// <summary>§6.2.2 literal without indexing with a new name.</summary>
    public static int WriteLiteral(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, Span<byte> into)
    {
        if (into.IsEmpty) return -1;
        into[0] = 0x00;
        int written = Then(1, WriteString(name, into[1..]));
        return Then(written, WriteString(value, Rest(into, written)));
    }

    /// <summary>§5.1: <paramref name="value"/> with an N-bit prefix, the first byte's other bits <paramref name="pattern"/>.</summary>
    internal static int WriteInteger(int value, int prefixBits, byte pattern, Span<byte> into)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(value);
        int mask = (1 << prefixBits) - 1;
        if (into.IsEmpty) return -1;
        if (value < mask)
        {
            into[0] = (byte)(pattern | value);
            return 1;
        }
        into[0] = (byte)(pattern | mask);
        int rest = value - mask;
        int written = 1;
        while (rest >= 0x80)
        {
            if (written == into.Length) return -1;
            into[written++] = (byte)(rest & 0x7F | 0x80);
            rest >>= 7;
        }
        if (written == into.Length) return -1;
        into[written++] = (byte)rest;
        return written;
    }

    /// <summary>§5.2 string literal, not Huffman coded: H = 0, the length on 7 bits, the bytes.</summary>
    private static int WriteString(ReadOnlySpan<byte> value, Span<byte> into)
    {
        int written = WriteInteger(value.Length, 7, 0x00, into);
        if (written < 0 || value.Length > into.Length - written) return -1;
        value.CopyTo(into[written..]);
        return written + value.Length;
    }

    private static Span<byte> Rest(Span<byte> into, int written) => written < 0 ? default : into[written..];

    private static int Then(int written, int more) => written < 0 || more < 0 ? -1 : written + more;

    private static void CheckStaticIndex(int index)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(index, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(index, HpackStaticTable.Count);
    }
}
