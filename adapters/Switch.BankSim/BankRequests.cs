using Google.Protobuf;
using Google.Protobuf.Reflection;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Framing;

namespace Switch.BankSim;

/// <summary>One request's fields (switch.v1.BankRequest, bank.proto) without a message object. <see cref="BatchCount"/>:
/// elements of its own batch field (only a malformed message has any).</summary>
internal struct BankRequestFields
{
    public long TransactionId;
    public BankOperation Operation;
    public long AmountFen;
    public string Account;
    public int BankCode;
    public int Attempt;
    public long DeadlineUnixUs;
    public int BatchCount;

    public static BankRequestFields Empty => new() { Account = "" };

    /// <summary>A unary call's message, as the same fields.</summary>
    public static BankRequestFields Of(BankRequest m) => new()
    {
        TransactionId = m.TransactionId, Operation = m.Operation, AmountFen = m.AmountFen, Account = m.Account,
        BankCode = m.BankCode, Attempt = m.Attempt, DeadlineUnixUs = m.DeadlineUnixUs, BatchCount = m.Batch.Count,
    };

    /// <summary>Any field of the single form set (as bank.proto reads "carries nothing else").</summary>
    public readonly bool IsSet => TransactionId != 0 || Operation != BankOperation.Unspecified || AmountFen != 0 || Account.Length != 0
        || BankCode != 0 || Attempt != 0 || DeadlineUnixUs != 0;
}

/// <summary>One Exchange request message decoded by hand into flat fields (<see cref="BatchFormMessage{TSelf, T, TDecoder}"/>):
/// one object per message, where the generated type made a message object, a repeated field and a growing array per request.</summary>
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

    /// <summary>switch.v1.BankRequest's fields (bank.proto).</summary>
    public readonly struct Decoder : IFieldsDecoder<BankRequestFields>
    {
        private const uint TransactionIdTag = 1 << 3, OperationTag = 2 << 3, AmountTag = 3 << 3, AccountTag = 4 << 3 | 2,
            BankCodeTag = 5 << 3, AttemptTag = 6 << 3, DeadlineTag = 7 << 3;

        public static int BatchField => 8;
        public static BankRequestFields Empty => BankRequestFields.Empty;
        public static MessageDescriptor Descriptor => BankRequest.Descriptor;
        public static void CountNested(ref BankRequestFields fields) => fields.BatchCount++;

        public static bool Read(ref ParseContext input, uint tag, ref BankRequestFields request)
        {
            switch (tag)
            {
                case TransactionIdTag: request.TransactionId = input.ReadInt64(); return true;
                case OperationTag: request.Operation = (BankOperation)input.ReadEnum(); return true;
                case AmountTag: request.AmountFen = input.ReadInt64(); return true;
                case AccountTag: request.Account = input.ReadString(); return true;
                case BankCodeTag: request.BankCode = input.ReadInt32(); return true;
                case AttemptTag: request.Attempt = input.ReadInt32(); return true;
                case DeadlineTag: request.DeadlineUnixUs = input.ReadInt64(); return true;
                default: return false;
            }
        }
    }
}
