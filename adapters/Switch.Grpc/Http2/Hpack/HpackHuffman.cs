namespace Switch.Grpc.Http2.Hpack;

/// <summary>
/// The static Huffman code of RFC 7541 Appendix B, and its decoder. The code is canonical (codes of one length are
/// consecutive, in symbol order, and each length's first code follows the previous length's last), so decoding
/// compares the next bits against each length's range instead of walking a tree; a 256-entry table resolves the
/// codes of 8 bits or fewer (all the letters, digits and common punctuation) in one look-up.
/// </summary>
internal static class HpackHuffman
{
    public const int EndOfString = 256;
    private const int MinCodeBits = 5;
    private const int MaxCodeBits = 30;

    // Appendix B's "code as hex" column, symbol 0 to 256 (EOS), transcribed from the RFC's text.
    private static readonly uint[] Codes =
    [
        0x1ff8, 0x7fffd8, 0xfffffe2, 0xfffffe3, 0xfffffe4, 0xfffffe5, 0xfffffe6, 0xfffffe7, // 0-7
        0xfffffe8, 0xffffea, 0x3ffffffc, 0xfffffe9, 0xfffffea, 0x3ffffffd, 0xfffffeb, 0xfffffec, // 8-15
        0xfffffed, 0xfffffee, 0xfffffef, 0xffffff0, 0xffffff1, 0xffffff2, 0x3ffffffe, 0xffffff3, // 16-23
        0xffffff4, 0xffffff5, 0xffffff6, 0xffffff7, 0xffffff8, 0xffffff9, 0xffffffa, 0xffffffb, // 24-31
        0x14, 0x3f8, 0x3f9, 0xffa, 0x1ff9, 0x15, 0xf8, 0x7fa, // ' ' ! " # $ % & '
        0x3fa, 0x3fb, 0xf9, 0x7fb, 0xfa, 0x16, 0x17, 0x18, // ( ) * + , - . /
        0x0, 0x1, 0x2, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, // 0-7
        0x1e, 0x1f, 0x5c, 0xfb, 0x7ffc, 0x20, 0xffb, 0x3fc, // 8 9 : ; < = > ?
        0x1ffa, 0x21, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62, // @ A-G
        0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, // H-O
        0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72, // P-W
        0xfc, 0x73, 0xfd, 0x1ffb, 0x7fff0, 0x1ffc, 0x3ffc, 0x22, // X Y Z [ \ ] ^ _
        0x7ffd, 0x3, 0x23, 0x4, 0x24, 0x5, 0x25, 0x26, // ` a-g
        0x27, 0x6, 0x74, 0x75, 0x28, 0x29, 0x2a, 0x7, // h-o
        0x2b, 0x76, 0x2c, 0x8, 0x9, 0x2d, 0x77, 0x78, // p-w
        0x79, 0x7a, 0x7b, 0x7ffe, 0x7fc, 0x3ffd, 0x1ffd, 0xffffffc, // x y z { | } ~ 127
        0xfffe6, 0x3fffd2, 0xfffe7, 0xfffe8, 0x3fffd3, 0x3fffd4, 0x3fffd5, 0x7fffd9, // 128-135
        0x3fffd6, 0x7fffda, 0x7fffdb, 0x7fffdc, 0x7fffdd, 0x7fffde, 0xffffeb, 0x7fffdf, // 136-143
        0xffffec, 0xffffed, 0x3fffd7, 0x7fffe0, 0xffffee, 0x7fffe1, 0x7fffe2, 0x7fffe3, // 144-151
        0x7fffe4, 0x1fffdc, 0x3fffd8, 0x7fffe5, 0x3fffd9, 0x7fffe6, 0x7fffe7, 0xffffef, // 152-159
        0x3fffda, 0x1fffdd, 0xfffe9, 0x3fffdb, 0x3fffdc, 0x7fffe8, 0x7fffe9, 0x1fffde, // 160-167
        0x7fffea, 0x3fffdd, 0x3fffde, 0xfffff0, 0x1fffdf, 0x3fffdf, 0x7fffeb, 0x7fffec, // 168-175
        0x1fffe0, 0x1fffe1, 0x3fffe0, 0x1fffe2, 0x7fffed, 0x3fffe1, 0x7fffee, 0x7fffef, // 176-183
        0xfffea, 0x3fffe2, 0x3fffe3, 0x3fffe4, 0x7ffff0, 0x3fffe5, 0x3fffe6, 0x7ffff1, // 184-191
        0x3ffffe0, 0x3ffffe1, 0xfffeb, 0x7fff1, 0x3fffe7, 0x7ffff2, 0x3fffe8, 0x1ffffec, // 192-199
        0x3ffffe2, 0x3ffffe3, 0x3ffffe4, 0x7ffffde, 0x7ffffdf, 0x3ffffe5, 0xfffff1, 0x1ffffed, // 200-207
        0x7fff2, 0x1fffe3, 0x3ffffe6, 0x7ffffe0, 0x7ffffe1, 0x3ffffe7, 0x7ffffe2, 0xfffff2, // 208-215
        0x1fffe4, 0x1fffe5, 0x3ffffe8, 0x3ffffe9, 0xffffffd, 0x7ffffe3, 0x7ffffe4, 0x7ffffe5, // 216-223
        0xfffec, 0xfffff3, 0xfffed, 0x1fffe6, 0x3fffe9, 0x1fffe7, 0x1fffe8, 0x7ffff3, // 224-231
        0x3fffea, 0x3fffeb, 0x1ffffee, 0x1ffffef, 0xfffff4, 0xfffff5, 0x3ffffea, 0x7ffff4, // 232-239
        0x3ffffeb, 0x7ffffe6, 0x3ffffec, 0x3ffffed, 0x7ffffe7, 0x7ffffe8, 0x7ffffe9, 0x7ffffea, // 240-247
        0x7ffffeb, 0xffffffe, 0x7ffffec, 0x7ffffed, 0x7ffffee, 0x7ffffef, 0x7fffff0, 0x3ffffee, // 248-255
        0x3fffffff, // EOS
    ];

