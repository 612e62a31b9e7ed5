using System.Diagnostics.CodeAnalysis;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Framing;
using static Switch.Grpc.Framing.ProtoWire;

namespace Switch.BankSim;

/// <summary>
/// A request's account held in its fields, so a request waiting for its due time keeps it without a string: ASCII of up
/// to <see cref="InlineBytes"/> bytes inline (every account the switch sends), anything else as a string (rare: it
/// allocates). The placement is a function of the account alone, as the ledger's (<see cref="StoredEntry"/>) is.
/// </summary>
internal struct BankAccount
{
    public const int InlineBytes = StoredEntry.InlineAccountChars;

    private StoredEntry.AccountBytes _inline;
    private byte _inlineLength;
    private string? _apart;

    public static BankAccount From(ReadOnlySpan<byte> utf8)
    {
        var account = new BankAccount();
        if (utf8.Length <= InlineBytes && Ascii.IsValid(utf8))
        {
            utf8.CopyTo(account._inline);
            account._inlineLength = (byte)utf8.Length;
        }
        else
        {
            account._apart = Encoding.UTF8.GetString(utf8);
        }
        return account;
    }

    public static BankAccount From(string account)
    {
        var held = new BankAccount();
        if (account.Length <= InlineBytes && Ascii.IsValid(account))
        {
            held._inlineLength = (byte)Encoding.ASCII.GetBytes(account, held._inline);
        }
        else
        {
            held._apart = account;
        }
        return held;
    }

    public static implicit operator BankAccount(string account) => From(account);

    /// <summary>Inline: ASCII, its bytes in <see cref="Inline"/>; else <see cref="Apart"/>.</summary>
    public readonly bool IsInline => _apart is null;

    [UnscopedRef]
    public readonly ReadOnlySpan<byte> Inline => ((ReadOnlySpan<byte>)_inline)[.._inlineLength];

    public readonly string? Apart => _apart;

    /// <summary>In characters (ASCII inline: one a byte), as the bank's limit counts them.</summary>
    public readonly int Length => _apart?.Length ?? _inlineLength;

    public readonly bool IsBlank => _apart is null ? Inline.IndexOfAnyExcept(" \t\n\v\f\r"u8) < 0 : string.IsNullOrWhiteSpace(_apart);

    public override readonly string ToString() => _apart ?? Encoding.ASCII.GetString(Inline);
}

/// <summary>One request's fields (switch.v1.BankRequest, bank.proto) without a message object. <see cref="BatchCount"/>:
/// elements of its own batch field (only a malformed message has any).</summary>
internal struct BankRequestFields
{
    public long TransactionId;
    public BankOperation Operation;
    public long AmountFen;
    public BankAccount Account;
    public int BankCode;
    public int Attempt;
    public long DeadlineUnixUs;
    public int BatchCount;

    /// <summary>A unary call's message, as the same fields.</summary>
    public static BankRequestFields Of(BankRequest m) => new()
    {
        TransactionId = m.TransactionId, Operation = m.Operation, AmountFen = m.AmountFen, Account = BankAccount.From(m.Account),
        BankCode = m.BankCode, Attempt = m.Attempt, DeadlineUnixUs = m.DeadlineUnixUs, BatchCount = m.Batch.Count,
    };

    /// <summary>Any field of the single form set (as bank.proto reads "carries nothing else").</summary>
    public readonly bool IsSet => TransactionId != 0 || Operation != BankOperation.Unspecified || AmountFen != 0 || Account.Length != 0
        || BankCode != 0 || Attempt != 0 || DeadlineUnixUs != 0;
}

/// <summary>One Exchange request message decoded by hand into flat fields (<see cref="BatchFormMessage{TSelf, T, TDecoder}"/>):
/// one object per message, where the generated type made a message object, a repeated field, a growing array and an
/// account string per request.</summary>
internal sealed class BankRequests : BatchFormMessage<BankRequests, BankRequestFields, BankRequests.Decoder>
{
    /// <summary>The bank's side of the Exchange method: the same path and answers, requests decoded by this type.</summary>
    public static readonly GrpcMethod<BankRequests, BankResponse> Exchange = new(MethodType.DuplexStreaming,
        BankEndpointMethods.Exchange.ServiceFullName, BankEndpointMethods.Exchange.Name,
        new MessageParser<BankRequests>(static () => new BankRequests()), BankResponse.Parser);

    /// <summary>Null when well formed for a reader taking up to <paramref name="max"/> a message; else the refusal, worded as
    /// <see cref="ExchangeBatch.Problem(BankRequest, int)"/> words it for the generated type.</summary>
    public RpcException? Problem(int max) => ExchangeBatch.RequestsProblem(Batch, Single.IsSet,
        static r => r.BatchCount, static r => ExchangeBatch.RequestProblem(r.TransactionId, r.Operation), max);

    /// <summary>switch.v1.BankRequest's fields (bank.proto); the account is copied out of the message's bytes.</summary>
    public readonly struct Decoder : IFieldsDecoder<BankRequestFields>
    {
        private const uint TransactionIdTag = 1 << 3, OperationTag = 2 << 3, AmountTag = 3 << 3, AccountTag = 4 << 3 | 2,
            BankCodeTag = 5 << 3, AttemptTag = 6 << 3, DeadlineTag = 7 << 3;

        public static int BatchField => 8;
        public static MessageDescriptor Descriptor => BankRequest.Descriptor;
        public static void CountNested(ref BankRequestFields fields) => fields.BatchCount++;

        public static bool TryRead(ReadOnlySpan<byte> message, ref int at, int end, uint tag, ref BankRequestFields request)
        {
            if (tag == AccountTag)
            {
                if (!TryText(message, ref at, end, out TextAt account)) return false;
                request.Account = BankAccount.From(account.In(message));
                return true;
            }
            if (tag is not (TransactionIdTag or OperationTag or AmountTag or BankCodeTag or AttemptTag or DeadlineTag)) return TrySkip(message, ref at, end, tag);
            if (!TryVarint(message, ref at, end, out ulong value)) return false;
            switch (tag)
            {
                case TransactionIdTag: request.TransactionId = (long)value; break;
                case OperationTag: request.Operation = (BankOperation)(int)value; break; // int32s and enums keep the low 32 bits
                case AmountTag: request.AmountFen = (long)value; break;
                case BankCodeTag: request.BankCode = (int)value; break;
                case AttemptTag: request.Attempt = (int)value; break;
                default: request.DeadlineUnixUs = (long)value; break;
            }
            return true;
        }
    }
}
