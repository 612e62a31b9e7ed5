using System.Buffers;
using System.IO.Pipelines;
using BenchmarkDotNet.Attributes;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Switch.Grpc.Framing;

namespace Switch.Benchmarks.Grpc;

/// <summary>
/// gRPC length-prefixed framing of a ~100-byte protobuf message (a well-known Api message, so this project
/// needs no generated code). Steady state: encode and frame-decode allocate nothing; parse allocates the message.
/// </summary>
[MemoryDiagnoser]
public class GrpcFramingBenchmarks
{
    private const int Batch = 64;
    private const int MaxMessageBytes = 4 * 1024 * 1024;

    private Api _message = null!;
    private ArrayBufferWriter<byte> _buffer = null!;
    private ReadOnlySequence<byte> _frames;
    private byte[] _framesBytes = null!;
    private byte[] _gzipFrame = null!;
    private Pipe _pipe = null!;
    // One reader for the pipe's life: a reader may hold the last read's buffer between calls, so a second one on
    // the same pipe would find a read still in progress.
    private GrpcMessageReader<Api> _reader = null!;

    public int MessageBytes => _message.CalculateSize();

    [GlobalSetup]
    public void Setup()
    {
        _message = new Api
        {
            Name = "switch.payments.v1.Transfers",
            Version = "v1.4.2",
            Methods =
            {
                new Method { Name = "Submit", RequestTypeUrl = "type.googleapis.com/switch.Transfer", ResponseStreaming = true },
            },
        };
        _buffer = new ArrayBufferWriter<byte>(64 * 1024);
        for (int i = 0; i < Batch; i++) GrpcFrame.Write(_buffer, _message, MaxMessageBytes);
        _framesBytes = _buffer.WrittenSpan.ToArray();
        var gzip = new ArrayBufferWriter<byte>();
        GzipMessages.Write(gzip, _message, MaxMessageBytes);
        _gzipFrame = gzip.WrittenSpan.ToArray();
        _frames = new ReadOnlySequence<byte>(_framesBytes);
        _pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 0, useSynchronizationContext: false));
        _reader = new GrpcMessageReader<Api>(_pipe.Reader, Api.Parser, MaxMessageBytes);
        Console.WriteLine($"// message bytes: {MessageBytes}, frame bytes: {MessageBytes + GrpcFrame.HeaderBytes}, gzip frame bytes: {_gzipFrame.Length}");
    }

    /// <summary>One framed message serialized straight into the writer's memory.</summary>
    [Benchmark]
    public int EncodeOne()
    {
        _buffer.ResetWrittenCount();
        return GrpcFrame.Write(_buffer, _message, MaxMessageBytes);
    }

    /// <summary>The same message deflated into a gzip frame (what compressResponses costs per answer).</summary>
    [Benchmark]
    public int EncodeOneGzip()
    {
        _buffer.ResetWrittenCount();
        return GzipMessages.Write(_buffer, _message, MaxMessageBytes);
    }

    /// <summary>A gzip frame of the message inflated and parsed (what a gzip request costs the server).</summary>
    [Benchmark]
    public int DecodeOneGzip()
    {
        var frame = new ReadOnlySequence<byte>(_gzipFrame);
        GrpcFrame.TryRead(ref frame, MaxMessageBytes, out var payload, out _);
        return GzipMessages.Parse(payload, Api.Parser, MaxMessageBytes).Methods.Count;
    }

    /// <summary>64 messages into one buffer (what one flush carries), per message.</summary>
    [Benchmark(OperationsPerInvoke = Batch)]
    public int EncodeBatch()
    {
        _buffer.ResetWrittenCount();
        int total = 0;
        for (int i = 0; i < Batch; i++) total += GrpcFrame.Write(_buffer, _message, MaxMessageBytes);
        return total;
    }

    /// <summary>Frame boundaries only (header parse, limit check, slice), per frame.</summary>
    [Benchmark(OperationsPerInvoke = Batch)]
    public long DecodeFrames()
    {
        var buffer = _frames;
        long bytes = 0;
        while (GrpcFrame.TryRead(ref buffer, MaxMessageBytes, out var payload)) bytes += payload.Length;
        return bytes;
    }

    /// <summary>Frame plus protobuf parse into a new message, per message.</summary>
    [Benchmark(OperationsPerInvoke = Batch)]
    public int DecodeAndParse()
    {
        var buffer = _frames;
        int n = 0;
        while (GrpcFrame.TryRead(ref buffer, MaxMessageBytes, out var payload)) n += Api.Parser.ParseFrom(payload).Methods.Count;
        return n;
    }

    /// <summary>Through a Pipe: write 64 frames, flush once, read them back with GrpcMessageReader; per message.</summary>
    [Benchmark(OperationsPerInvoke = Batch)]
    public async Task<int> PipeRoundTrip()
    {
        var writer = _pipe.Writer;
        for (int i = 0; i < Batch; i++) GrpcFrame.Write(writer, _message, MaxMessageBytes);
        await writer.FlushAsync();
        int n = 0;
        for (int i = 0; i < Batch; i++) n += (await _reader.ReadAsync())!.Methods.Count;
        return n;
    }
}
