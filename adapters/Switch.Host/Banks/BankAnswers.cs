using System.Buffers;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Switch.Contracts.V1;
using Switch.Grpc;

namespace Switch.Host.Banks;

/// <summary>
/// One Exchange answer message (switch.v1.BankResponse, bank.proto) decoded by hand into flat fields: the single form
/// or each element of the batch form, in an array rented from the pool and given back by <see cref="Release"/>. Reading
/// a batch then builds no message object per answer, no repeated field and no array per message (the generated type
/// made all three). Unknown fields are skipped, as the generated parser keeps and ignores them; only parsed, never written.
/// </summary>
internal sealed class BankAnswers : IMessage<BankAnswers>, IBufferMessage
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
        public string Reason;
        public int BatchCount;

        public readonly bool IsSet => TransactionId != 0 || Operation != BankOperation.Unspecified || Reply != BankReply.Unspecified || !string.IsNullOrEmpty(Reason);
    }

    private const uint TransactionIdTag = 1 << 3, OperationTag = 2 << 3, ReplyTag = 3 << 3, ReasonTag = 4 << 3 | 2, BatchTag = 5 << 3 | 2;
    /// <summary>The first batch array rented; it doubles past that, up to the message's elements.</summary>
    private const int FirstBatchCapacity = 64;

    private Answer _single = new() { Reason = "" };
    private Answer[] _batch = [];
    private int _count;
    /// <summary>Decodes one batch element at a time (ParseContext reads a nested message into an IBufferMessage).</summary>
    private Element? _element;

    /// <summary>The batch's elements (empty for the single form).</summary>
    public int BatchCount => _count;

    /// <summary>Answers the message carries: the batch's elements, or the single one.</summary>
    public int Count => Math.Max(1, _count);

    public ref readonly Answer At(int index) => ref _count == 0 ? ref _single : ref _batch[index];

    /// <summary>Null when well-formed for a reader taking up to <paramref name="max"/> a message; else the refusal (as
    /// <see cref="ExchangeBatch.Problem(BankResponse, int)"/> words it for the generated type).</summary>
    public RpcException? Problem(int max) => ExchangeBatch.Problem(new ArraySegment<Answer>(_batch, 0, _count), _single.IsSet,
        static a => a.BatchCount, static a => ExchangeBatch.AnswerProblem(a.TransactionId, a.Operation, a.Reply), max);

    /// <summary>Gives the batch's array back to the pool; the message is empty after.</summary>
    public void Release()
    {
        if (_batch.Length > 0) ArrayPool<Answer>.Shared.Return(_batch, clearArray: true); // reasons are references
        _batch = [];
        _count = 0;
    }

    public void InternalMergeFrom(ref ParseContext input)
    {
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if ((tag & 7) == 4) return; // an end-group tag ends the message, as the generated parser does
            if (tag == BatchTag)
            {
                if (_count == _batch.Length) Grow();
                _element ??= new Element();
                _element.Fields = new Answer { Reason = "" };
                input.ReadMessage(_element);
                _batch[_count++] = _element.Fields;
            }
            else if (!Field(ref input, tag, ref _single))
            {
                UnknownFieldSet.MergeFieldFrom(null, ref input); // skipped (a newer peer's field): allocates, only then
            }
        }
    }

    /// <summary>Reads a single answer's field into <paramref name="answer"/>; false when the tag is none of them.</summary>
    private static bool Field(ref ParseContext input, uint tag, ref Answer answer)
    {
        switch (tag)
        {
            case TransactionIdTag: answer.TransactionId = input.ReadInt64(); return true;
            case OperationTag: answer.Operation = (BankOperation)input.ReadEnum(); return true;
            case ReplyTag: answer.Reply = (BankReply)input.ReadEnum(); return true;
            case ReasonTag: answer.Reason = input.ReadString(); return true; // empty unless failed: "" allocates nothing
            default: return false;
        }
    }

    private void Grow()
    {
        Answer[] larger = ArrayPool<Answer>.Shared.Rent(_batch.Length == 0 ? FirstBatchCapacity : _batch.Length * 2);
        _batch.AsSpan(0, _count).CopyTo(larger);
        if (_batch.Length > 0) ArrayPool<Answer>.Shared.Return(_batch, clearArray: true);
        _batch = larger;
    }

    /// <summary>A batch element: its own fields, and its own batch only counted (a nested batch refuses the message).</summary>
    private sealed class Element : IMessage<Element>, IBufferMessage
    {
        public Answer Fields;
        private Element? _nested;

        public void InternalMergeFrom(ref ParseContext input)
        {
            uint tag;
            while ((tag = input.ReadTag()) != 0)
            {
                if ((tag & 7) == 4) return;
                if (tag == BatchTag)
                {
                    Fields.BatchCount++;
                    _nested ??= new Element();
                    input.ReadMessage(_nested); // read and dropped: the message is refused whole
                }
                else if (!Field(ref input, tag, ref Fields))
                {
                    UnknownFieldSet.MergeFieldFrom(null, ref input);
                }
            }
        }

        public MessageDescriptor Descriptor => BankResponse.Descriptor;
        public void MergeFrom(Element message) => throw new NotSupportedException("only parsed from bytes");
        public void MergeFrom(CodedInputStream input) => input.ReadRawMessage(this);
        public void WriteTo(CodedOutputStream output) => throw new NotSupportedException("an answer element is only parsed");
        public void InternalWriteTo(ref WriteContext output) => throw new NotSupportedException("an answer element is only parsed");
        public int CalculateSize() => throw new NotSupportedException("an answer element is only parsed");
        public Element Clone() => throw new NotSupportedException("an answer element is only parsed");
        public bool Equals(Element? other) => ReferenceEquals(this, other);
        public override bool Equals(object? obj) => ReferenceEquals(this, obj);
        public override int GetHashCode() => 0;
    }

    public MessageDescriptor Descriptor => BankResponse.Descriptor;
    public void MergeFrom(BankAnswers message) => throw new NotSupportedException("only parsed from bytes");
    public void MergeFrom(CodedInputStream input) => input.ReadRawMessage(this);
    public void WriteTo(CodedOutputStream output) => throw new NotSupportedException("bank answers are only parsed");
    public void InternalWriteTo(ref WriteContext output) => throw new NotSupportedException("bank answers are only parsed");
    public int CalculateSize() => throw new NotSupportedException("bank answers are only parsed");
    public BankAnswers Clone() => throw new NotSupportedException("bank answers are only parsed");
    public bool Equals(BankAnswers? other) => ReferenceEquals(this, other);
    public override bool Equals(object? obj) => ReferenceEquals(this, obj);
    public override int GetHashCode() => 0;
}
