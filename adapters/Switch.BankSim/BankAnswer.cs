using System.Diagnostics;
using System.Text;
using Switch.Contracts.V1;
using Switch.Grpc.Framing;
using static Switch.Grpc.Framing.ProtoWire;

namespace Switch.BankSim;

/// <summary>One answer of the simulated bank as flat fields: the Exchange stream encodes it (<see cref="BankResponseEncoder"/>)
/// without a message object; a unary call makes its message.</summary>
internal readonly record struct BankAnswer(long TransactionId, BankOperation Operation, BankReply Reply, string Reason)
{
    public BankResponse ToMessage() => new() { TransactionId = TransactionId, Operation = Operation, Reply = Reply, Reason = Reason };
}

/// <summary>
/// Encodes answers as switch.v1.BankResponse (bank.proto): one as the single form, a run of them as the batch form
/// (field 5, each element a single answer). The same bytes as the generated message (a test holds them equal).
/// Reasons are the simulator's own ASCII codes, short and few.
/// </summary>
internal struct BankResponseEncoder(BankAnswer[] slots, int count, bool batch, int[] elementBytes) : IMessageEncoder
{
    private static readonly byte TransactionIdTag = Tag(1, Varint), OperationTag = Tag(2, Varint), ReplyTag = Tag(3, Varint),
        ReasonTag = Tag(4, LengthDelimited), BatchTag = Tag(5, LengthDelimited);

    private int _size = -1;

    public int CalculateSize()
    {
        Debug.Assert(count >= 1 && (batch || count == 1) && elementBytes.Length >= count);
        if (!batch) return _size = ElementBytes(slots[0]);
        int total = 0;
        for (int i = 0; i < count; i++)
        {
            int bytes = elementBytes[i] = ElementBytes(slots[i]);
            total += 1 + VarintBytes((ulong)bytes) + bytes;
        }
        return _size = total;
    }

    public readonly int WriteTo(Span<byte> destination)
    {
        Debug.Assert(_size >= 0, "sized first");
        if (!batch) return WriteElement(destination, slots[0]);
        int at = 0;
        for (int i = 0; i < count; i++)
        {
            destination[at++] = BatchTag;
            at += WriteVarint(destination[at..], (ulong)elementBytes[i]);
            at += WriteElement(destination[at..], slots[i]);
        }
        return at;
    }

    private static int ElementBytes(in BankAnswer a)
    {
        int reason = Encoding.UTF8.GetByteCount(a.Reason);
        return FieldBytes(a.TransactionId) + FieldBytes((long)a.Operation) + FieldBytes((long)a.Reply)
            + (reason == 0 ? 0 : 1 + VarintBytes((ulong)reason) + reason);
    }

    private static int WriteElement(Span<byte> destination, in BankAnswer a)
    {
        int at = 0;
        WriteField(destination, ref at, TransactionIdTag, a.TransactionId);
        WriteField(destination, ref at, OperationTag, (long)a.Operation);
        WriteField(destination, ref at, ReplyTag, (long)a.Reply);
        if (a.Reason.Length > 0)
        {
            destination[at++] = ReasonTag;
            int bytes = Encoding.UTF8.GetByteCount(a.Reason);
            at += WriteVarint(destination[at..], (ulong)bytes);
            at += Encoding.UTF8.GetBytes(a.Reason, destination[at..]);
        }
        return at;
    }
}
