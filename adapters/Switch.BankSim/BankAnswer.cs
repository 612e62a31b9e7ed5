using System.Text;
using Switch.Contracts.V1;
using Switch.Grpc.Framing;
using static Switch.Grpc.Framing.ProtoWire;

namespace Switch.BankSim;

/// <summary>One answer of the simulated bank as flat fields: the Exchange stream encodes it (<see cref="BankResponseFields"/>)
/// without a message object; a unary call makes its message.</summary>
internal readonly record struct BankAnswer(long TransactionId, BankOperation Operation, BankReply Reply, string Reason)
{
    public BankResponse ToMessage() => new() { TransactionId = TransactionId, Operation = Operation, Reply = Reply, Reason = Reason };
}

/// <summary>
/// An answer's fields as switch.v1.BankResponse (bank.proto) writes them, for <see cref="BatchFormEncoder{T, TCodec}"/>:
/// the same bytes as the generated message (a test holds them equal). Reasons are the simulator's own ASCII codes.
/// </summary>
internal readonly struct BankResponseFields : IFieldsCodec<BankAnswer>
{
    private static readonly byte TransactionIdTag = Tag(1, Varint), OperationTag = Tag(2, Varint), ReplyTag = Tag(3, Varint),
        ReasonTag = Tag(4, LengthDelimited);

    public static int BatchField => 5;

    public static int Bytes(in BankAnswer a)
    {
        int reason = Encoding.UTF8.GetByteCount(a.Reason);
        return FieldBytes(a.TransactionId) + FieldBytes((long)a.Operation) + FieldBytes((long)a.Reply)
            + (reason == 0 ? 0 : 1 + VarintBytes((ulong)reason) + reason);
    }

    public static int Write(Span<byte> destination, in BankAnswer a)
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
