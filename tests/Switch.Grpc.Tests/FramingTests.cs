using System.Buffers;
using System.IO.Pipelines;
using Google.Protobuf;
using Switch.Grpc.Framing;
using Switch.Grpc.Tests.Interop;

namespace Switch.Grpc.Tests;

public class FramingTests
{
    private const int Max = 1024 * 1024;

    private static EchoRequest Message(int i) => new() { Text = "m" + i, Payload = ByteString.CopyFrom(new byte[i % 200]) };

    private static byte[] Encode(IEnumerable<EchoRequest> messages)
    {
        var buffer = new ArrayBufferWriter<byte>();
        foreach (var m in messages) GrpcFrame.Write(buffer, m, Max);
        return buffer.WrittenSpan.ToArray();
    }

    private static async Task<List<EchoRequest>> ReadAll(byte[] bytes, int chunkBytes, int max = Max)
    {
        var pipe = new Pipe();
        var reader = new GrpcMessageReader<EchoRequest>(pipe.Reader, EchoRequest.Parser, max);
        var feed = Task.Run(async () =>
        {
            for (int offset = 0; offset < bytes.Length; offset += chunkBytes)
                await pipe.Writer.WriteAsync(bytes.AsMemory(offset, Math.Min(chunkBytes, bytes.Length - offset)));
            await pipe.Writer.CompleteAsync();
        });
        var result = new List<EchoRequest>();
        await foreach (var m in reader.ReadAllAsync()) result.Add(m);
        await feed;
        Assert.True(reader.IsEnded);
        return result;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(5)]
    [InlineData(7)]
    [InlineData(4096)]
    [InlineData(1 << 20)]
    public async Task Frames_split_across_reads_or_many_per_read_round_trip(int chunkBytes)
    {
        var messages = Enumerable.Range(0, 300).Select(Message).ToList();
        var read = await ReadAll(Encode(messages), chunkBytes).Bounded();
        Assert.Equal(messages, read);
    }

