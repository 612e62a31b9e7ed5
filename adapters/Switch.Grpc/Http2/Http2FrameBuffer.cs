using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;

namespace Switch.Grpc.Http2;

/// <summary>
/// Frames queued for the connection's writer, encoded straight into one pooled array (no object per frame). It grows by
/// doubling up to <see cref="MaxBytes"/>: request DATA is bounded by the peer's windows, HEADERS by its stream limit.
/// Not thread-safe: the connection fills it under its lock and swaps it with the writer's.
/// </summary>
internal sealed class Http2FrameBuffer : IDisposable
{
    /// <summary>A burst never holds more: past it the peer's windows or stream limit were not honoured (a bug).</summary>
    public const int MaxBytes = 64 * 1024 * 1024;

    private const int InitialBytes = 16 * 1024;

    private byte[] _bytes = ArrayPool<byte>.Shared.Rent(InitialBytes);

    public int Count { get; private set; }

    public ReadOnlyMemory<byte> Written => _bytes.AsMemory(0, Count);

    public void Clear() => Count = 0;

    private Span<byte> Reserve(int bytes)
    {
        int needed = Count + bytes;
        if (needed > _bytes.Length)
        {
            if (needed > MaxBytes) throw new InvalidOperationException($"HTTP/2 write burst over {MaxBytes} bytes.");
            byte[] bigger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, Math.Min(2 * _bytes.Length, MaxBytes)));
            _bytes.AsSpan(0, Count).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_bytes);
            _bytes = bigger;
        }
        Span<byte> span = _bytes.AsSpan(Count, bytes);
        Count = needed;
        return span;
    }

    private Span<byte> Frame(Http2FrameType type, byte flags, int streamId, int payloadBytes)
    {
        Span<byte> frame = Reserve(Http2FrameHeader.Bytes + payloadBytes);
        new Http2FrameHeader(payloadBytes, type, flags, streamId).Write(frame);
        return frame[Http2FrameHeader.Bytes..];
    }

    public void WritePreface() => Http2Limits.ClientPreface.CopyTo(Reserve(Http2Limits.ClientPreface.Length));

    public void WriteSettings(ReadOnlySpan<(ushort Id, uint Value)> settings)
    {
        Span<byte> payload = Frame(Http2FrameType.Settings, Http2Flags.None, 0, settings.Length * Http2Setting.EntryBytes);
        for (int i = 0; i < settings.Length; i++)
        {
            Span<byte> entry = payload.Slice(i * Http2Setting.EntryBytes, Http2Setting.EntryBytes);
            BinaryPrimitives.WriteUInt16BigEndian(entry, settings[i].Id);
            BinaryPrimitives.WriteUInt32BigEndian(entry[2..], settings[i].Value);
        }
    }

    public void WriteSettingsAck() => Frame(Http2FrameType.Settings, Http2Flags.Ack, 0, 0);

    public void WritePing(ReadOnlySpan<byte> opaque, bool ack = false)
    {
        Debug.Assert(opaque.Length == Http2Limits.PingPayloadBytes);
        opaque.CopyTo(Frame(Http2FrameType.Ping, ack ? Http2Flags.Ack : Http2Flags.None, 0, Http2Limits.PingPayloadBytes));
    }

    public void WriteWindowUpdate(int streamId, int incrementBytes)
    {
        Debug.Assert(incrementBytes is > 0 and <= Http2Limits.LargestWindowBytes);
        BinaryPrimitives.WriteUInt32BigEndian(Frame(Http2FrameType.WindowUpdate, Http2Flags.None, streamId, Http2Limits.WindowUpdatePayloadBytes), (uint)incrementBytes);
    }

    public void WriteRstStream(int streamId, uint errorCode)
    {
        Debug.Assert(streamId > 0);
        BinaryPrimitives.WriteUInt32BigEndian(Frame(Http2FrameType.RstStream, Http2Flags.None, streamId, Http2Limits.RstStreamPayloadBytes), errorCode);
    }

    public void WriteGoAway(int lastStreamId, uint errorCode)
    {
        Span<byte> payload = Frame(Http2FrameType.GoAway, Http2Flags.None, 0, Http2Limits.GoAwayMinPayloadBytes);
        BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)lastStreamId);
        BinaryPrimitives.WriteUInt32BigEndian(payload[4..], errorCode);
    }

    /// <summary>A header block as HEADERS and as many CONTINUATION frames as the peer's frame size needs.</summary>
    public void WriteHeaders(int streamId, ReadOnlySpan<byte> block, bool endStream, int maxFrameBytes)
    {
        Debug.Assert(streamId > 0 && maxFrameBytes >= Http2Limits.DefaultMaxFrameBytes);
        Http2FrameType type = Http2FrameType.Headers;
        byte endStreamFlag = endStream ? Http2Flags.EndStream : Http2Flags.None; // on HEADERS only, never on CONTINUATION
        do
        {
            int chunk = Math.Min(block.Length, maxFrameBytes);
            byte flags = (byte)(endStreamFlag | (chunk == block.Length ? Http2Flags.EndHeaders : Http2Flags.None));
            block[..chunk].CopyTo(Frame(type, flags, streamId, chunk));
            block = block[chunk..];
            type = Http2FrameType.Continuation;
            endStreamFlag = Http2Flags.None;
        } while (!block.IsEmpty);
    }

    public void WriteData(int streamId, ReadOnlySpan<byte> data, bool endStream)
    {
        Debug.Assert(streamId > 0);
        data.CopyTo(Frame(Http2FrameType.Data, endStream ? Http2Flags.EndStream : Http2Flags.None, streamId, data.Length));
    }

    public void Dispose()
    {
        ArrayPool<byte>.Shared.Return(_bytes);
        _bytes = [];
        Count = 0;
    }
}
