using System.Diagnostics;
using System.Numerics;
using Switch.Grpc.Framing;

namespace Switch.Host.Banks;

/// <summary>
/// Encodes queued requests as switch.v1.BankRequest (bank.proto) straight from the link's queue: one request as the
/// single form, or a run of them as the batch form (field 8, each element a single request). The protobuf wire
/// format by hand, so a send builds no message objects and no account strings; the tests check its bytes parse as the
/// generated type with every field equal.
/// </summary>
internal struct BankRequestEncoder(QueuedRequest[] slots, int start, int count, bool batch, int[] elementBytes) : IMessageEncoder
{
    // Tags: field number << 3 | wire type (0 varint, 2 length-delimited).
    private const byte TransactionIdTag = 1 << 3, OperationTag = 2 << 3, AmountTag = 3 << 3, AccountTag = 4 << 3 | 2,
        BankCodeTag = 5 << 3, AttemptTag = 6 << 3, DeadlineTag = 7 << 3, BatchTag = 8 << 3 | 2;

    private int _size = -1;

    public int CalculateSize()
    {
        Debug.Assert(count >= 1 && (batch || count == 1) && elementBytes.Length >= count);
        if (!batch) return _size = ElementBytes(slots[start]);
        int total = 0;
        for (int i = 0; i < count; i++)
        {
            int bytes = elementBytes[i] = ElementBytes(slots[start + i]);
            total += 1 + VarintBytes((ulong)bytes) + bytes;
        }
        return _size = total;
    }

    public readonly int WriteTo(Span<byte> destination)
    {
        Debug.Assert(_size >= 0, "sized first");
        if (!batch) return WriteElement(destination, slots[start]);
        int at = 0;
        for (int i = 0; i < count; i++)
        {
            destination[at++] = BatchTag;
            at += WriteVarint(destination[at..], (ulong)elementBytes[i]);
            at += WriteElement(destination[at..], slots[start + i]);
        }
        return at;
    }

    private static int ElementBytes(in QueuedRequest r)
    {
        Debug.Assert(!r.Account.IsOverlong, "the logic sends no bank an account it refused");
        int account = r.Account.Length;
        return Field(r.TransactionId) + Field((long)r.Operation) + Field(r.AmountFen)
            + (account == 0 ? 0 : 1 + VarintBytes((ulong)account) + account)
            + Field(r.BankCode) + Field(r.Attempt) + Field(r.DeadlineUs);

        // proto3 leaves a zero field out; int32 and enum values go sign-extended to 64 bits, as protobuf does.
        static int Field(long value) => value == 0 ? 0 : 1 + VarintBytes((ulong)value);
    }

    private static int WriteElement(Span<byte> destination, in QueuedRequest r)
    {
        int at = 0;
        Field(destination, ref at, TransactionIdTag, r.TransactionId);
        Field(destination, ref at, OperationTag, (long)r.Operation);
        Field(destination, ref at, AmountTag, r.AmountFen);
        ReadOnlySpan<byte> account = r.Account.Span;
        if (!account.IsEmpty)
        {
            destination[at++] = AccountTag;
            at += WriteVarint(destination[at..], (ulong)account.Length);
            account.CopyTo(destination[at..]);
            at += account.Length;
        }
        Field(destination, ref at, BankCodeTag, r.BankCode);
        Field(destination, ref at, AttemptTag, r.Attempt);
        Field(destination, ref at, DeadlineTag, r.DeadlineUs);
        return at;

        static void Field(Span<byte> destination, ref int at, byte tag, long value)
        {
            if (value == 0) return;
            destination[at++] = tag;
            at += WriteVarint(destination[at..], (ulong)value);
        }
    }

    private static int VarintBytes(ulong value) => BitOperations.Log2(value | 1) / 7 + 1;

    private static int WriteVarint(Span<byte> destination, ulong value)
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
}
