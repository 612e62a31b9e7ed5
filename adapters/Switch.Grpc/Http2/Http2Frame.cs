using System.Buffers.Binary;
using System.Diagnostics;

namespace Switch.Grpc.Http2;

/// <summary>HTTP/2 frame types (RFC 7540 §6).</summary>
internal enum Http2FrameType : byte
{
    Data = 0x0,
    Headers = 0x1,
    Priority = 0x2,
    RstStream = 0x3,
    Settings = 0x4,
    PushPromise = 0x5,
    Ping = 0x6,
    GoAway = 0x7,
    WindowUpdate = 0x8,
    Continuation = 0x9,
}

/// <summary>Frame flags (RFC 7540 §6); their meaning depends on the frame type.</summary>
internal static class Http2Flags
{
    public const byte None = 0x0;
    public const byte EndStream = 0x1;
    public const byte Ack = 0x1;
    public const byte EndHeaders = 0x4;
    public const byte Padded = 0x8;
    public const byte Priority = 0x20;
}

/// <summary>Error codes of RST_STREAM and GOAWAY (RFC 7540 §7).</summary>
internal static class Http2ErrorCode
{
    public const uint NoError = 0x0;
    public const uint ProtocolError = 0x1;
    public const uint FlowControlError = 0x3;
    public const uint FrameSizeError = 0x6;
    public const uint RefusedStream = 0x7;
    public const uint Cancel = 0x8;
    public const uint CompressionError = 0x9;
    public const uint EnhanceYourCalm = 0xb;
    public const uint InadequateSecurity = 0xc;
}

/// <summary>SETTINGS identifiers (RFC 7540 §6.5.2).</summary>
internal static class Http2Setting
{
    public const ushort HeaderTableSize = 0x1;
    public const ushort EnablePush = 0x2;
    public const ushort MaxConcurrentStreams = 0x3;
    public const ushort InitialWindowSize = 0x4;
    public const ushort MaxFrameSize = 0x5;
    public const ushort MaxHeaderListSize = 0x6;

    public const int EntryBytes = 6;
}

/// <summary>The protocol's fixed numbers (RFC 7540 §3.5, §4.2, §6.9).</summary>
internal static class Http2Limits
{
    /// <summary>The client connection preface, sent before anything else.</summary>
    public static ReadOnlySpan<byte> ClientPreface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    public const int DefaultMaxFrameBytes = 16_384;
    public const int LargestMaxFrameBytes = 16_777_215;
    public const int DefaultWindowBytes = 65_535;
    public const int LargestWindowBytes = int.MaxValue;
    public const int PingPayloadBytes = 8;
    public const int GoAwayMinPayloadBytes = 8;
    public const int WindowUpdatePayloadBytes = 4;
    public const int RstStreamPayloadBytes = 4;
    public const int PriorityPayloadBytes = 5;
}

/// <summary>The 9-byte frame header (RFC 7540 §4.1): 24-bit length, type, flags, reserved bit and 31-bit stream id.</summary>
internal readonly record struct Http2FrameHeader(int PayloadBytes, Http2FrameType Type, byte Flags, int StreamId)
{
    public const int Bytes = 9;

    public bool Has(byte flag) => (Flags & flag) != 0;

    public static Http2FrameHeader Read(ReadOnlySpan<byte> source)
    {
        Debug.Assert(source.Length >= Bytes);
        int length = source[0] << 16 | source[1] << 8 | source[2];
        int streamId = (int)(BinaryPrimitives.ReadUInt32BigEndian(source[5..]) & 0x7FFF_FFFF); // the reserved bit is ignored
        return new Http2FrameHeader(length, (Http2FrameType)source[3], source[4], streamId);
    }

    public void Write(Span<byte> destination)
    {
        Debug.Assert(PayloadBytes is >= 0 and <= Http2Limits.LargestMaxFrameBytes && StreamId >= 0);
        destination[0] = (byte)(PayloadBytes >> 16);
        destination[1] = (byte)(PayloadBytes >> 8);
        destination[2] = (byte)PayloadBytes;
        destination[3] = (byte)Type;
        destination[4] = Flags;
        BinaryPrimitives.WriteUInt32BigEndian(destination[5..], (uint)StreamId);
    }
}

/// <summary>A connection error (RFC 7540 §5.4.1): the connection is unusable; its calls fail with this code.</summary>
internal sealed class Http2ConnectionException(uint errorCode, string message) : IOException(message)
{
    public uint ErrorCode { get; } = errorCode;
}