    /// <summary>Counts the reads and advances a reader makes of the pipe it wraps.</summary>
    private sealed class CountingReader(PipeReader inner) : PipeReader
    {
        public int Reads;
        public int Advances;
        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default) { Reads++; return inner.ReadAsync(cancellationToken); }
        public override bool TryRead(out ReadResult result) { Reads++; return inner.TryRead(out result); }
        public override void AdvanceTo(SequencePosition consumed) { Advances++; inner.AdvanceTo(consumed); }
        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) { Advances++; inner.AdvanceTo(consumed, examined); }
        public override void CancelPendingRead() => inner.CancelPendingRead();
        public override void Complete(Exception? exception = null) => inner.Complete(exception);
    }

    [Fact]
    public async Task Frames_that_arrived_together_are_parsed_from_one_read_and_one_advance()
    {
        var pipe = new Pipe();
        var counting = new CountingReader(pipe.Reader);
        var reader = new GrpcMessageReader<EchoRequest>(counting, EchoRequest.Parser, Max);
        var messages = Enumerable.Range(0, 100).Select(Message).ToList();
        await pipe.Writer.WriteAsync(Encode(messages)); // all at once; the writer stays open

        var read = new List<EchoRequest>();
        for (int i = 0; i < messages.Count; i++) read.Add((await reader.ReadAsync().AsTask().Bounded())!);
        Assert.Equal(messages, read);
        Assert.Equal((1, 0), (counting.Reads, counting.Advances)); // the held buffer still holds the last frame's end

        // The rest: a frame split over two writes, then the end. The held bytes are given back before reading on.
        byte[] next = Encode([Message(7)]);
        await pipe.Writer.WriteAsync(next.AsMemory(0, 3));
        Task<EchoRequest?> pending = reader.ReadAsync().AsTask();
        await pipe.Writer.WriteAsync(next.AsMemory(3));
        Assert.Equal(Message(7), await pending.Bounded());
        await pipe.Writer.CompleteAsync();
        Assert.Null(await reader.ReadAsync().AsTask().Bounded());
        Assert.True(reader.IsEnded);
    }

    [Fact]
    public async Task Zero_length_message_is_a_message_not_the_end()
    {
        var empty = new EchoRequest();
        byte[] bytes = Encode([empty, empty, Message(1)]);
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0 }, bytes[..5]);
        var read = await ReadAll(bytes, 2).Bounded();
        Assert.Equal(3, read.Count);
        Assert.Equal(empty, read[0]);
        Assert.Equal(empty, read[1]);
    }

    [Fact]
    public async Task Empty_stream_ends_cleanly()
    {
        Assert.Empty(await ReadAll([], 1).Bounded());
    }

    [Fact]
    public async Task Oversize_frame_is_refused_from_its_header_without_buffering_the_payload()
    {
        var pipe = new Pipe();
        var reader = new GrpcMessageReader<EchoRequest>(pipe.Reader, EchoRequest.Parser, maxMessageBytes: 1000);
        byte[] header = new byte[5];
        GrpcFrame.WriteHeader(header, 1001);
        await pipe.Writer.WriteAsync(header); // Only the header: the payload never comes, and the writer stays open.
        var e = await Assert.ThrowsAsync<RpcException>(() => reader.ReadAsync().AsTask().Bounded());
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
    }

    [Fact]
    public async Task Frame_at_exactly_the_limit_is_accepted()
    {
        var m = new EchoRequest { Payload = ByteString.CopyFrom(new byte[100]) };
        var read = await ReadAll(Encode([m]), 10, max: m.CalculateSize()).Bounded();
        Assert.Equal(m, Assert.Single(read));
    }

    [Theory]
    [InlineData(3)]  // Inside the header.
    [InlineData(5)]  // Header only.
    [InlineData(9)]  // Inside the payload.
    public async Task Truncated_frame_at_end_of_stream_is_internal(int keepBytes)
    {
        byte[] bytes = Encode([Message(1), Message(50)]);
        int firstFrame = 5 + Message(1).CalculateSize();
        var e = await Assert.ThrowsAsync<RpcException>(() => ReadAll(bytes[..(firstFrame + keepBytes)], 4).Bounded());
        Assert.Equal(StatusCode.Internal, e.StatusCode);
    }

    [Fact]
    public async Task Compressed_flag_without_negotiated_encoding_is_internal()
    {
        byte[] bytes = Encode([Message(3)]);
        bytes[0] = 1;
        var e = await Assert.ThrowsAsync<RpcException>(() => ReadAll(bytes, 64).Bounded());
        Assert.Equal(StatusCode.Internal, e.StatusCode);
    }

    [Fact]
    public async Task Unparsable_payload_is_internal()
    {
        byte[] bytes = [0, 0, 0, 0, 2, 0xFF, 0xFF];
        var e = await Assert.ThrowsAsync<RpcException>(() => ReadAll(bytes, 64).Bounded());
        Assert.Equal(StatusCode.Internal, e.StatusCode);
    }

    [Fact]
    public void TryRead_handles_a_header_split_across_sequence_segments()
    {
        byte[] bytes = Encode([Message(7), Message(8)]);
        // Three segments cutting through the first header and the second frame.
        var sequence = Segments(bytes[..2], bytes[2..12], bytes[12..]);
        Assert.True(GrpcFrame.TryRead(ref sequence, Max, out var first));
        Assert.Equal(Message(7), EchoRequest.Parser.ParseFrom(first));
        Assert.True(GrpcFrame.TryRead(ref sequence, Max, out var second));
        Assert.Equal(Message(8), EchoRequest.Parser.ParseFrom(second));
        Assert.True(sequence.IsEmpty);
        Assert.False(GrpcFrame.TryRead(ref sequence, Max, out _));
    }

    [Fact]
    public void Writer_puts_big_endian_length_after_a_zero_flag()
    {
        var m = new EchoRequest { Payload = ByteString.CopyFrom(new byte[300]) };
        byte[] bytes = Encode([m]);
        int size = m.CalculateSize();
        Assert.Equal(new byte[] { 0, 0, 0, (byte)(size >> 8), (byte)size }, bytes[..5]);
        Assert.Equal(5 + size, bytes.Length);
    }

    [Fact]
    public async Task Large_message_goes_through_the_buffer_writer_path_and_round_trips()
    {
        var m = new EchoRequest { Payload = ByteString.CopyFrom(Enumerable.Range(0, 300_000).Select(i => (byte)i).ToArray()) };
        Assert.True(m.CalculateSize() > GrpcFrame.ContiguousSerializeMaxBytes);
        var read = await ReadAll(Encode([m, Message(1)]), 8192).Bounded();
        Assert.Equal(m, read[0]);
    }

    [Fact]
    public void Writer_refuses_a_message_above_the_send_limit()
    {
        var e = Assert.Throws<RpcException>(() => GrpcFrame.Write(new ArrayBufferWriter<byte>(), Message(150), 10));
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
    }

    private static ReadOnlySequence<byte> Segments(params byte[][] parts)
    {
        var first = new Segment(parts[0], 0);
        var last = first;
        foreach (var part in parts.Skip(1)) last = last.Append(part);
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(byte[] memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(byte[] memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
