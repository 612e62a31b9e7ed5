using System.Buffers;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Switch.Contracts.V1;
using Switch.Grpc;

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

/// <summary>
/// One Exchange request message decoded by hand into flat fields: the single form or each element of the batch form,
/// in an array rented from the pool and given back by <see cref="Release"/>. The generated type made a message object,
/// a repeated field and a growing array per message and per element; this makes one object per message. Unknown fields
/// are skipped, as the generated parser keeps and ignores them. Only parsed, never written.
/// </summary>
internal sealed class BankRequests : IMessage<BankRequests>, IBufferMessage
{
    /// <summary>The bank's side of the Exchange method: the same path and answers, requests decoded by this type.</summary>
    public static readonly GrpcMethod<BankRequests, BankResponse> Exchange = new(MethodType.DuplexStreaming,
        BankEndpointMethods.Exchange.ServiceFullName, BankEndpointMethods.Exchange.Name,
        new MessageParser<BankRequests>(static () => new BankRequests()), BankResponse.Parser);

    private const uint TransactionIdTag = 1 << 3, OperationTag = 2 << 3, AmountTag = 3 << 3, AccountTag = 4 << 3 | 2,
        BankCodeTag = 5 << 3, AttemptTag = 6 << 3, DeadlineTag = 7 << 3, BatchTag = 8 << 3 | 2;
    /// <summary>The first batch array rented; it doubles past that, up to the message's elements.</summary>
    private const int FirstBatchCapacity = 64;

    private BankRequestFields _single = BankRequestFields.Empty;
    private BankRequestFields[] _batch = [];
    private int _count;
    private Element? _element;

    /// <summary>The batch's elements (0: the single form).</summary>
    public int BatchCount => _count;

    public ref readonly BankRequestFields Single => ref _single;

    public ReadOnlySpan<BankRequestFields> Batch => _batch.AsSpan(0, _count);

    /// <summary>Null when well formed for a reader taking up to <paramref name="max"/> a message; else the refusal, worded as
    /// <see cref="ExchangeBatch.Problem(BankRequest, int)"/> words it for the generated type.</summary>
    public RpcException? Problem(int max) => ExchangeBatch.RequestsProblem(new ArraySegment<BankRequestFields>(_batch, 0, _count), _single.IsSet,
        static r => r.BatchCount, static r => ExchangeBatch.RequestProblem(r.TransactionId, r.Operation), max);

    /// <summary>Gives the batch's array back to the pool; the message is empty after.</summary>
    public void Release()
    {
        if (_batch.Length > 0) ArrayPool<BankRequestFields>.Shared.Return(_batch, clearArray: true); // accounts are references
        _batch = [];
        _count = 0;
        _single = BankRequestFields.Empty;
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
                _element.Fields = BankRequestFields.Empty;
                input.ReadMessage(_element);
                _batch[_count++] = _element.Fields;
            }
            else if (!Field(ref input, tag, ref _single))
            {
                UnknownFieldSet.MergeFieldFrom(null, ref input); // skipped (a newer peer's field): allocates, only then
            }
        }
    }

    /// <summary>Reads a single request's field into <paramref name="request"/>; false when the tag is none of them.</summary>
    private static bool Field(ref ParseContext input, uint tag, ref BankRequestFields request)
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

    private void Grow()
    {
        BankRequestFields[] larger = ArrayPool<BankRequestFields>.Shared.Rent(_batch.Length == 0 ? FirstBatchCapacity : _batch.Length * 2);
        _batch.AsSpan(0, _count).CopyTo(larger);
        if (_batch.Length > 0) ArrayPool<BankRequestFields>.Shared.Return(_batch, clearArray: true);
        _batch = larger;
    }

    /// <summary>A batch element: its own fields, and its own batch only counted (a nested batch refuses the message).</summary>
    private sealed class Element : IMessage<Element>, IBufferMessage
    {
        public BankRequestFields Fields;
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

        public MessageDescriptor Descriptor => BankRequest.Descriptor;
        public void MergeFrom(Element message) => throw new NotSupportedException("only parsed from bytes");
        public void MergeFrom(CodedInputStream input) => input.ReadRawMessage(this);
        public void WriteTo(CodedOutputStream output) => throw new NotSupportedException("a request element is only parsed");
        public void InternalWriteTo(ref WriteContext output) => throw new NotSupportedException("a request element is only parsed");
        public int CalculateSize() => throw new NotSupportedException("a request element is only parsed");
        public Element Clone() => throw new NotSupportedException("a request element is only parsed");
        public bool Equals(Element? other) => ReferenceEquals(this, other);
        public override bool Equals(object? obj) => ReferenceEquals(this, obj);
        public override int GetHashCode() => 0;
    }

    public MessageDescriptor Descriptor => BankRequest.Descriptor;
    public void MergeFrom(BankRequests message) => throw new NotSupportedException("only parsed from bytes");
    public void MergeFrom(CodedInputStream input) => input.ReadRawMessage(this);
    public void WriteTo(CodedOutputStream output) => throw new NotSupportedException("bank requests are only parsed");
    public void InternalWriteTo(ref WriteContext output) => throw new NotSupportedException("bank requests are only parsed");
    public int CalculateSize() => throw new NotSupportedException("bank requests are only parsed");
    public BankRequests Clone() => throw new NotSupportedException("bank requests are only parsed");
    public bool Equals(BankRequests? other) => ReferenceEquals(this, other);
    public override bool Equals(object? obj) => ReferenceEquals(this, obj);
    public override int GetHashCode() => 0;
}
