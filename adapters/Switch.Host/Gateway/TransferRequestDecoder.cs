using System.Buffers;
using System.Diagnostics;
using System.Text;
using Google.Protobuf;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Framing;
using static Switch.Grpc.Framing.ProtoWire;

namespace Switch.Host.Gateway;

/// <summary>One TransferRequest's fields as they sit in its message's bytes: numbers decoded, text left in place.</summary>
public struct RequestFields
{
    /// <summary>The kind's wire value (an enum: any int, as protobuf keeps an unknown one).</summary>
    public int Kind;
    public long AmountFen;
    public TextAt OrderNo;
    public TextAt Currency;
    public TextAt Bank;
    public TextAt Account;
    public TextAt OriginalOrderNo;
    public TextAt Echo;
    /// <summary>Elements of its own batch field (only a malformed batch element has any).</summary>
    public int BatchCount;

    /// <summary>Any field of a single request is set (beside a batch, the message is refused BATCH_MIXED).</summary>
    public readonly bool SingleFieldsSet => Kind != 0 || AmountFen != 0 || OrderNo.Length != 0 || Currency.Length != 0 || Bank.Length != 0
        || Account.Length != 0 || OriginalOrderNo.Length != 0 || Echo.Length != 0;
}

/// <summary>
/// Decodes Transact's request messages (switch.v1.TransferRequest, institution.proto: the single form or the batch form)
/// from their bytes into <see cref="RequestFields"/>, with no message object and no string: the text fields stay in
/// the message's bytes (<see cref="Message"/>) until the request is filled into its ring slot. One per stream, reused
/// for every message; what it decoded is valid until the next <see cref="TryDecode"/>.
/// <para>Protobuf's rules hold exactly as the generated parser applies them: a field given twice keeps its last value,
/// an unknown field (or a known one with another wire type) is skipped, a string must be UTF-8. The hand path takes the
/// shapes a client sends; anything else (a group, an over-long varint, bytes that are not UTF-8, a nested batch, a
/// malformed message) goes to the generated parser, which decides it, and words any refusal, as it always has.</para>
/// </summary>
public sealed class TransferRequestDecoder
{
    private const uint KindTag = 1 << 3, OrderNoTag = 2 << 3 | 2, AmountTag = 3 << 3, CurrencyTag = 4 << 3 | 2, BankTag = 5 << 3 | 2,
        AccountTag = 6 << 3 | 2, OriginalOrderNoTag = 7 << 3 | 2, EchoTag = 8 << 3 | 2, BatchTag = 9 << 3 | 2;
    /// <summary>The first batch array; it doubles past that, up to <see cref="TransactBatch.MaxElements"/>.</summary>
    private const int FirstBatchCapacity = 64;

    private RequestFields _single;
    private RequestFields[] _batch = new RequestFields[FirstBatchCapacity];
    private int _count;
    /// <summary>Bytes this decoder owns for the message (rented): a message that came in pieces, or the fallback's text.</summary>
    private byte[]? _owned;
    /// <summary>The generated parser's verdict on a message it decoded (the hand path's comes from its fields).</summary>
    private RpcException? _fallbackProblem;

    /// <summary>The bytes the decoded fields' <see cref="TextAt"/>s point into.</summary>
    public ReadOnlyMemory<byte> Message { get; private set; }

    /// <summary>The message was decoded by hand (else by the generated parser): for tests.</summary>
    public bool DecodedByHand { get; private set; }

    /// <summary>The batch's elements (0: the single form, or a batch <see cref="Problem"/> refuses: ask it first).</summary>
    public int BatchCount => _count;

    /// <summary>The single request's fields (the batch form: those beside the batch, which refuse it).</summary>
    public ref readonly RequestFields Single => ref _single;

    public ref readonly RequestFields Element(int index)
    {
        Debug.Assert((uint)index < (uint)_count);
        return ref _batch[index];
    }

