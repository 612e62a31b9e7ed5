using System.Diagnostics;
using Switch.Grpc.Framing;
using static Switch.Grpc.Framing.ProtoWire;

namespace Switch.Host.Banks;

/// <summary>
/// Encodes queued requests as switch.v1.BankRequest (bank.proto) straight from the link's queue: one request as the
/// single form, or a run of them as the batch form (field 8, each element a single request). The protobuf wire
/// format by hand, so a send builds no message objects and no account strings; the tests check its bytes parse as the
/// generated type with every field equal.
/// </summary>
internal struct BankRequestEncoder(QueuedRequest[] slots, int start, int count, bool batch, int[] elementBytes) : IMessageEncoder
{
    private static readonly byte TransactionIdTag = ProtoWire.Tag(1, ProtoWire.Varint), OperationTag = ProtoWire.Tag(2, ProtoWire.Varint),
        AmountTag = ProtoWire.Tag(3, ProtoWire.Varint), AccountTag = ProtoWire.Tag(4, ProtoWire.LengthDelimited), BankCodeTag = ProtoWire.Tag(5, ProtoWire.Varint),
        AttemptTag = ProtoWire.Tag(6, ProtoWire.Varint), DeadlineTag = ProtoWire.Tag(7, ProtoWire.Varint), BatchTag = ProtoWire.Tag(8, ProtoWire.LengthDelimited);

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
        return FieldBytes(r.TransactionId) + FieldBytes((long)r.Operation) + FieldBytes(r.AmountFen) + FieldBytes(r.Account.Span)
            + FieldBytes(r.BankCode) + FieldBytes(r.Attempt) + FieldBytes(r.DeadlineUs);
    }

    private static int WriteElement(Span<byte> destination, in QueuedRequest r)
    {
        int at = 0;
        WriteField(destination, ref at, TransactionIdTag, r.TransactionId);
        WriteField(destination, ref at, OperationTag, (long)r.Operation);
        WriteField(destination, ref at, AmountTag, r.AmountFen);
        WriteField(destination, ref at, AccountTag, r.Account.Span);
        WriteField(destination, ref at, BankCodeTag, r.BankCode);
        WriteField(destination, ref at, AttemptTag, r.Attempt);
        WriteField(destination, ref at, DeadlineTag, r.DeadlineUs);
        return at;
    }
}