    // Appendix B's "len in bits" column, in the same order.
    private static readonly byte[] Lengths =
    [
        13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0-15
        28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16-31
        6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // ' ' to '/'
        5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // '0' to '?'
        13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // '@' to 'O'
        7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 'P' to '_'
        15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // '`' to 'o'
        6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 'p' to 127
        20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128-143
        24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144-159
        22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160-175
        21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176-191
        26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192-207
        19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208-223
        20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224-239
        26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240-255
        30, // EOS
    ];

    // Per code length: the first (numerically smallest) code, how many codes, and where they start in SymbolsByCode.
    private static readonly uint[] FirstCode = new uint[MaxCodeBits + 1];
    private static readonly uint[] CodeCount = new uint[MaxCodeBits + 1];
    private static readonly int[] FirstSymbolAt = new int[MaxCodeBits + 1];
    private static readonly ushort[] SymbolsByCode = new ushort[EndOfString + 1];
    // By the next 8 bits: (code length << 8) | symbol for a code of 8 bits or fewer, else 0.
    private static readonly ushort[] ShortCodes = new ushort[256];

    static HpackHuffman()
    {
        if (Codes.Length != EndOfString + 1 || Lengths.Length != EndOfString + 1)
            throw new InvalidOperationException($"the Huffman table has {Codes.Length} codes and {Lengths.Length} lengths, not {EndOfString + 1}");
        foreach (byte length in Lengths)
        {
            if (length < MinCodeBits || length > MaxCodeBits) throw new InvalidOperationException($"a Huffman code of {length} bits");
            CodeCount[length]++;
        }
        // The canonical code is fixed by the lengths alone: rebuilding it and comparing with the transcribed codes
        // checks every code and length of the table (a typo in either breaks the comparison).
        uint next = 0;
        int at = 0;
        for (int length = MinCodeBits; length <= MaxCodeBits; length++)
        {
            FirstCode[length] = next;
            FirstSymbolAt[length] = at;
            int rank = 0;
            for (int symbol = 0; symbol <= EndOfString; symbol++)
            {
                if (Lengths[symbol] != length) continue;
                uint expected = next + (uint)rank;
                if (Codes[symbol] != expected)
                    throw new InvalidOperationException($"Huffman symbol {symbol}: code {Codes[symbol]:x} is not the canonical {expected:x}");
                SymbolsByCode[at + rank] = (ushort)symbol;
                rank++;
            }
            at += rank;
            next = (next + CodeCount[length]) << 1;
        }
        // A complete code: the last length's codes end exactly at 2^30 (the Kraft sum is 1), EOS last of all ones.
        if (next != 1u << (MaxCodeBits + 1) || Codes[EndOfString] != (1u << MaxCodeBits) - 1)
            throw new InvalidOperationException("the Huffman code is not complete");
        for (int symbol = 0; symbol < EndOfString; symbol++)
        {
            int length = Lengths[symbol];
            if (length > 8) continue;
            int first = (int)(Codes[symbol] << (8 - length));
            for (int i = 0; i < 1 << (8 - length); i++) ShortCodes[first + i] = (ushort)(length << 8 | symbol);
        }
    }

