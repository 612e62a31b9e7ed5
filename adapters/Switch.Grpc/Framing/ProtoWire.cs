using System.Numerics;

namespace Switch.Grpc.Framing;

/// <summary>The protobuf wire format's pieces for hand encoders (<see cref="IMessageEncoder"/>): varints, tags and
/// proto3's rule that a zero or empty field is left out. Field numbers below 16 only: one tag byte.</summary>
public static class ProtoWire
{
    public const int Varint = 0, LengthDelimited = 2;

    public static byte Tag(int field, int wireType)
    {
        if (field is < 1 or > 15) throw new ArgumentOutOfRangeException(nameof(field), field, "one tag byte holds fields 1 to 15");
        return (byte)(field << 3 | wireType);
    }

    public static int VarintBytes(ulong value) => BitOperations.Log2(value | 1) / 7 + 1;

    public static int WriteVarint(Span<byte> destination, ulong value)
    {
        int at = 0;
        while (value >= 0x80)
        {
            destination[at++] = (byte)(value | 0x80);
            value >>= 7;
        }
        destination[at++] = (byte)value;
        return at;
    }

    /// <summary>An int64, int32, enum or bool field's bytes; negative int32 and enum values go sign-extended to 64 bits, as protobuf does.</summary>
    public static int FieldBytes(long value) => value == 0 ? 0 : 1 + VarintBytes((ulong)value);

    public static void WriteField(Span<byte> destination, ref int at, byte tag, long value)
    {
        if (value == 0) return;
        destination[at++] = tag;
        at += WriteVarint(destination[at..], (ulong)value);
    }

    /// <summary>A string or bytes field's bytes (nothing when empty).</summary>
    public static int FieldBytes(ReadOnlySpan<byte> value) => value.IsEmpty ? 0 : 1 + VarintBytes((ulong)value.Length) + value.Length;

    public static void WriteField(Span<byte> destination, ref int at, byte tag, ReadOnlySpan<byte> value)
    {
        if (value.IsEmpty) return;
        destination[at++] = tag;
        at += WriteVarint(destination[at..], (ulong)value.Length);
        value.CopyTo(destination[at..]);
        at += value.Length;
    }
}

/// <summary>How one element's fields go on the wire, for <see cref="BatchFormEncoder{T, TCodec}"/>.</summary>
public interface IFieldsCodec<T>
{
    /// <summary>The message's repeated field that carries a batch of elements (each one a whole single message).</summary>
    static abstract int BatchField { get; }

    /// <summary>The encoded size of one element.</summary>
    static abstract int Bytes(in T fields);

    /// <summary>Writes one element; returns the bytes written.</summary>
    static abstract int Write(Span<byte> destination, in T fields);
}

/// <summary>
/// A message of the streams' batch form (bank.proto, institution.proto) encoded from flat fields: one element as the
/// single form, or a run of them as the batch field's elements. The elements' sizes are kept between sizing and writing.
/// </summary>
public struct BatchFormEncoder<T, TCodec>(T[] slots, int start, int count, bool batch, int[] elementBytes) : IMessageEncoder
    where TCodec : IFieldsCodec<T>
{
    private int _size = -1;

    public int CalculateSize()
    {
        if (count < 1 || (!batch && count != 1) || elementBytes.Length < count) throw new ArgumentException($"{count} elements, batch {batch}, {elementBytes.Length} sizes");
        if (!batch) return _size = TCodec.Bytes(slots[start]);
        int tagBytes = ProtoWire.VarintBytes(BatchTag);
        int total = 0;
        for (int i = 0; i < count; i++)
        {
            int bytes = elementBytes[i] = TCodec.Bytes(slots[start + i]);
            total += tagBytes + ProtoWire.VarintBytes((ulong)bytes) + bytes;
        }
        return _size = total;
    }

    public readonly int WriteTo(Span<byte> destination)
    {
        if (_size < 0) throw new InvalidOperationException("sized first");
        if (!batch) return TCodec.Write(destination, slots[start]);
        int at = 0;
        for (int i = 0; i < count; i++)
        {
            at += ProtoWire.WriteVarint(destination[at..], BatchTag);
            at += ProtoWire.WriteVarint(destination[at..], (ulong)elementBytes[i]);
            at += TCodec.Write(destination[at..], slots[start + i]);
        }
        return at;
    }

    private static ulong BatchTag => (ulong)(TCodec.BatchField << 3 | ProtoWire.LengthDelimited);
}