    /// <summary>
    /// Decodes one message. False when it is not a TransferRequest: <paramref name="refusal"/> is then the generated
    /// parser's exception, for <see cref="Switch.Grpc.Server.ServerRawRequestStream.Refuse"/> to word as the typed path did.
    /// </summary>
    public bool TryDecode(in ReadOnlySequence<byte> message, out InvalidProtocolBufferException? refusal)
    {
        refusal = null;
        _fallbackProblem = null;
        if (_owned is { } previous)
        {
            _owned = null;
            ArrayPool<byte>.Shared.Return(previous);
        }
        if (message.IsSingleSegment)
        {
            Message = message.First;
        }
        else
        {
            // A message across the body's buffer segments (a large batch often is): one copy, into a rented array.
            int length = checked((int)message.Length);
            _owned = ArrayPool<byte>.Shared.Rent(length);
            message.CopyTo(_owned);
            Message = _owned.AsMemory(0, length);
        }
        if (DecodedByHand = TryByHand(Message.Span)) return true;

        TransferRequest parsed;
        try
        {
            parsed = TransferRequest.Parser.ParseFrom(Message.Span);
        }
        catch (InvalidProtocolBufferException e)
        {
            refusal = e;
            return false;
        }
        FromMessage(parsed);
        return true;
    }

    /// <summary>Null for a single request (an empty one too: it is rejected as a request) or a well-formed batch; else
    /// the refusal, as <see cref="TransactBatch.Problem(TransferRequest)"/> words it.</summary>
    public RpcException? Problem() => DecodedByHand
        ? TransactBatch.Problem(new ArraySegment<RequestFields>(_batch, 0, _count), _single.SingleFieldsSet, static e => e.BatchCount)
        : _fallbackProblem;

    private bool TryByHand(ReadOnlySpan<byte> message)
    {
        _count = 0;
        _single = default;
        int at = 0;
        while (at < message.Length)
        {
            if (!TryTag(message, ref at, message.Length, out uint tag)) return false;
            if (tag != BatchTag)
            {
                if (!TryField(message, ref at, message.Length, tag, ref _single)) return false;
                continue;
            }
            if (!TryLength(message, ref at, message.Length, out int length)) return false;
            if (_count == TransactBatch.MaxElements) return false; // BATCH_TOO_LARGE, worded from the generated message
            if (_count == _batch.Length) Array.Resize(ref _batch, Math.Min(_batch.Length * 2, TransactBatch.MaxElements));
            ref RequestFields element = ref _batch[_count++];
            element = default;
            // An element's own batch (refused BATCH_NESTED) must still be a valid message at every depth: the generated parser's to say.
            if (!TrySingle(message, ref at, at + length, ref element)) return false;
        }
        _single.BatchCount = _count;
        return true;
    }

    /// <summary>
    /// A unary call's request, which is one single form: true with its fields over <paramref name="message"/>; false for
    /// what the hand path leaves to the generated parser (a batch field in it too: a unary call ignores its batch, as the
    /// generated message always did), for <see cref="SingleFrom"/>. Static: a call allocates no decoder.
    /// </summary>
    public static bool TryDecodeSingle(ReadOnlySpan<byte> message, out RequestFields fields)
    {
        fields = default;
        int at = 0;
        return TrySingle(message, ref at, message.Length, ref fields);
    }

    /// <summary>The fields of one single form from <paramref name="at"/> to <paramref name="end"/>; false at a batch field
    /// or whatever else the hand path leaves to the generated parser.</summary>
    private static bool TrySingle(ReadOnlySpan<byte> message, ref int at, int end, ref RequestFields fields)
    {
        while (at < end)
        {
            if (!TryTag(message, ref at, end, out uint tag) || tag == BatchTag || !TryField(message, ref at, end, tag, ref fields)) return false;
        }
        return true;
    }

