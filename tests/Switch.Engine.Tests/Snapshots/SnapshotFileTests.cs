using Switch.Engine.Snapshots;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Snapshots;

/// <summary>The snapshot file on its own: a large one, fsynced in slices as it is written, reads back whole.</summary>
public sealed class SnapshotFileTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_file_fsynced_every_mebibyte_as_it_is_written_reads_back_whole_and_checked()
    {
        // 24 MiB of array, every page with data: 24 fsyncs along the way, then the one at the end.
        var live = new long[3 << 20];
        for (int i = 0; i < live.Length; i++) live[i] = i * 7L + 1;
        var position = new SnapshotPosition(RecordNo: 42, RecordAddress: 4096, EventsApplied: 41, MaxCorrelationId: 9);
        byte[] config = TestConfigs.Small().ToJsonUtf8();
        byte[] state = [1, 2, 3];
        byte[] views = [4, 5];
        string path = Path.Combine(_dir.Path, SnapshotFile.NameFor(position.RecordNo));
        var points = new List<SnapshotWritePoint>();
        long bytes = SnapshotFile.Write(path, position, config, state, [new PageCapture<long>(live)], () => views, () => "token",
            points.Add, syncEveryBytes: 1L << 20, pacer: new WritePacer(1L << 30));

        Assert.Equal(new FileInfo(path).Length, bytes);
        Assert.True(bytes > live.Length * sizeof(long));
        Assert.Equal([SnapshotWritePoint.TempPartlyWritten, SnapshotWritePoint.TempWritten, SnapshotWritePoint.Renamed], points);
        Assert.Equal("token", SnapshotStore.ArchiveToken(path));
        using SnapshotFile.Opened opened = SnapshotFile.Open(path);
        Assert.Equal(position, opened.Position);
        Assert.Equal(state, opened.State);
        var read = new long[live.Length];
        opened.Arrays.ReadInto<long>(read, "test array");
        Assert.Equal(views, opened.Arrays.ReadViews());
        opened.Arrays.VerifyEnd();
        Assert.Equal(live, read);
    }

    [Fact]
    public void Mostly_zero_pages_are_stored_as_their_non_zero_words_and_read_back_exactly()
    {
        // Items of 12 bytes (pages not a whole number of words: the tail bytes go as they are), a seventh of the words
        // set, one page all zeros, one page every word set (stored whole): each page kind, read back exactly.
        const int items = 5000;
        var live = new (long A, int B)[items];
        var random = new Random(20261207);
        for (int i = 0; i < items; i++)
        {
            if (i / 1024 == 1) continue; // a zero page
            bool full = i / 1024 == 2;
            live[i] = (full || random.Next(7) == 0 ? random.NextInt64(1, long.MaxValue) : 0, full || random.Next(7) == 0 ? random.Next(1, int.MaxValue) : 0);
        }
        var position = new SnapshotPosition(RecordNo: 7, RecordAddress: 64, EventsApplied: 6, MaxCorrelationId: 1);
        string path = Path.Combine(_dir.Path, SnapshotFile.NameFor(position.RecordNo));
        var pacer = new WritePacer(1L << 30);
        long bytes = SnapshotFile.Write(path, position, TestConfigs.Small().ToJsonUtf8(), [9], [new PageCapture<(long, int)>(live)], () => [], () => null,
            pacer: pacer);
        int rawBytes = items * 16; // (long, int) is 16 bytes with its padding
        Assert.True(bytes < rawBytes * 3 / 5, $"{bytes} bytes written for {rawBytes} of array, a seventh of it set");
        // The budget is charged every non-zero page's whole length (the writer's work), not the fewer bytes on disk.
        int zeroPageBytes = new PageCapture<(long, int)>(live).PageLength(1) * 16;
        Assert.True(pacer.BytesCharged >= rawBytes - zeroPageBytes, $"{pacer.BytesCharged} bytes charged for {rawBytes - zeroPageBytes} of non-zero pages");

        using SnapshotFile.Opened opened = SnapshotFile.Open(path);
        var read = new (long A, int B)[items];
        opened.Arrays.ReadInto<(long, int)>(read, "test array");
        opened.Arrays.ReadViews();
        opened.Arrays.VerifyEnd();
        Assert.Equal(live, read);
        Assert.Equal(bytes, opened.Arrays.BytesRead);
    }

    [Fact]
    public void A_sparse_page_round_trips_with_its_tail_and_a_dense_one_is_left_whole()
    {
        byte[] page = new byte[8 * 130 + 5]; // three bitmap words, the last partly used, and five tail bytes
        page[3] = 1;
        page[8 * 64] = 2;
        page[8 * 129 + 7] = 3;
        page[^2] = 4;
        byte[] encoded = new byte[SparsePage.MaxEncodedBytes(page.Length)];
        int length = SparsePage.Encode(page, encoded, out bool allZero);
        Assert.Equal(3 * 8 + 3 * 8 + 5, length);
        Assert.False(allZero);
        int masks = SparsePage.MaskBytes(page.Length);
        Assert.Equal(3, SparsePage.CountWords(encoded.AsSpan(0, masks), page.Length));
        byte[] decoded = new byte[page.Length];
        SparsePage.Scatter(encoded.AsSpan(0, masks), encoded.AsSpan(masks, 3 * 8), decoded);
        encoded.AsSpan(masks + 3 * 8, 5).CopyTo(decoded.AsSpan(8 * 130));
        Assert.Equal(page, decoded);

        // A bit past the page's 130 words is refused (a damaged bitmap), not written past the page.
        encoded[2 * 8 + 0] |= 1 << 2;
        Assert.Throws<InvalidDataException>(() => SparsePage.CountWords(encoded.AsSpan(0, masks), page.Length));
        // Every word set: the encoding would be longer than the page.
        Assert.Equal(-1, SparsePage.Encode(Enumerable.Repeat((byte)1, 1024).ToArray(), new byte[SparsePage.MaxEncodedBytes(1024)], out _));
    }

    /// <summary>The encoder compares words by the vector where the CPU can (4 or 2 at a time, a word at a time for what is
    /// left of a block): its bytes must be the format's, word for word, whatever the page's length and density, and it
    /// must say a page is all zeros exactly when every byte is (its tail's included).</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void A_sparse_page_is_encoded_word_for_word_as_the_format_says_and_zero_pages_are_told(int seed)
    {
        var random = new Random(seed);
        foreach (int length in new[] { 0, 5, 8, 24, 8 * 63 + 3, 8 * 64, 8 * 65, 8 * 130 + 5, 344 * 1024, 16 * 1024 + 7 })
        {
            foreach (double nonZero in new[] { 0.0, 0.01, 0.34, 0.5, 0.9, 1.0 })
            {
                byte[] page = new byte[length];
                for (int w = 0; w + 8 <= length; w += 8)
                    if (random.NextDouble() < nonZero) page[w + random.Next(8)] = (byte)random.Next(1, 256);
                if (length % 8 != 0 && random.NextDouble() < nonZero) page[^1] = 7; // a non-zero tail alone
                byte[] encoded = new byte[SparsePage.MaxEncodedBytes(length)];
                encoded.AsSpan().Fill(0xEE); // nothing may be left of what the buffer held
                int encodedBytes = SparsePage.Encode(page, encoded, out bool allZero);

                byte[] expected = EncodeWordByWord(page);
                Assert.Equal(expected.Length < length ? expected.Length : -1, encodedBytes);
                if (encodedBytes > 0) Assert.Equal(expected, encoded[..encodedBytes]);
                Assert.Equal(page.AsSpan().IndexOfAnyExcept((byte)0) < 0, allZero);
            }
        }
    }

    /// <summary>The format as written down (<see cref="SparsePage"/>): a bitmap of 64-bit little-endian masks, a bit a word,
    /// the non-zero words in order, then the tail; here one word at a time, the plainest way.</summary>
    private static byte[] EncodeWordByWord(byte[] page)
    {
        int words = page.Length / 8;
        var masks = new byte[SparsePage.MaskBytes(page.Length)];
        var values = new List<byte>();
        for (int w = 0; w < words; w++)
        {
            if (BitConverter.ToUInt64(page, w * 8) == 0) continue;
            masks[w / 64 * 8 + w % 64 / 8] |= (byte)(1 << (w % 8));
            values.AddRange(page.AsSpan(w * 8, 8).ToArray());
        }
        return [.. masks, .. values, .. page.AsSpan(words * 8)];
    }
}
