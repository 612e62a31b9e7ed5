using System.Buffers.Binary;
using Switch.Engine.Events;

namespace Switch.Clearing;

/// <summary>
/// One final outcome as kept in a batch's append-only record file (records.bin): fixed 128 bytes, little-endian,
/// so the file is its own index and a torn tail is visible as a length that is not a multiple of 128.
/// <code>
///   0 id i64 | 8 batch i64 | 16 amount i64 | 24 fee i64 | 32 receivedUs i64 | 40 finalUs i64
///  48 institution index u16 | 50 bank code u16 | 52 type u8 | 53 status u8 | 54 order length u8 | 55 reason length u8
///  56 order 32 bytes | 88 reason 32 bytes | 120 zero 8 bytes
/// </code>
/// </summary>
public readonly record struct BatchRecord(long TransactionId, long BatchId, long AmountFen, long FeeFen, long ReceivedUs,
    long FinalUs, int InstitutionIndex, int BankCode, RequestType Type, TransactionStatus Status, byte[] OrderNo, byte[] Reason)
{
    public const int Bytes = 128;

    /// <summary>Writes a Feed output's record without allocating (the output thread's path).</summary>
    public static void Write(in OutputEvent feed, Span<byte> destination)
    {
        if (feed.Kind != OutputKind.Feed) throw new ArgumentException("batch record: only final outcomes (Feed) are recorded");
        if (feed.InstitutionIndex is < 0 or > ushort.MaxValue || feed.BankCode is < 0 or > 999) throw new ArgumentException("batch record: participant out of range");
        Span<byte> d = destination[..Bytes];
        d.Clear();
        BinaryPrimitives.WriteInt64LittleEndian(d, feed.TransactionId);
        BinaryPrimitives.WriteInt64LittleEndian(d[8..], feed.BatchId);
        BinaryPrimitives.WriteInt64LittleEndian(d[16..], feed.AmountFen);
        BinaryPrimitives.WriteInt64LittleEndian(d[24..], feed.FeeFen);
        BinaryPrimitives.WriteInt64LittleEndian(d[32..], feed.ReceivedUs);
        BinaryPrimitives.WriteInt64LittleEndian(d[40..], feed.FinalUs);
        BinaryPrimitives.WriteUInt16LittleEndian(d[48..], (ushort)feed.InstitutionIndex);
        BinaryPrimitives.WriteUInt16LittleEndian(d[50..], (ushort)feed.BankCode);
        d[52] = (byte)feed.RequestType;
        d[53] = (byte)feed.Status;
        d[54] = (byte)feed.OrderNo.Length;
        d[55] = (byte)feed.Reason.Length;
        feed.OrderNo.Span.CopyTo(d[56..]);
        feed.Reason.Span.CopyTo(d[88..]);
    }

    public static BatchRecord Read(ReadOnlySpan<byte> source)
    {
        ReadOnlySpan<byte> s = source[..Bytes];
        int orderLength = s[54], reasonLength = s[55];
        if (orderLength > Text32.CapacityBytes || reasonLength > Text32.CapacityBytes)
        {
            throw new InvalidDataException("batch record: text length beyond 32 bytes");
        }
        return new BatchRecord(
            BinaryPrimitives.ReadInt64LittleEndian(s),
            BinaryPrimitives.ReadInt64LittleEndian(s[8..]),
            BinaryPrimitives.ReadInt64LittleEndian(s[16..]),
            BinaryPrimitives.ReadInt64LittleEndian(s[24..]),
            BinaryPrimitives.ReadInt64LittleEndian(s[32..]),
            BinaryPrimitives.ReadInt64LittleEndian(s[40..]),
            BinaryPrimitives.ReadUInt16LittleEndian(s[48..]),
            BinaryPrimitives.ReadUInt16LittleEndian(s[50..]),
            (RequestType)s[52],
            (TransactionStatus)s[53],
            s.Slice(56, orderLength).ToArray(),
            s.Slice(88, reasonLength).ToArray());
    }
}
