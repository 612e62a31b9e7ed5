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
