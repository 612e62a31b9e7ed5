using Switch.Contracts.V1;
using Switch.Engine.Events;
using Switch.Engine.Client;
using Switch.Grpc;
using EngineStatus = Switch.Engine.Events.TransactionStatus;
using TransactionStatus = Switch.Engine.Events.TransactionStatus;
using WireStatus = Switch.Contracts.V1.TransactionStatus;

namespace Switch.Host.Gateway;

/// <summary>Translates between the wire contract and engine events: one place for every name and status.</summary>
public static class ResultMapping
{
    private static readonly string[] RejectNames = Enum.GetValues<RejectCode>()
        .Select(c => ScreamingSnake(c.ToString())).ToArray();

    public static string RejectName(RejectCode code) => RejectNames[(int)code];

    /// <summary>The request field a reject is about, named as in the .proto.</summary>
    public static string FieldName(RequestField field) => field switch
    {
        RequestField.None => "",
        RequestField.Institution => InstitutionMethods.ApiKeyHeader,
        RequestField.OrderNo => "order_no",
        RequestField.OriginalOrderNo => "original_order_no",
        RequestField.Bank => "bank",
        RequestField.Account => "account",
        RequestField.Currency => "currency",
        RequestField.Echo => "echo",
        RequestField.Amount => "amount_fen",
        RequestField.RequestType => "kind",
        _ => field.ToString(),
    };

    public static string Describe(RejectCode code) => code switch
    {
        RejectCode.MissingField => "is required",
        RejectCode.FieldTooLong => "is longer than allowed",
        RejectCode.InvalidField => "is malformed",
        RejectCode.UnknownInstitution => "institution is not known to the switch",
        RejectCode.InstitutionDisabled => "institution is disabled",
        RejectCode.UnknownBank => "names no bank connected to the switch",
        RejectCode.InvalidAmount => "must be greater than zero",
        RejectCode.AmountOverLimit => "is above the institution's single-transaction limit",
        RejectCode.UnsupportedCurrency => "must be CNY",
        RejectCode.UnsupportedRequestType => "is not a request the switch executes",
        RejectCode.DuplicateOrderConflict => "was already used for a different request",
        RejectCode.OrderNotFound => "is not a known order of this institution",
        RejectCode.OriginalNotFound => "is not a known payment of this institution",
        RejectCode.OriginalNotRefundable => "is not a successful agreement payment",
        RejectCode.OriginalFullyRefunded => "is already fully refunded",
        RejectCode.RefundExceedsOriginal => "would take refunds above the original amount",
        RejectCode.BankUnavailable => "has no endpoint taking traffic",
        RejectCode.EndpointBusy => "endpoint is at its in-flight limit; retry with back-off",
        RejectCode.NetDebitCapExceeded => "would take the institution past its net debit cap",
        RejectCode.DailyLimitExceeded => "would take the payer account past its daily limit at this bank",
        RejectCode.TransactionTableFull => "switch is at its transaction limit; retry with back-off",
        RejectCode.AccountTableFull => "switch is at its tracked-account limit; retry with back-off",
        RejectCode.DeadlinePassed => "the request's deadline passed before the switch journaled it: it was not executed and the order number is free",
        RejectCode.BankUnresolvedLimit => "has as many transactions awaiting an outcome as rules.maxUnresolvedPerBank allows; retry with back-off",
        RejectCode.UnknownEndpoint => "names no endpoint of this bank",
        RejectCode.InvalidWeights => "are not one weight per endpoint of the bank in basis points summing to 10,000",
        _ => code.ToString(), // a new code without its words: the README's table test names it
    };

    public static StatusCode StatusOf(RejectCode code) => RejectCodes.Category(code) switch
    {
        RejectCategory.InvalidArgument => StatusCode.InvalidArgument,
        RejectCategory.NotFound => StatusCode.NotFound,
        RejectCategory.AlreadyExists => StatusCode.AlreadyExists,
        RejectCategory.FailedPrecondition => StatusCode.FailedPrecondition,
        RejectCategory.PermissionDenied => StatusCode.PermissionDenied,
        RejectCategory.ResourceExhausted => StatusCode.ResourceExhausted,
        RejectCategory.Unavailable => StatusCode.Unavailable,
        RejectCategory.DeadlineExceeded => StatusCode.DeadlineExceeded,
        _ => StatusCode.Internal,
    };

