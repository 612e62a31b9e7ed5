using BenchmarkDotNet.Attributes;
using Switch.Grpc.Http2.Hpack;

namespace Switch.Benchmarks.Grpc;

/// <summary>
/// HPACK decoding of a unary gRPC call's response header block and trailers, as Kestrel (the project's server) writes
/// them: on a connection's first call, literals it adds to its dynamic table (content-type, date, grpc-status); on
/// every later call (until the date changes, once a second) only references to those entries. Per call: both blocks.
/// Expected: no allocation.
/// </summary>
[MemoryDiagnoser]
public class HpackBenchmarks
{
    private const int CallsPerInvoke = 64;

    // Captured from the project's Kestrel server (HpackKestrelTests' connection): :status 200, content-type
    // application/grpc and date with incremental indexing; trailers grpc-status 0 likewise with a new name.
    private static readonly byte[] FirstHeaders = Convert.FromHexString(
        "885F106170706C69636174696F6E2F67727063611D4D6F6E2C2030372044656320323032362031363A31333A303020474D54");
    private static readonly byte[] FirstTrailers = Convert.FromHexString("400B677270632D7374617475730130");
    // The same call's blocks once those entries are in the table: :status 200 (static), then dynamic 64 and 63; 62.
    private static readonly byte[] LaterHeaders = Convert.FromHexString("88C0BF");
    private static readonly byte[] LaterTrailers = Convert.FromHexString("BE");
    // RFC 7541 C.6.1: a response of Huffman-coded literals (what servers other than Kestrel tend to send).
    private static readonly byte[] HuffmanHeaders = Convert.FromHexString(
        "488264025885AEC3771A4B6196D07ABE941054D444A8200595040B8166E082A62D1BFF6E919D29AD171863C78F0B97C8E9AE82AE43D3");

    private readonly StatusSink _sink = new();
    private HpackDecoder _literals = null!;
    private HpackDecoder _indexed = null!;
    private HpackDecoder _huffman = null!;

    [GlobalSetup]
    public void Setup()
    {
        _literals = new HpackDecoder();
        _indexed = new HpackDecoder();
        _huffman = new HpackDecoder();
        _indexed.Decode(FirstHeaders, _sink);
        _indexed.Decode(FirstTrailers, _sink);
    }

    /// <summary>A connection's first call: every field a literal added to the table (the oldest evicted as it fills).</summary>
    [Benchmark(OperationsPerInvoke = CallsPerInvoke)]
    public int FirstCall()
    {
        int fields = 0;
        for (int i = 0; i < CallsPerInvoke; i++)
        {
            _literals.Decode(FirstHeaders, _sink);
            _literals.Decode(FirstTrailers, _sink);
            fields += _sink.TakeFields();
        }
        return fields;
    }

    /// <summary>Every later call: references into the static and dynamic tables.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = CallsPerInvoke)]
    public int LaterCall()
    {
        int fields = 0;
        for (int i = 0; i < CallsPerInvoke; i++)
        {
            _indexed.Decode(LaterHeaders, _sink);
            _indexed.Decode(LaterTrailers, _sink);
            fields += _sink.TakeFields();
        }
        return fields;
    }

    /// <summary>RFC 7541 C.6.1's four Huffman-coded literals (added to the table, as the RFC's encoder asks).</summary>
    [Benchmark(OperationsPerInvoke = CallsPerInvoke)]
    public int HuffmanResponse()
    {
        int fields = 0;
        for (int i = 0; i < CallsPerInvoke; i++)
        {
            _huffman.Decode(HuffmanHeaders, _sink);
            fields += _sink.TakeFields();
        }
        return fields;
    }

    /// <summary>What a client keeps of a response: the status and the gRPC status, as numbers.</summary>
    private sealed class StatusSink : IHeaderSink
    {
        private int _fields;

        public int HttpStatus { get; private set; }
        public int GrpcStatus { get; private set; } = -1;

        public void OnHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
        {
            _fields++;
            if (name.SequenceEqual(":status"u8)) HttpStatus = Number(value);
            else if (name.SequenceEqual("grpc-status"u8)) GrpcStatus = Number(value);
        }

        public int TakeFields()
        {
            int fields = _fields;
            _fields = 0;
            return fields;
        }

        private static int Number(ReadOnlySpan<byte> digits)
        {
            int number = 0;
            foreach (byte digit in digits) number = number * 10 + (digit - '0');
            return number;
        }
    }
}
