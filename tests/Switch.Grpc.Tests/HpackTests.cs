using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Google.Protobuf;
using Switch.Grpc.Http2.Hpack;
using Switch.Grpc.Server;
using Switch.Grpc.Tests.Interop;

namespace Switch.Grpc.Tests;

/// <summary>A sink that keeps every field as text, in order.</summary>
internal sealed class RecordingSink : IHeaderSink
{
    public List<(string Name, string Value)> Fields { get; } = new();

    public void OnHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value) =>
        Fields.Add((Encoding.ASCII.GetString(name), Encoding.ASCII.GetString(value)));

    public string? Get(string name) => Fields.FirstOrDefault(f => f.Name == name).Value;
}

/// <summary>
/// The HPACK codec (RFC 7541) against every example of the RFC's Appendix C, byte for byte from its text (the header
/// lists, and the dynamic table's entries and size after each block), and against each malformed input it must refuse.
/// </summary>
public sealed class HpackTests
{
    internal static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", "").Replace("\n", ""));

    private static List<(string, string)> Decode(HpackDecoder decoder, string hex)
    {
        var sink = new RecordingSink();
        decoder.Decode(Hex(hex), sink);
        return sink.Fields;
    }

    /// <summary>The dynamic table as the RFC prints it: newest first, each entry's size, then the table's size.</summary>
    private static void AssertTable(HpackDecoder decoder, int sizeBytes, params (string Name, string Value)[] newestFirst)
    {
        var actual = new List<(string, string)>();
        for (int i = 1; i <= decoder.DynamicTableCount; i++)
        {
            decoder.DynamicTableEntry(i, out ReadOnlySpan<byte> name, out ReadOnlySpan<byte> value);
            actual.Add((Encoding.ASCII.GetString(name), Encoding.ASCII.GetString(value)));
        }
        Assert.Equal(newestFirst, actual);
        Assert.Equal(sizeBytes, decoder.DynamicTableSizeBytes);
        Assert.Equal(sizeBytes, newestFirst.Sum(e => e.Name.Length + e.Value.Length + 32));
    }

    [Fact]
    public void C2_1_LiteralWithIndexing()
    {
        var decoder = new HpackDecoder();
        Assert.Equal([("custom-key", "custom-header")],
            Decode(decoder, "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"));
        AssertTable(decoder, 55, ("custom-key", "custom-header"));
    }

    [Fact]
    public void C2_2_LiteralWithoutIndexing()
    {
        var decoder = new HpackDecoder();
        Assert.Equal([(":path", "/sample/path")], Decode(decoder, "040c 2f73 616d 706c 652f 7061 7468"));
        AssertTable(decoder, 0);
    }

    [Fact]
    public void C2_3_LiteralNeverIndexed()
    {
        var decoder = new HpackDecoder();
        Assert.Equal([("password", "secret")], Decode(decoder, "1008 7061 7373 776f 7264 0673 6563 7265 74"));
        AssertTable(decoder, 0);
    }

    [Fact]
    public void C2_4_Indexed()
    {
        var decoder = new HpackDecoder();
        Assert.Equal([(":method", "GET")], Decode(decoder, "82"));
        AssertTable(decoder, 0);
    }