    /// <summary>"DAILY_LIMIT_EXCEEDED: amount_fen would take the payer account past ..."</summary>
    /// <param name="detail">What the engine added (BANK_UNRESOLVED_LIMIT: the bank and its bound), or empty.</param>
    public static string RejectMessage(RejectCode code, RequestField field, in Text32 detail = default)
    {
        string name = FieldName(field);
        string message = name.Length == 0 ? $"{RejectName(code)}: {Describe(code)}" : $"{RejectName(code)}: {name} {Describe(code)}";
        return detail.IsEmpty ? message : $"{message} ({detail})";
    }

    /// <summary>A unary call whose <c>kind</c> is not its method's: an unknown kind is UNSUPPORTED_REQUEST_TYPE (as
    /// on the stream), a known one naming another method INVALID_FIELD.</summary>
    public static (RejectCode Code, string Message) KindRefused(RequestKind kind, RequestType method)
    {
        string field = FieldName(RequestField.RequestType);
        return TypeOf(kind) == RequestType.None
            ? (RejectCode.UnsupportedRequestType, $"{RejectMessage(RejectCode.UnsupportedRequestType, RequestField.RequestType)} ({(int)kind})")
            : (RejectCode.InvalidField, $"{RejectName(RejectCode.InvalidField)}: {field} {kind} was sent to the {method} method (leave it unset, or send it to its own method)");
    }

    public static TransferResult ToResult(in OutputEvent o) => ToResult(ResultFields.From(o));

    public static TransferResult ToResult(in ResultFields o)
    {
        var result = new TransferResult
        {
            OrderNo = o.OrderNo.ToString(),
            TransactionId = o.TransactionId,
            Duplicate = o.Duplicate,
            QueryAnswer = o.QueryAnswer,
            AmountFen = o.AmountFen,
            FeeFen = o.FeeFen,
            FeedNo = o.FeedNo,
            ReceivedUnixUs = o.ReceivedUs,
            FinalUnixUs = o.FinalUs,
            Echo = o.Echo.ToString(),
            Kind = (RequestKind)(int)o.RequestType,
        };
        result.Status = WireStatusOf(o);
        if (o.Reject != RejectCode.None)
        {
            result.RejectCode = RejectName(o.Reject);
            result.RejectField = FieldName(o.RejectField);
            result.BankReason = o.Reason.ToString(); // BANK_UNRESOLVED_LIMIT: which bank, what bound
            return result;
        }
        if (o.Status == EngineStatus.Failed)
        {
            result.BankReason = o.Reason.ToString();
        }
        return result;
    }

    /// <summary>A reject, or the engine's status as the wire names it (an answer in no other status is a bug).</summary>
    public static WireStatus WireStatusOf(in ResultFields o) => o.Reject != RejectCode.None ? WireStatus.Rejected : o.Status switch
    {
        EngineStatus.Dispatched => WireStatus.Processing,
        EngineStatus.Unknown => WireStatus.Unknown,
        EngineStatus.Succeeded => WireStatus.Succeeded,
        EngineStatus.Failed => WireStatus.Failed,
        _ => throw new InvalidOperationException($"an answer with status {o.Status}"),
    };

    /// <summary>Fills an input slot from a wire request, for the institution the caller authenticated as.</summary>
    /// <param name="ClientDeadlineUtc">The call's deadline (DateTime.MaxValue = none): the engine refuses the request if it
    /// passed before the request was journaled.</param>
    public readonly struct RequestFill(TransferRequest request, RequestType type, byte[] institutionCode, DateTime clientDeadlineUtc) : IInputFill
    {
        public void Fill(ref InputEvent e, long correlationId)
        {
            bool echoValid = !request.Echo.Contains(Utf8Replacement);
            e.PrepareInstitutionRequest(correlationId, type, request.AmountFen, institutionCode, request.OrderNo, request.OriginalOrderNo,
                request.Bank, request.Account, request.Currency, echoValid ? request.Echo : null, DeadlineUs(clientDeadlineUtc));
            if (!echoValid) e.Echo.Set(InvalidUtf8); // the engine refuses it as INVALID_FIELD on echo, like any malformed echo
        }
    }