    /// <summary>The code's length for a symbol (0-255), in bits: for the encoder's size estimate and tests.</summary>
    public static int CodeBits(int symbol) => Lengths[symbol];

    public static uint Code(int symbol) => Codes[symbol];

    /// <summary>
    /// Decodes <paramref name="encoded"/> into <paramref name="into"/>; returns the bytes written. Throws
    /// <see cref="HpackException"/> (at <paramref name="blockOffset"/>, the string's place in its block) on EOS in the
    /// string, padding over 7 bits or not all ones (RFC 7541 §5.2), or an output longer than <paramref name="into"/>.
    /// </summary>
    public static int Decode(ReadOnlySpan<byte> encoded, Span<byte> into, int blockOffset)
    {
        ulong bits = 0; // the low bitCount bits are unread input, most significant first; the bits above are zero
        int bitCount = 0;
        int read = 0;
        int written = 0;
        while (true)
        {
            while (bitCount <= 56 && read < encoded.Length)
            {
                bits = bits << 8 | encoded[read++];
                bitCount += 8;
            }
            if (bitCount == 0) return written;
            // The next 32 bits; past the input's end, ones (what valid padding is), so a tail of padding reads as
            // the start of EOS, a code longer than the bits left.
            uint window = bitCount >= 32
                ? (uint)(bits >> (bitCount - 32))
                : (uint)(bits << (32 - bitCount)) | uint.MaxValue >> bitCount;
            int symbol;
            int length;
            ushort shortCode = ShortCodes[window >> 24];
            if (shortCode != 0)
            {
                symbol = shortCode & 0xFF;
                length = shortCode >> 8;
            }
            else
            {
                length = 9;
                while (true)
                {
                    uint rank = (window >> (32 - length)) - FirstCode[length];
                    if (rank < CodeCount[length])
                    {
                        symbol = SymbolsByCode[FirstSymbolAt[length] + (int)rank];
                        break;
                    }
                    length++;
                    if (length > MaxCodeBits) throw new InvalidOperationException("the Huffman code is not complete");
                }
            }
            if (length > bitCount)
            {
                if (bitCount > 7) throw new HpackException($"Huffman string ends in {bitCount} bits of padding (at most 7)", blockOffset);
                ulong ones = (1UL << bitCount) - 1;
                if (bits != ones) throw new HpackException("Huffman string's padding is not all ones", blockOffset);
                return written;
            }
            if (symbol == EndOfString) throw new HpackException("Huffman string contains EOS", blockOffset);
            if (written == into.Length)
                throw new HpackException($"Huffman string decodes to more than the {into.Length} bytes the header list has left", blockOffset);
            into[written++] = (byte)symbol;
            bitCount -= length;
            bits &= (1UL << bitCount) - 1;
        }
    }
}
