using System.Buffers.Binary;
using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Switch.Engine.Snapshots;

/// <summary>
/// A snapshot page stored as its non-zero 8-byte words: a bitmap (one bit a word, in 64-bit little-endian masks),
/// then the words whose bit is set, in order, then the page's last <c>length % 8</c> bytes as they are. Why: a start
/// is bounded by reading the snapshot, and the tables are mostly zeros (a transaction's unused text, counters that
/// stay 0): 84% of the bytes and 66% of the words of a full 2^20 table, measured. Reading a third of the bytes
/// matters when the storage is slow (a start read a 530 MB snapshot at 33 MB/s: 15.8 s); decoding is a scan of the
/// bitmap and a store per word, into memory the restore writes anyway. A page that would not shrink is stored whole.
/// </summary>
public static class SparsePage
{
    private const int WordBytes = 8;
    private const int WordsPerMask = 64;

    /// <summary>Bytes of the bitmap for a page of <paramref name="pageBytes"/>.</summary>
    public static int MaskBytes(int pageBytes) => (pageBytes / WordBytes + WordsPerMask - 1) / WordsPerMask * WordBytes;

    /// <summary>The largest encoding <see cref="Encode"/> may need for a page of <paramref name="pageBytes"/>.</summary>
    public static int MaxEncodedBytes(int pageBytes) => MaskBytes(pageBytes) + pageBytes;

    /// <summary>Encodes <paramref name="page"/> into <paramref name="into"/> (at least <see cref="MaxEncodedBytes"/>);
    /// returns the encoded length, or -1 when it would not be shorter than the page (store the page whole).
    /// <paramref name="allZero"/>: every byte of the page is zero (the caller stores a flag instead), found by the same
    /// pass: the writer reads each page once here, not once more to look for zeros.</summary>
    public static int Encode(ReadOnlySpan<byte> page, Span<byte> into, out bool allZero)
    {
        int words = page.Length / WordBytes;
        int maskBytes = MaskBytes(page.Length);
        if (into.Length < MaxEncodedBytes(page.Length)) throw new ArgumentException("sparse page: output shorter than the largest encoding", nameof(into));
        ReadOnlySpan<ulong> source = MemoryMarshal.Cast<byte, ulong>(page[..(words * WordBytes)]);
        // Unchecked stores below: at most the page's words follow the bitmap, and into holds MaxEncodedBytes (checked above).
        ref byte output = ref MemoryMarshal.GetReference(into);
        int at = maskBytes;
        ulong anyWord = 0;
        for (int first = 0; first < words; first += WordsPerMask)
        {
            ReadOnlySpan<ulong> block = source.Slice(first, Math.Min(WordsPerMask, words - first));
            ulong mask = NonZeroWords(block);
            BinaryPrimitives.WriteUInt64LittleEndian(into[(first / WordsPerMask * WordBytes)..], mask);
            anyWord |= mask;
            // One step a non-zero word, no test a word: the tables' zeros and non-zeros interleave word by word (a
            // transaction's fields), and a branch a word made this loop 45% of the writer thread's samples (perf, the
            // load harness with snapshots every 5 s), its largest part.
            for (ulong left = mask; left != 0; left &= left - 1)
            {
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref output, at), block[BitOperations.TrailingZeroCount(left)]);
                at += WordBytes;
            }
        }
        Debug.Assert(at <= maskBytes + words * WordBytes, "sparse page: more words than the page has");
        ReadOnlySpan<byte> tail = page[(words * WordBytes)..];
        tail.CopyTo(into[at..]);
        at += tail.Length;
        allZero = anyWord == 0 && tail.IndexOfAnyExcept((byte)0) < 0;
        return at < page.Length ? at : -1;
    }

    /// <summary>The bitmap of a block of at most 64 words: bit i set when word i is not zero. Vector compares where the
    /// CPU has them (4 or 2 words a compare), a word at a time for the rest.</summary>
    private static ulong NonZeroWords(ReadOnlySpan<ulong> block)
    {
        Debug.Assert(block.Length is > 0 and <= WordsPerMask);
        ref ulong start = ref MemoryMarshal.GetReference(block);
        ulong zeros = 0;
        int w = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; w + Vector256<ulong>.Count <= block.Length; w += Vector256<ulong>.Count)
                zeros |= (ulong)Vector256.Equals(Vector256.LoadUnsafe(ref start, (nuint)w), Vector256<ulong>.Zero).ExtractMostSignificantBits() << w;
        }
        if (Vector128.IsHardwareAccelerated)
        {
            for (; w + Vector128<ulong>.Count <= block.Length; w += Vector128<ulong>.Count)
                zeros |= (ulong)Vector128.Equals(Vector128.LoadUnsafe(ref start, (nuint)w), Vector128<ulong>.Zero).ExtractMostSignificantBits() << w;
        }
        for (; w < block.Length; w++)
            if (block[w] == 0) zeros |= 1UL << w;
        ulong used = block.Length == WordsPerMask ? ulong.MaxValue : (1UL << block.Length) - 1;
        return ~zeros & used;
    }

    /// <summary>The number of words a bitmap names (what follows it), checked against the page's words.</summary>
    public static int CountWords(ReadOnlySpan<byte> masks, int pageBytes)
    {
        int words = pageBytes / WordBytes;
        int count = 0;
        for (int m = 0; m < masks.Length / WordBytes; m++)
        {
            ulong mask = BinaryPrimitives.ReadUInt64LittleEndian(masks[(m * WordBytes)..]);
            int inMask = Math.Min(WordsPerMask, words - m * WordsPerMask);
            if (inMask < WordsPerMask && mask >> inMask != 0) throw new InvalidDataException($"sparse page: a bit set past the page's {words} words");
            count += BitOperations.PopCount(mask);
        }
        return count;
    }

    /// <summary>Writes the words a bitmap names into <paramref name="page"/>, which is all zeros (a new array).</summary>
    public static void Scatter(ReadOnlySpan<byte> masks, ReadOnlySpan<byte> nonZeroWords, Span<byte> page)
    {
        Span<ulong> target = MemoryMarshal.Cast<byte, ulong>(page[..(page.Length / WordBytes * WordBytes)]);
        ReadOnlySpan<ulong> source = MemoryMarshal.Cast<byte, ulong>(nonZeroWords);
        int next = 0;
        for (int m = 0; m < masks.Length / WordBytes; m++)
        {
            ulong mask = BinaryPrimitives.ReadUInt64LittleEndian(masks[(m * WordBytes)..]);
            int first = m * WordsPerMask;
            while (mask != 0)
            {
                target[first + BitOperations.TrailingZeroCount(mask)] = source[next++];
                mask &= mask - 1;
            }
        }
        if (next != source.Length) throw new InvalidDataException($"sparse page: {source.Length} words given, its bitmap names {next}");
    }
}
