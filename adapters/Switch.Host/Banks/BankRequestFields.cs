using System.Diagnostics;
using Switch.Grpc.Framing;
using static Switch.Grpc.Framing.ProtoWire;

namespace Switch.Host.Banks;

/// <summary>
/// A queued request's fields as switch.v1.BankRequest (bank.proto) writes them, for <see cref="BatchFormEncoder{T, TCodec}"/>
/// straight from the link's queue: one request as the single form, or a run of them as the batch form (field 8). The
/// protobuf wire format by hand, so a send builds no message objects and no account strings; the tests check its bytes
/// parse as the generated type with every field equal.
/// </summary>
internal readonly struct BankRequestFields : IFieldsCodec<QueuedRequest>
{
    private static readonly byte TransactionIdTag = Tag(1, Varint), OperationTag = Tag(2, Varint), AmountTag = Tag(3, Varint),
        AccountTag = Tag(4, LengthDelimited), BankCodeTag = Tag(5, Varint), AttemptTag = Tag(6, Varint), DeadlineTag = Tag(7, Varint);

    public static int BatchField => 8;

    public static int Bytes(in QueuedRequest r)
    {
        Debug.Assert(!r.Account.IsOverlong, "the logic sends no bank an account it refused");
        return FieldBytes(r.TransactionId) + FieldBytes((long)r.Operation) + FieldBytes(r.AmountFen) + FieldBytes(r.Account.Span)
            + FieldBytes(r.BankCode) + FieldBytes(r.Attempt) + FieldBytes(r.DeadlineUs);
    }

    public static int Write(Span<byte> destination, in QueuedRequest r)
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