    /// <summary>As <see cref="RequestFill"/>, from a request decoded by hand (<see cref="TransferRequestDecoder"/>): its
    /// text is copied from the message's bytes into the slot, with no string between.</summary>
    /// <param name="type">The unary method's type; on a stream, the request's kind's (<see cref="TypeOf"/>).</param>
    public readonly struct DecodedFill(ReadOnlyMemory<byte> message, RequestFields request, RequestType type, byte[] institutionCode,
        DateTime clientDeadlineUtc) : IInputFill
    {
        public void Fill(ref InputEvent e, long correlationId) =>
            FillDecoded(ref e, correlationId, message.Span, request, type, institutionCode, clientDeadlineUtc);
    }

    /// <summary>A request decoded by hand into its slot: its text copied from <paramref name="bytes"/>, the message it was
    /// decoded from.</summary>
    public static void FillDecoded(ref InputEvent e, long correlationId, ReadOnlySpan<byte> bytes, in RequestFields request, RequestType type,
        byte[] institutionCode, DateTime clientDeadlineUtc)
    {
        ReadOnlySpan<byte> echo = request.Echo.In(bytes);
        bool echoValid = echo.IndexOf(Utf8ReplacementBytes) < 0;
        e.PrepareInstitutionRequest(correlationId, type, request.AmountFen, institutionCode,
            request.OrderNo.In(bytes), request.OriginalOrderNo.In(bytes), request.Bank.In(bytes), request.Account.In(bytes),
            request.Currency.In(bytes), echoValid ? echo : InvalidUtf8, DeadlineUs(clientDeadlineUtc));
    }

    private static long DeadlineUs(DateTime deadlineUtc) =>
        deadlineUtc == DateTime.MaxValue ? 0 : (deadlineUtc - DateTime.UnixEpoch).Ticks / TimeSpan.TicksPerMicrosecond;

    /// <summary>
    /// Protobuf runtimes have decoded invalid UTF-8 in a string field to U+FFFD instead of failing the message, so a
    /// U+FFFD in echo means (or cannot be told from) bytes that were not UTF-8. Echo lands in reconciliation
    /// files: refuse it rather than store a silently altered value. The other text fields are ASCII-only, so the
    /// engine refuses U+FFFD there already.
    /// </summary>
    private const char Utf8Replacement = '\uFFFD';

    /// <summary>U+FFFD in UTF-8.</summary>
    private static ReadOnlySpan<byte> Utf8ReplacementBytes => [0xEF, 0xBF, 0xBD];

    private static ReadOnlySpan<byte> InvalidUtf8 => [0xFF];

    public static RequestType TypeOf(RequestKind kind) => kind switch
    {
        RequestKind.AgreementPayment => RequestType.AgreementPayment,
        RequestKind.Payout => RequestType.Payout,
        RequestKind.Refund => RequestType.Refund,
        RequestKind.Query => RequestType.Query,
        _ => RequestType.None, // the engine rejects it as UNSUPPORTED_REQUEST_TYPE on field "kind"
    };

    internal static string ScreamingSnake(string pascal)
    {
        var b = new System.Text.StringBuilder(pascal.Length + 8);
        for (int i = 0; i < pascal.Length; i++)
        {
            if (i > 0 && char.IsUpper(pascal[i])) b.Append('_');
            b.Append(char.ToUpperInvariant(pascal[i]));
        }
        return b.ToString();
    }
}

/// <summary>What an institution is told of a transaction (an answer or a feed entry), as a flat struct: the outcome
/// feeds keep these, without object references, and make the wire message only when a subscriber reads it.</summary>
public struct ResultFields
{
    public long TransactionId;
    public long AmountFen;
    public long FeeFen;
    public long FeedNo;
    public long ReceivedUs;
    public long FinalUs;
    public RequestType RequestType;
    public TransactionStatus Status;
    public RejectCode Reject;
    public RequestField RejectField;
    public bool Duplicate;
    /// <summary>An answer to a Query (never in a feed).</summary>
    public bool QueryAnswer;
    public Text32 OrderNo;
    public Text32 Reason;
    public Text64 Echo;

    public static ResultFields From(in OutputEvent o) => new()
    {
        TransactionId = o.TransactionId,
        AmountFen = o.AmountFen,
        FeeFen = o.FeeFen,
        FeedNo = o.FeedNo,
        ReceivedUs = o.ReceivedUs,
        FinalUs = o.FinalUs,
        RequestType = o.RequestType,
        Status = o.Status,
        Reject = o.Reject,
        RejectField = o.RejectField,
        Duplicate = o.Duplicate,
        QueryAnswer = o.QueryAnswer,
        OrderNo = o.OrderNo,
        Reason = o.Reason,
        Echo = o.Echo,
    };
}
