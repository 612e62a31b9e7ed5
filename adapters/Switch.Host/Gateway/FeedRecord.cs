using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;
using Switch.Engine.Events;

namespace Switch.Host.Gateway;

/// <summary>
/// One final outcome as kept in an institution's outcome feed file: fixed 192 bytes, little-endian, so a feed
/// number's place in its segment is arithmetic and a torn tail shows as a length that is not a multiple of 192 or a
/// record whose check fails.
/// <code>
///   0 feedNo i64 | 8 id i64 | 16 amount i64 | 24 fee i64 | 32 receivedUs i64 | 40 finalUs i64
///  48 type u8 | 49 status u8 | 50 reject u8 | 51 reject field u8 | 52 duplicate u8
///  53 order length u8 | 54 reason length u8 | 55 echo length u8
///  56 order 32 bytes | 88 reason 32 bytes | 120 echo 64 bytes | 184 CRC-32C of bytes 0..183, u32 | 188 zero u32
/// </code>
/// </summary>
public static class FeedRecord
{
    public const int Bytes = 192;
    private const int CheckedBytes = 184;

    public static void Write(in ResultFields o, Span<byte> destination)
    {
        Span<byte> d = destination[..Bytes];
        d.Clear();
        BinaryPrimitives.WriteInt64LittleEndian(d, o.FeedNo);
        BinaryPrimitives.WriteInt64LittleEndian(d[8..], o.TransactionId);
        BinaryPrimitives.WriteInt64LittleEndian(d[16..], o.AmountFen);
        BinaryPrimitives.WriteInt64LittleEndian(d[24..], o.FeeFen);
        BinaryPrimitives.WriteInt64LittleEndian(d[32..], o.ReceivedUs);
        BinaryPrimitives.WriteInt64LittleEndian(d[40..], o.FinalUs);
        d[48] = (byte)o.RequestType;
        d[49] = (byte)o.Status;
        d[50] = (byte)o.Reject;
        d[51] = (byte)o.RejectField;
        d[52] = o.Duplicate ? (byte)1 : (byte)0;
        d[53] = (byte)o.OrderNo.Length;
        d[54] = (byte)o.Reason.Length;
        d[55] = (byte)o.Echo.Length;
        o.OrderNo.Span.CopyTo(d[56..]);
        o.Reason.Span.CopyTo(d[88..]);
        o.Echo.Span.CopyTo(d[120..]);
        BinaryPrimitives.WriteUInt32LittleEndian(d[CheckedBytes..], Check(d));
    }

    /// <summary>The feed number a record claims (valid only if <see cref="IsIntact"/>).</summary>
    public static long FeedNoOf(ReadOnlySpan<byte> record) => BinaryPrimitives.ReadInt64LittleEndian(record);

    public static long FinalUsOf(ReadOnlySpan<byte> record) => BinaryPrimitives.ReadInt64LittleEndian(record[40..]);

    /// <summary>Its check holds and its text lengths fit: written whole by <see cref="Write"/>.</summary>
    public static bool IsIntact(ReadOnlySpan<byte> record) =>
        BinaryPrimitives.ReadUInt32LittleEndian(record[CheckedBytes..]) == Check(record)
        && record[53] <= Text32.CapacityBytes && record[54] <= Text32.CapacityBytes && record[55] <= Text64.CapacityBytes;

    public static ResultFields Read(ReadOnlySpan<byte> s)
    {
        var o = new ResultFields
        {
            FeedNo = BinaryPrimitives.ReadInt64LittleEndian(s),
            TransactionId = BinaryPrimitives.ReadInt64LittleEndian(s[8..]),
            AmountFen = BinaryPrimitives.ReadInt64LittleEndian(s[16..]),
            FeeFen = BinaryPrimitives.ReadInt64LittleEndian(s[24..]),
            ReceivedUs = BinaryPrimitives.ReadInt64LittleEndian(s[32..]),
            FinalUs = BinaryPrimitives.ReadInt64LittleEndian(s[40..]),
            RequestType = (RequestType)s[48],
            Status = (TransactionStatus)s[49],
            Reject = (RejectCode)s[50],
            RejectField = (RequestField)s[51],
            Duplicate = s[52] != 0,
        };
        o.OrderNo.Set(s.Slice(56, s[53]));
        o.Reason.Set(s.Slice(88, s[54]));
        o.Echo.Set(s.Slice(120, s[55]));
        return o;
    }

    /// <summary>CRC-32C over the first 184 bytes, eight at a time (hardware-assisted where the CPU has it).</summary>
    private static uint Check(ReadOnlySpan<byte> record)
    {
        ReadOnlySpan<ulong> words = MemoryMarshal.Cast<byte, ulong>(record[..CheckedBytes]);
        uint crc = ~0u;
        foreach (ulong w in words) crc = BitOperations.Crc32C(crc, BitConverter.IsLittleEndian ? w : BinaryPrimitives.ReverseEndianness(w));
        return ~crc;
    }
}