    // C.3 and C.4 decode to the same lists and tables, without and with Huffman coding.
    [Theory]
    [InlineData("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65")]
    [InlineData("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "8286 84be 5886 a8eb 1064 9cbf",
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf")]
    public void C3_C4_Requests(string first, string second, string third)
    {
        var decoder = new HpackDecoder();
        Assert.Equal([(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")],
            Decode(decoder, first));
        AssertTable(decoder, 57, (":authority", "www.example.com"));

        Assert.Equal([(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com"),
            ("cache-control", "no-cache")], Decode(decoder, second));
        AssertTable(decoder, 110, ("cache-control", "no-cache"), (":authority", "www.example.com"));

        Assert.Equal([(":method", "GET"), (":scheme", "https"), (":path", "/index.html"), (":authority", "www.example.com"),
            ("custom-key", "custom-value")], Decode(decoder, third));
        AssertTable(decoder, 164, ("custom-key", "custom-value"), ("cache-control", "no-cache"), (":authority", "www.example.com"));
    }

    // C.5 and C.6: responses with SETTINGS_HEADER_TABLE_SIZE 256, so entries are evicted, without and with Huffman.
    [Theory]
    [InlineData("4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "4803 3330 37c1 c0bf",
        "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31")]
    [InlineData("4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        "4883 640e ffc1 c0bf",
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07")]
    public void C5_C6_Responses(string first, string second, string third)
    {
        const string Date1 = "Mon, 21 Oct 2013 20:13:21 GMT", Date2 = "Mon, 21 Oct 2013 20:13:22 GMT";
        const string Location = "https://www.example.com";
        const string Cookie = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
        var decoder = new HpackDecoder(maxDynamicTableBytes: 256);

        Assert.Equal([(":status", "302"), ("cache-control", "private"), ("date", Date1), ("location", Location)], Decode(decoder, first));
        AssertTable(decoder, 222, ("location", Location), ("date", Date1), ("cache-control", "private"), (":status", "302"));

        Assert.Equal([(":status", "307"), ("cache-control", "private"), ("date", Date1), ("location", Location)], Decode(decoder, second));
        AssertTable(decoder, 222, (":status", "307"), ("location", Location), ("date", Date1), ("cache-control", "private"));

        Assert.Equal([(":status", "200"), ("cache-control", "private"), ("date", Date2), ("location", Location),
            ("content-encoding", "gzip"), ("set-cookie", Cookie)], Decode(decoder, third));
        AssertTable(decoder, 215, ("set-cookie", Cookie), ("content-encoding", "gzip"), ("date", Date2));
    }

    [Fact]
    public void Encoder_MatchesTheRfcForms()
    {
        var into = new byte[64];
        // §C.2.2: literal without indexing, indexed name :path.
        int written = HpackEncoder.WriteLiteralWithIndexedName(HpackStaticTable.Path, "/sample/path"u8, into);
        Assert.Equal(Hex("040c 2f73 616d 706c 652f 7061 7468"), into[..written]);
        // §C.2.4: indexed :method GET.
        written = HpackEncoder.WriteIndexed(HpackStaticTable.Method_GET, into);
        Assert.Equal(Hex("82"), into[..written]);
        // §6.2.2 with a new name: 0x00, then name and value as §C.2.3 writes them (after its 0x10).
        written = HpackEncoder.WriteLiteral("password"u8, "secret"u8, into);
        Assert.Equal(Hex("0008 7061 7373 776f 7264 0673 6563 7265 74"), into[..written]);
    }

    [Fact]
    public void Encoder_RequestDecodesBack_AndRefusesAShortBuffer()
    {
        string longValue = new('v', 300); // a length over the 7-bit prefix: two more bytes of integer
        byte[] block = EncodeRequest("/switch.interop.Interop/Unary", "localhost:5000", longValue);
        var sink = new RecordingSink();
        new HpackDecoder().Decode(block, sink);
        Assert.Equal([(":method", "POST"), (":scheme", "http"), (":path", "/switch.interop.Interop/Unary"),
            (":authority", "localhost:5000"), ("content-type", "application/grpc"), ("te", "trailers"), ("x-long", longValue)], sink.Fields);

        // Every buffer one byte short of each representation says so, and never writes past its end.
        byte[] value = Encoding.ASCII.GetBytes(longValue);
        int full = HpackEncoder.WriteLiteral("x-long"u8, value, new byte[400]);
        int indexedName = HpackEncoder.WriteLiteralWithIndexedName(HpackStaticTable.UserAgent, value, new byte[400]);
        for (int size = 0; size < full; size++) Assert.Equal(-1, HpackEncoder.WriteLiteral("x-long"u8, value, new byte[size]));
        for (int size = 0; size < indexedName; size++) Assert.Equal(-1, HpackEncoder.WriteLiteralWithIndexedName(HpackStaticTable.UserAgent, value, new byte[size]));
        Assert.Equal(-1, HpackEncoder.WriteIndexed(HpackStaticTable.Method_POST, []));
        Assert.Throws<ArgumentOutOfRangeException>(() => HpackEncoder.WriteIndexed(0, new byte[8]));
        Assert.Throws<ArgumentOutOfRangeException>(() => HpackEncoder.WriteIndexed(62, new byte[8]));
    }

    /// <summary>A gRPC request's header block as a client writes it with this encoder.</summary>
    internal static byte[] EncodeRequest(string path, string authority, string? longValue = null)
    {
        var into = new byte[1024];
        int at = 0;
        at += Checked(HpackEncoder.WriteIndexed(HpackStaticTable.Method_POST, into.AsSpan(at)));
        at += Checked(HpackEncoder.WriteIndexed(HpackStaticTable.Scheme_http, into.AsSpan(at)));
        at += Checked(HpackEncoder.WriteLiteralWithIndexedName(HpackStaticTable.Path, Encoding.ASCII.GetBytes(path), into.AsSpan(at)));
        at += Checked(HpackEncoder.WriteLiteralWithIndexedName(HpackStaticTable.Authority, Encoding.ASCII.GetBytes(authority), into.AsSpan(at)));
        at += Checked(HpackEncoder.WriteLiteralWithIndexedName(HpackStaticTable.ContentType, "application/grpc"u8, into.AsSpan(at)));
        at += Checked(HpackEncoder.WriteLiteral(HpackStaticTable.TeName, HpackStaticTable.TeTrailers, into.AsSpan(at)));
        if (longValue != null) at += Checked(HpackEncoder.WriteLiteral("x-long"u8, Encoding.ASCII.GetBytes(longValue), into.AsSpan(at)));
        return into[..at];
    }

    private static int Checked(int written) => written > 0 ? written : throw new InvalidOperationException("encoder buffer too small");

    [Theory]
    [InlineData("80", 0, "index 0")] // indexed field, index 0
    [InlineData("82 be", 1, "index 62 beyond")] // the dynamic table is empty
    [InlineData("ff 80 80 80 07", 0, "beyond")] // a large index (127 + 2^21 * 7), well-formed
    [InlineData("7e 03 616263", 0, "index 62 beyond")] // a literal's name index beyond the tables
    [InlineData("ff", 0, "ends inside an integer")]
    [InlineData("ff 80", 0, "ends inside an integer")]
    [InlineData("ff ff ff ff ff 0f", 0, "integer over")] // 127 + 2^28 * 15 > int.MaxValue
    [InlineData("ff 80 80 80 80 80 01", 0, "longer than 5")]
    [InlineData("ff 80 00", 0, "redundant zero")] // 127 written with a zero continuation
    [InlineData("40", 1, "ends before a string")] // literal, new name, nothing after
    [InlineData("40 01 61", 3, "ends before a string")] // literal, a name, no value
    [InlineData("04 0c 2f73 616d", 1, "string of 12 bytes")] // value shorter than its length
    [InlineData("40 7f", 1, "ends inside an integer")] // a string length cut off
    [InlineData("3f e2 1f", 0, "size update to 4097")] // 31 + 98 + 31 * 128, one over the 4096 announced
    [InlineData("82 20", 1, "size update after a header field")]
    [InlineData("04 81 60", 1, "not all ones")] // '/' (011000) then padding 00
    [InlineData("04 82 9f ff", 1, "padding")] // 'h' (100111) then 10 bits of ones: padding over 7 bits
    [InlineData("04 81 ff", 1, "padding")] // 8 bits of ones alone
    [InlineData("04 84 ff ff ff ff", 1, "EOS")] // EOS (30 ones) in the string
    public void Malformed_Throws(string hex, int byteOffset, string message)
    {
        var e = Assert.Throws<HpackException>(() => new HpackDecoder().Decode(Hex(hex), new RecordingSink()));
        Assert.Contains(message, e.Message);
        Assert.Equal(byteOffset, e.ByteOffset);
    }

    [Fact]
    public void SizeUpdate_AtTheStart_EvictsAndRaisesUpToTheLimit()
    {
        var decoder = new HpackDecoder(maxDynamicTableBytes: 256);
        Decode(decoder, "4803 3330 3258 0770 7269 7661 7465"); // C.5.1's first two fields: 42 + 52 bytes
        AssertTable(decoder, 94, ("cache-control", "private"), (":status", "302"));
        // Two updates before the first field (down to 60, then up to 256): the oldest is evicted and stays so.
        Assert.Equal([(":status", "200")], Decode(decoder, "3f1d 3fe1 01 88"));
        AssertTable(decoder, 52, ("cache-control", "private"));
        Assert.Equal(256, decoder.DynamicTableMaxSizeBytes);
        // Size 0 empties the table; an entry then larger than the table is not added, and the table stays empty.
        Decode(decoder, "20 4803 3330 32");
        AssertTable(decoder, 0);
        Assert.Throws<HpackException>(() => Decode(decoder, "be"));
    }

    [Fact]
    public void EntryLargerThanTheTable_EmptiesIt()
    {
        var decoder = new HpackDecoder(maxDynamicTableBytes: 64);
        Decode(decoder, "4803 3330 32"); // :status 302, 42 bytes
        AssertTable(decoder, 42, (":status", "302"));
        Decode(decoder, "40 0a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"); // 55 bytes: evicts the 42
        AssertTable(decoder, 55, ("custom-key", "custom-header"));
        Decode(decoder, "40 0a 6375 7374 6f6d 2d6b 6579 21" + string.Concat(Enumerable.Repeat("61", 33))); // 75 > 64
        AssertTable(decoder, 0);
    }

    [Fact]
    public void NameFromAnEntryTheInsertionEvicts_IsKept()
    {
        // A literal with incremental indexing names the newest entry (index 62) and is big enough to evict both
        // entries: RFC 7541 §4.4 says the name must survive the eviction, though the new entry is written over it.
        var decoder = new HpackDecoder(maxDynamicTableBytes: 100);
        Decode(decoder, "40 02 6161 02 6262"); // aa: bb, 36 bytes
        Decode(decoder, "40 0a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"); // custom-key: custom-header, 55
        var fields = Decode(decoder, "7e 1e" + string.Concat(Enumerable.Repeat("7a", 30))); // custom-key: 30 x 'z', 72
        string value = new('z', 30);
        Assert.Equal([("custom-key", value)], fields);
        AssertTable(decoder, 72, ("custom-key", value));
    }

    [Fact]
    public void ManyEntries_WrapTheArena_AndStayIntact()
    {
        // Entries of varied sizes added far past the table's size: each stays readable and exact while it lives.
        var decoder = new HpackDecoder(maxDynamicTableBytes: 300);
        var expected = new List<(string, string)>();
        for (int i = 0; i < 500; i++)
        {
            string name = "k" + (i % 7);
            string value = new((char)('a' + i % 26), i * 37 % 150);
            var block = new byte[512];
            block[0] = 0x40;
            int at = 1 + HpackEncoder.WriteInteger(name.Length, 7, 0, block.AsSpan(1));
            Encoding.ASCII.GetBytes(name).CopyTo(block, at);
            at += name.Length;
            at += HpackEncoder.WriteInteger(value.Length, 7, 0, block.AsSpan(at));
            Encoding.ASCII.GetBytes(value).CopyTo(block, at);
            at += value.Length;
            var sink = new RecordingSink();
            decoder.Decode(block.AsSpan(0, at), sink);
            Assert.Equal([(name, value)], sink.Fields);
            expected.Insert(0, (name, value));
            int size = 0, keep = 0;
            while (keep < expected.Count && size + expected[keep].Item1.Length + expected[keep].Item2.Length + 32 <= 300)
                size += expected[keep].Item1.Length + expected[keep++].Item2.Length + 32;
            expected.RemoveRange(keep, expected.Count - keep);
            AssertTable(decoder, size, expected.ToArray());
        }
    }

    [Fact]
    public void HeaderList_OverTheLimit_Throws()
    {
        // C.3.1 decodes to 42 + 43 + 38 + 57 = 180 bytes of header list.
        new HpackDecoder(maxHeaderListBytes: 180).Decode(Hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"), new RecordingSink());
        var e = Assert.Throws<HpackException>(() =>
            new HpackDecoder(maxHeaderListBytes: 179).Decode(Hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"), new RecordingSink()));
        Assert.Contains("over the limit of 179", e.Message);
        Assert.Equal(3, e.ByteOffset);
        // A Huffman string that alone decodes past the limit stops at the limit, not at the end of the string.
        // 30 bytes of zeros are 48 five-bit '0' codes.
        byte[] zeros = Hex("00 9e" + string.Concat(Enumerable.Repeat("00", 30)) + " 00");
        e = Assert.Throws<HpackException>(() => new HpackDecoder(maxHeaderListBytes: 40).Decode(zeros, new RecordingSink()));
        Assert.Contains("Huffman string decodes to more than", e.Message);
    }

    [Fact]
    public void AnyInput_DecodesOrThrowsHpackException()
    {
        // Random blocks, and the RFC's valid blocks cut short or with a byte changed, through decoders that live
        // across blocks as a connection's does (a new one after an error, as the connection would be failed): each
        // block decodes or throws HpackException, never another exception, and the table stays within its size.
        string[] valid =
        [
            "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", "8286 84be 5886 a8eb 1064 9cbf",
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf", "4883 640e ffc1 c0bf",
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        ];
        var random = new Random(17);
        var decoder = new HpackDecoder(maxDynamicTableBytes: 256, maxHeaderListBytes: 1024);
        int decoded = 0, refused = 0;
        for (int i = 0; i < 20_000; i++)
        {
            byte[] block;
            if (i % 2 == 0)
            {
                block = new byte[random.Next(0, 48)];
                random.NextBytes(block);
            }
            else
            {
                block = Hex(valid[random.Next(valid.Length)]);
                if (random.Next(2) == 0) block = block[..random.Next(block.Length)];
                else block[random.Next(block.Length)] = (byte)random.Next(256);
            }
            try
            {
                decoder.Decode(block, new RecordingSink());
                decoded++;
            }
            catch (HpackException)
            {
                refused++;
                decoder = new HpackDecoder(maxDynamicTableBytes: 256, maxHeaderListBytes: 1024);
            }
            Assert.InRange(decoder.DynamicTableSizeBytes, 0, decoder.DynamicTableMaxSizeBytes);
        }
        Assert.True(decoded > 1000 && refused > 1000, $"decoded {decoded}, refused {refused}: the inputs should exercise both");
    }

    [Fact]
    public void Huffman_EverySymbolRoundTrips()
    {
        // All 256 byte values, Huffman-coded with Appendix B's table (packed here, bit by bit) and padded with ones.
        var symbols = Enumerable.Range(0, 256).Select(i => (byte)i).Concat("www.example.com"u8.ToArray()).ToArray();
        var packed = new List<byte>();
        int bitCount = 0;
        ulong bits = 0;
        foreach (byte symbol in symbols)
        {
            int length = HpackHuffman.CodeBits(symbol);
            bits = bits << length | HpackHuffman.Code(symbol);
            bitCount += length;
            while (bitCount >= 8) { packed.Add((byte)(bits >> (bitCount - 8))); bitCount -= 8; }
            bits &= (1UL << bitCount) - 1;
        }
        if (bitCount > 0) packed.Add((byte)(bits << (8 - bitCount) | (0xFFu >> bitCount)));
        var into = new byte[symbols.Length];
        Assert.Equal(symbols.Length, HpackHuffman.Decode(packed.ToArray(), into, 0));
        Assert.Equal(symbols, into);
    }
}

/// <summary>
/// The codec against .NET's own HPACK: a raw HTTP/2 client over a real socket (preface, SETTINGS, HEADERS written with
/// <see cref="HpackEncoder"/>, DATA) calls the interop service's unary method on the project's Kestrel server twice on
/// one connection, and decodes the responses' HEADERS and trailers with one <see cref="HpackDecoder"/>. Kestrel indexes
/// response headers in its dynamic table, so the second response is largely references into the table the first built.
/// </summary>
public sealed class HpackKestrelTests() : InteropServerTests(64 * 1024)
{
    private const byte Data = 0x0, Headers = 0x1, RstStream = 0x3, Settings = 0x4, GoAway = 0x7;
    private const byte EndStream = 0x1, Ack = 0x1, EndHeaders = 0x4;

    protected override GrpcRouter MapOwn(GrpcRouter router) => router;

    [Fact]
    public async Task KestrelResponses_Decode()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, Server.Port).Bounded();
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray());
        await WriteFrameAsync(stream, Settings, 0, 0, []);

        var decoder = new HpackDecoder();
        int firstHeadersBytes = 0;
        for (int streamId = 1; streamId <= 3; streamId += 2)
        {
            byte[] block = HpackTests.EncodeRequest($"/{InteropMethods.Service}/Unary", $"127.0.0.1:{Server.Port}");
            await WriteFrameAsync(stream, Headers, EndHeaders, streamId, block);
            byte[] message = new EchoRequest { Text = "hpack" + streamId }.ToByteArray();
            var grpcFrame = new byte[5 + message.Length];
            BinaryPrimitives.WriteInt32BigEndian(grpcFrame.AsSpan(1), message.Length);
            message.CopyTo(grpcFrame, 5);
            await WriteFrameAsync(stream, Data, EndStream, streamId, grpcFrame);

            var headers = new RecordingSink();
            var trailers = new RecordingSink();
            EchoReply? reply = null;
            int headersBytes = 0;
            while (true)
            {
                var (type, flags, id, payload) = await ReadFrameAsync(stream).Bounded();
                if (type == Settings && (flags & Ack) == 0) await WriteFrameAsync(stream, Settings, Ack, 0, []);
                Assert.True(type != RstStream && type != GoAway, $"the server refused the call: frame type {type}");
                if (id != streamId) continue;
                if (type == Data && payload.Length >= 5) reply = EchoReply.Parser.ParseFrom(payload, 5, payload.Length - 5);
                if (type != Headers) continue;
                Assert.True((flags & EndHeaders) != 0, "a header block split into CONTINUATION frames (not expected this small)");
                if ((flags & EndStream) == 0)
                {
                    decoder.Decode(payload, headers);
                    headersBytes = payload.Length;
                }
                else
                {
                    decoder.Decode(payload, trailers);
                    break;
                }
            }
            Assert.Equal("200", headers.Get(":status"));
            Assert.Equal("application/grpc", headers.Get("content-type"));
            Assert.Equal("0", trailers.Get("grpc-status"));
            Assert.Equal("hpack" + streamId, reply?.Text);
            if (streamId == 1)
            {
                firstHeadersBytes = headersBytes;
                Assert.True(decoder.DynamicTableCount > 0, "Kestrel added nothing to the dynamic table");
            }
            else
            {
                // The second response's headers refer to the entries the first one added.
                Assert.True(headersBytes < firstHeadersBytes, $"second headers block {headersBytes} bytes, first {firstHeadersBytes}");
            }
        }
    }

    private static async Task WriteFrameAsync(Stream stream, byte type, byte flags, int streamId, byte[] payload)
    {
        var frame = new byte[9 + payload.Length];
        frame[0] = (byte)(payload.Length >> 16);
        frame[1] = (byte)(payload.Length >> 8);
        frame[2] = (byte)payload.Length;
        frame[3] = type;
        frame[4] = flags;
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(5), streamId);
        payload.CopyTo(frame, 9);
        await stream.WriteAsync(frame);
        await stream.FlushAsync();
    }

    private static async Task<(byte Type, byte Flags, int StreamId, byte[] Payload)> ReadFrameAsync(Stream stream)
    {
        var header = new byte[9];
        await stream.ReadExactlyAsync(header);
        int length = header[0] << 16 | header[1] << 8 | header[2];
        var payload = new byte[length];
        await stream.ReadExactlyAsync(payload);
        return (header[3], header[4], BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(5)) & 0x7FFFFFFF, payload);
    }
}
