using Google.Protobuf;
using Google.Protobuf.Reflection;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Framing;
using static Switch.Grpc.Framing.ProtoWire;

namespace Switch.Host.Banks;

/// <summary>
/// One Exchange answer message (switch.v1.BankResponse, bank.proto) decoded by hand into flat fields
/// (<see cref="BatchFormMessage{TSelf, T, TDecoder}"/>): the single form or each element of the batch form, in an array
/// rented from the pool and given back by <see cref="BatchFormMessage{TSelf, T, TDecoder}.Release"/>. Reading a batch then
/// builds no message object per answer, no repeated field, no array per message (the generated type made all three) and no
/// reason string: a reason stays in the message's bytes.
/// </summary>
internal sealed class BankAnswers : BatchFormMessage<BankAnswers, BankAnswers.Answer, BankAnswers.Decoder>
{
    /// <summary>The switch's side of the Exchange method: the same path and request, answers decoded by this type.</summary>
    public static readonly GrpcMethod<BankRequest, BankAnswers> Exchange = new(MethodType.DuplexStreaming,
        BankEndpointMethods.Exchange.ServiceFullName, BankEndpointMethods.Exchange.Name, BankRequest.Parser,
        new MessageParser<BankAnswers>(static () => new BankAnswers()));

    /// <summary>One answer's fields; <see cref="BatchCount"/>: elements of its own batch field (only a malformed message has any).</summary>
    public struct Answer
    {
        public long TransactionId;
        public BankOperation Operation;
        public BankReply Reply;
        /// <summary>In the message's <see cref="BatchFormMessage{TSelf, T, TDecoder}.Bytes"/>.</summary>
        public TextAt Reason;
        public int BatchCount;

        public readonly bool IsSet => TransactionId != 0 || Operation != BankOperation.Unspecified || Reply != BankReply.Unspecified || Reason.Length != 0;
    }

    /// <summary>Null when well-formed for a reader taking up to <paramref name="max"/> a message; else the refusal (as
    /// <see cref="ExchangeBatch.Problem(BankResponse, int)"/> words it for the generated type).</summary>
    public RpcException? Problem(int max) => ExchangeBatch.Problem(Batch, Single.IsSet,
        static a => a.BatchCount, static a => ExchangeBatch.AnswerProblem(a.TransactionId, a.Operation, a.Reply), max);

    /// <summary>switch.v1.BankResponse's fields.</summary>
    public readonly struct Decoder : IFieldsDecoder<Answer>
    {
        private const uint TransactionIdTag = 1 << 3, OperationTag = 2 << 3, ReplyTag = 3 << 3, ReasonTag = 4 << 3 | 2;

        public static int BatchField => 5;
        public static MessageDescriptor Descriptor => BankResponse.Descriptor;
        public static void CountNested(ref Answer fields) => fields.BatchCount++;

        public static bool TryRead(ReadOnlySpan<byte> message, ref int at, int end, uint tag, ref Answer answer)
        {
            ulong value;
            switch (tag)
            {
                case TransactionIdTag:
                    if (!TryVarint(message, ref at, end, out value)) return false;
                    answer.TransactionId = (long)value;
                    return true;
                case OperationTag:
                    if (!TryVarint(message, ref at, end, out value)) return false;
                    answer.Operation = (BankOperation)(int)value; // an enum is an int32: protobuf keeps the low 32 bits
                    return true;
                case ReplyTag:
                    if (!TryVarint(message, ref at, end, out value)) return false;
                    answer.Reply = (BankReply)(int)value;
                    return true;
                case ReasonTag: return TryText(message, ref at, end, out answer.Reason);
                default: return TrySkip(message, ref at, end, tag);
            }
        }
    }
}
