using System.Buffers.Binary;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Switch.Contracts.V1;
using Switch.Engine.Events;
using Switch.Grpc;
using EngineStatus = Switch.Engine.Events.TransactionStatus;
using WireStatus = Switch.Contracts.V1.TransactionStatus;

namespace Switch.Host.Gateway;

/// <summary>
/// A <see cref="TransferResult"/> written straight from a feed record's bytes: the same wire bytes as
/// <c>ResultMapping.ToResult(record).ToByteArray()</c> (a test holds them equal), without the message object and its
/// strings per outcome. A reader re-reading millions of outcomes then allocates nothing per outcome. One instance per
/// subscriber, pointed at each record in turn; it is only written, never parsed.
/// </summary>
public sealed class FeedResultMessage : IMessage<FeedResultMessage>, IBufferMessage
{
    /// <summary>The Outcomes method with this message as its response (same path and wire format).</summary>
    public static readonly GrpcMethod<OutcomesRequest, FeedResultMessage> Outcomes = new(MethodType.ServerStreaming,
        InstitutionMethods.Outcomes.ServiceFullName, InstitutionMethods.Outcomes.Name, OutcomesRequest.Parser,
        new MessageParser<FeedResultMessage>(() => new FeedResultMessage()));

    private byte[] _buffer = [];
    private int _offset;

    /// <summary>Points at the record at <paramref name="offset"/> in <paramref name="buffer"/> (checked intact by the cursor).</summary>
    public void Point(byte[] buffer, int offset)
    {
        _buffer = buffer;
        _offset = offset;
    }

    private ReadOnlySpan<byte> R => _buffer.AsSpan(_offset, FeedRecord.Bytes);

    public MessageDescriptor Descriptor => TransferResult.Descriptor;

    public int CalculateSize()
    {
        ReadOnlySpan<byte> r = R;
        int size = 0;
        size += Text(r[53]);
        size += Int64(Long(r, 8));
        size += Enum((int)Status(r));
        RejectCode reject = (RejectCode)r[50];
        if (reject == RejectCode.None)
        {
            if ((EngineStatus)r[49] == EngineStatus.Failed) size += Text(r[54]);
        }
        else
        {
            size += Str(ResultMapping.RejectName(reject));
            size += Str(ResultMapping.FieldName((RequestField)r[51]));
        }
        if (r[52] != 0) size += 2;
        size += Int64(Long(r, 16)) + Int64(Long(r, 24)) + Int64(Long(r, 0)) + Int64(Long(r, 32)) + Int64(Long(r, 40));
        size += Text(r[55]);
        size += Enum(r[48]);
        return size;
    }

    public void InternalWriteTo(ref WriteContext output)
    {
        ReadOnlySpan<byte> r = R;
        WriteText(ref output, 1, r.Slice(56, r[53]));
        WriteInt64(ref output, 2, Long(r, 8));
        WriteEnum(ref output, 3, (int)Status(r));
        RejectCode reject = (RejectCode)r[50];
        if (reject == RejectCode.None)
        {
            if ((EngineStatus)r[49] == EngineStatus.Failed) WriteText(ref output, 4, r.Slice(88, r[54]));
        }
        else
        {
            WriteString(ref output, 5, ResultMapping.RejectName(reject));
            WriteString(ref output, 6, ResultMapping.FieldName((RequestField)r[51]));
        }
        if (r[52] != 0)
        {
            output.WriteTag(7, WireFormat.WireType.Varint);
            output.WriteBool(true);
        }
        WriteInt64(ref output, 8, Long(r, 16));
        WriteInt64(ref output, 9, Long(r, 24));
        WriteInt64(ref output, 10, Long(r, 0));
        WriteInt64(ref output, 11, Long(r, 32));
        WriteInt64(ref output, 12, Long(r, 40));
        WriteText(ref output, 13, r.Slice(120, r[55]));
        WriteEnum(ref output, 14, r[48]);
    }

    public void WriteTo(CodedOutputStream output)
    {
        // Not the server's path (it writes through a span); kept correct for any other writer.
        byte[] bytes = new byte[CalculateSize()];
        this.WriteTo(bytes.AsSpan());
        foreach (byte b in bytes) output.WriteRawTag(b);
    }

    private static WireStatus Status(ReadOnlySpan<byte> r) => (RejectCode)r[50] != RejectCode.None ? WireStatus.Rejected : (EngineStatus)r[49] switch
    {
        EngineStatus.Dispatched => WireStatus.Processing,
        EngineStatus.Unknown => WireStatus.Unknown,
        EngineStatus.Succeeded => WireStatus.Succeeded,
        EngineStatus.Failed => WireStatus.Failed,
        var s => throw new InvalidOperationException($"a feed record with status {s}"),
    };

    private static long Long(ReadOnlySpan<byte> r, int at) => BinaryPrimitives.ReadInt64LittleEndian(r[at..]);

    // Field numbers here are all below 16: one tag byte each. proto3 leaves out zero values and empty strings.
    private static int Int64(long value) => value == 0 ? 0 : 1 + CodedOutputStream.ComputeInt64Size(value);
    private static int Enum(int value) => value == 0 ? 0 : 1 + CodedOutputStream.ComputeEnumSize(value);
    private static int Text(int bytes) => bytes == 0 ? 0 : 1 + CodedOutputStream.ComputeLengthSize(bytes) + bytes;
    private static int Str(string value) => value.Length == 0 ? 0 : 1 + CodedOutputStream.ComputeStringSize(value);

    private static void WriteInt64(ref WriteContext output, int field, long value)
    {
        if (value == 0) return;
        output.WriteTag(field, WireFormat.WireType.Varint);
        output.WriteInt64(value);
    }

    private static void WriteEnum(ref WriteContext output, int field, int value)
    {
        if (value == 0) return;
        output.WriteTag(field, WireFormat.WireType.Varint);
        output.WriteEnum(value);
    }

    private static void WriteString(ref WriteContext output, int field, string value)
    {
        if (value.Length == 0) return;
        output.WriteTag(field, WireFormat.WireType.LengthDelimited);
        output.WriteString(value);
    }

    /// <summary>A string field from UTF-8 bytes as stored (at most 64), without making a string.</summary>
    private static void WriteText(ref WriteContext output, int field, ReadOnlySpan<byte> utf8)
    {
        if (utf8.IsEmpty) return;
        output.WriteTag(field, WireFormat.WireType.LengthDelimited);
        output.WriteLength(utf8.Length);
        int i = 0;
        for (; i + 4 < utf8.Length; i += 5) output.WriteRawTag(utf8[i], utf8[i + 1], utf8[i + 2], utf8[i + 3], utf8[i + 4]);
        for (; i < utf8.Length; i++) output.WriteRawTag(utf8[i]);
    }

    public void MergeFrom(FeedResultMessage message) => throw new NotSupportedException("a feed result is only written");
    public void MergeFrom(CodedInputStream input) => throw new NotSupportedException("a feed result is only written");
    public void InternalMergeFrom(ref ParseContext ctx) => throw new NotSupportedException("a feed result is only written");

    public FeedResultMessage Clone()
    {
        var copy = new FeedResultMessage();
        copy.Point(R.ToArray(), 0);
        return copy;
    }

    public bool Equals(FeedResultMessage? other) => other is not null && R.SequenceEqual(other.R);
    public override bool Equals(object? obj) => Equals(obj as FeedResultMessage);
    public override int GetHashCode() => _offset;
}
