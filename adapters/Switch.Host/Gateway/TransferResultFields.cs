using System.Text;
using System.Text.Unicode;
using Switch.Engine.Events;
using Switch.Grpc.Framing;
using static Switch.Grpc.Framing.ProtoWire;
using EngineStatus = Switch.Engine.Events.TransactionStatus;

namespace Switch.Host.Gateway;

/// <summary>
/// An answer's flat fields as switch.v1.TransferResult (institution.proto) writes them, for
/// <see cref="BatchFormEncoder{T, TCodec}"/>: one as the single form, or a run of them as the batch form (field 16). The same bytes as
/// <c>ResultMapping.ToResult(fields).ToByteArray()</c> (tests hold them equal, batch form included), without the
/// message object and its strings per answer: a Transact stream and an Outcomes reader allocate nothing per result.
/// </summary>
internal readonly struct TransferResultFields : IFieldsCodec<ResultFields>
{
    private static readonly byte OrderNoTag = Tag(1, LengthDelimited), TransactionIdTag = Tag(2, Varint), StatusTag = Tag(3, Varint),
        BankReasonTag = Tag(4, LengthDelimited), RejectCodeTag = Tag(5, LengthDelimited), RejectFieldTag = Tag(6, LengthDelimited),
        DuplicateTag = Tag(7, Varint), AmountTag = Tag(8, Varint), FeeTag = Tag(9, Varint), FeedNoTag = Tag(10, Varint),
        ReceivedTag = Tag(11, Varint), FinalTag = Tag(12, Varint), EchoTag = Tag(13, LengthDelimited), KindTag = Tag(14, Varint),
        QueryAnswerTag = Tag(15, Varint);

    private static readonly byte[][] RejectNames = Enum.GetValues<RejectCode>().Select(c => Encoding.UTF8.GetBytes(ResultMapping.RejectName(c))).ToArray();
    private static readonly byte[][] FieldNames = Enum.GetValues<RequestField>().Select(f => Encoding.UTF8.GetBytes(ResultMapping.FieldName(f))).ToArray();

    public static int BatchField => 16;

    public static int Bytes(in ResultFields o)
    {
        bool rejected = o.Reject != RejectCode.None;
        return FieldBytes(Text(o.OrderNo)) + FieldBytes(o.TransactionId) + FieldBytes((long)ResultMapping.WireStatusOf(o))
            + FieldBytes(Reason(o)) + (rejected ? FieldBytes(RejectNames[(int)o.Reject]) + FieldBytes(FieldName(o.RejectField)) : 0)
            + FieldBytes(o.Duplicate ? 1 : 0) + FieldBytes(o.AmountFen) + FieldBytes(o.FeeFen) + FieldBytes(o.FeedNo)
            + FieldBytes(o.ReceivedUs) + FieldBytes(o.FinalUs) + FieldBytes(Text(o.Echo)) + FieldBytes((long)o.RequestType)
            + FieldBytes(o.QueryAnswer ? 1 : 0);
    }

    public static int Write(Span<byte> destination, in ResultFields o)
    {
        int at = 0;
        WriteField(destination, ref at, OrderNoTag, Text(o.OrderNo));
        WriteField(destination, ref at, TransactionIdTag, o.TransactionId);
        WriteField(destination, ref at, StatusTag, (long)ResultMapping.WireStatusOf(o));
        WriteField(destination, ref at, BankReasonTag, Reason(o));
        if (o.Reject != RejectCode.None)
        {
            WriteField(destination, ref at, RejectCodeTag, RejectNames[(int)o.Reject]);
            WriteField(destination, ref at, RejectFieldTag, FieldName(o.RejectField));
        }
        WriteField(destination, ref at, DuplicateTag, o.Duplicate ? 1 : 0);
        WriteField(destination, ref at, AmountTag, o.AmountFen);
        WriteField(destination, ref at, FeeTag, o.FeeFen);
        WriteField(destination, ref at, FeedNoTag, o.FeedNo);
        WriteField(destination, ref at, ReceivedTag, o.ReceivedUs);
        WriteField(destination, ref at, FinalTag, o.FinalUs);
        WriteField(destination, ref at, EchoTag, Text(o.Echo));
        WriteField(destination, ref at, KindTag, (long)o.RequestType);
        WriteField(destination, ref at, QueryAnswerTag, o.QueryAnswer ? 1 : 0);
        return at;
    }

    /// <summary>bank_reason: a reject's detail, or a failure's bank reason; nothing otherwise.</summary>
    private static ReadOnlySpan<byte> Reason(in ResultFields o) =>
        o.Reject != RejectCode.None || o.Status == EngineStatus.Failed ? Text(o.Reason) : default;

    private static ReadOnlySpan<byte> FieldName(RequestField field) => (int)field < FieldNames.Length
        ? FieldNames[(int)field]
        : Encoding.UTF8.GetBytes(ResultMapping.FieldName(field)); // a field added without its name: as ToResult writes it

    private static ReadOnlySpan<byte> Text(in Text32 text) => Text(text.IsOverlong, text.Span);
    private static ReadOnlySpan<byte> Text(in Text64 text) => Text(text.IsOverlong, text.Span);

    /// <summary>The text as ToResult's string would carry it: its bytes when they are UTF-8 (always, but for an
    /// input the engine refused), else what decoding them to a string makes of them (rare: allocates).</summary>
    private static ReadOnlySpan<byte> Text(bool overlong, ReadOnlySpan<byte> utf8) =>
        overlong ? Overlong : Utf8.IsValid(utf8) ? utf8 : Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(utf8));

    private static ReadOnlySpan<byte> Overlong => "<overlong>"u8;
}