    /// <summary>The generated parser's single request as fields over its text, encoded into <paramref name="message"/> (a
    /// new array: the unary call's rare path, whatever <see cref="TryDecodeSingle"/> did not take).</summary>
    public static RequestFields SingleFrom(TransferRequest parsed, out ReadOnlyMemory<byte> message)
    {
        byte[] text = new byte[TextBytes(parsed)];
        int at = 0;
        RequestFields fields = Fields(parsed, text, ref at);
        message = text;
        return fields;
    }

    /// <summary>Reads (or skips, when unknown) one field whose tag was read; false for what the hand path leaves to the generated parser.</summary>
    private static bool TryField(ReadOnlySpan<byte> message, ref int at, int end, uint tag, ref RequestFields fields)
    {
        ulong value;
        switch (tag)
        {
            case KindTag:
                if (!TryVarint(message, ref at, end, out value)) return false;
                fields.Kind = (int)value; // an enum is an int32: protobuf keeps the low 32 bits
                return true;
            case AmountTag:
                if (!TryVarint(message, ref at, end, out value)) return false;
                fields.AmountFen = (long)value;
                return true;
            case OrderNoTag: return TryText(message, ref at, end, out fields.OrderNo);
            case CurrencyTag: return TryText(message, ref at, end, out fields.Currency);
            case BankTag: return TryText(message, ref at, end, out fields.Bank);
            case AccountTag: return TryText(message, ref at, end, out fields.Account);
            case OriginalOrderNoTag: return TryText(message, ref at, end, out fields.OriginalOrderNo);
            case EchoTag: return TryText(message, ref at, end, out fields.Echo);
        }
        return TrySkip(message, ref at, end, tag); // unknown: skipped, as the generated parser does
    }

    /// <summary>The generated parser's message, as fields over its text encoded into rented bytes (a rare path: whatever
    /// the hand path did not take). A batch it refuses is only worded, not kept.</summary>
    private void FromMessage(TransferRequest parsed)
    {
        _count = 0;
        _fallbackProblem = parsed.Batch.Count == 0 ? null : TransactBatch.Problem(parsed);
        int bytes = TextBytes(parsed);
        if (_fallbackProblem is null)
        {
            foreach (TransferRequest element in parsed.Batch) bytes += TextBytes(element);
        }
        _owned = ArrayPool<byte>.Shared.Rent(Math.Max(bytes, 1));
        int at = 0;
        _single = Fields(parsed, _owned, ref at);
        if (_fallbackProblem is null)
        {
            if (_batch.Length < parsed.Batch.Count) _batch = new RequestFields[parsed.Batch.Count];
            foreach (TransferRequest element in parsed.Batch) _batch[_count++] = Fields(element, _owned, ref at);
        }
        Message = _owned.AsMemory(0, at);
    }

    private static int TextBytes(TransferRequest m) =>
        Encoding.UTF8.GetByteCount(m.OrderNo) + Encoding.UTF8.GetByteCount(m.Currency) + Encoding.UTF8.GetByteCount(m.Bank)
        + Encoding.UTF8.GetByteCount(m.Account) + Encoding.UTF8.GetByteCount(m.OriginalOrderNo) + Encoding.UTF8.GetByteCount(m.Echo);

    private static RequestFields Fields(TransferRequest m, byte[] into, ref int at) => new()
    {
        Kind = (int)m.Kind,
        AmountFen = m.AmountFen,
        OrderNo = Text(m.OrderNo, into, ref at),
        Currency = Text(m.Currency, into, ref at),
        Bank = Text(m.Bank, into, ref at),
        Account = Text(m.Account, into, ref at),
        OriginalOrderNo = Text(m.OriginalOrderNo, into, ref at),
        Echo = Text(m.Echo, into, ref at),
        BatchCount = m.Batch.Count,
    };

    private static TextAt Text(string value, byte[] into, ref int at)
    {
        int written = Encoding.UTF8.GetBytes(value, into.AsSpan(at));
        var text = new TextAt(at, written);
        at += written;
        return text;
    }
}
