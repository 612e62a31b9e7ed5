using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Framing;
using static Switch.Grpc.Framing.ProtoWire;

namespace Switch.LoadGen;

/// <summary>
/// One request as the generator sends it, in flat fields: order numbers as sequence numbers of the run, the account as its
/// digits. The stream encodes it by hand (<see cref="TransferRequestFields"/>) into the call's buffer; the unary path and a
/// request sent again after a switch-over make the message (<see cref="ToMessage"/>), byte for byte the same (a test holds them equal).
/// </summary>
internal struct TransferFields
{
    /// <summary>What every order number, bank code and currency of the run is written with.</summary>
    public RunWire Wire;
    public RequestKind Kind;
    /// <summary>The order number's sequence number: the request's own, or for a query the order asked about.</summary>
    public long OrderSeq;
    /// <summary>A refund's original payment, else -1.</summary>
    public long OriginalSeq;
    public long AmountFen;
    /// <summary>A payment's or payout's bank (index into the workload's banks), else -1.</summary>
    public int Bank;
    /// <summary>A payment's or payout's account: "62" and these 14 digits.</summary>
    public ulong AccountDigits;

    public const string Currency = "CNY";
    public const string AccountPrefix = "62";
    public const int AccountDigitCount = 14;

    public readonly TransferRequest ToMessage()
    {
        var request = new TransferRequest { Kind = Kind, OrderNo = Wire.Book.OrderNo(OrderSeq), Currency = Currency, AmountFen = AmountFen };
        if (OriginalSeq >= 0) request.OriginalOrderNo = Wire.Book.OrderNo(OriginalSeq);
        if (Bank >= 0)
        {
            request.Bank = Wire.Banks[Bank];
            request.Account = AccountPrefix + AccountDigits.ToString("D14", CultureInfo.InvariantCulture);
        }
        return request;
    }
}

/// <summary>A run's constant bytes: the order numbers' run tag and the banks' codes, encoded once.</summary>
internal sealed class RunWire
{
    public RunWire(OrderBook book, IReadOnlyList<string> banks)
    {
        Book = book;
        Banks = banks;
        RunTag = Encoding.ASCII.GetBytes(book.RunTag);
        BankCodes = banks.Select(Encoding.ASCII.GetBytes).ToArray();
    }

    public OrderBook Book { get; }
    public IReadOnlyList<string> Banks { get; }
    public byte[] RunTag { get; }
    public byte[][] BankCodes { get; }

    /// <summary>An order number's length in bytes: the run tag and the sequence number's digits.</summary>
    public int OrderNoBytes(long seq) => RunTag.Length + DecimalDigits((ulong)seq);

    private static int DecimalDigits(ulong value)
    {
        int digits = 1;
        for (; value >= 10; value /= 10) digits++;
        return digits;
    }
}

/// <summary>
/// A request's fields as switch.v1.TransferRequest (institution.proto) writes them, in field order, for
/// <see cref="BatchFormEncoder{T, TCodec}"/>: order numbers and the account formatted straight into the buffer.
/// </summary>
internal readonly struct TransferRequestFields : IFieldsCodec<TransferFields>
{
    private static readonly byte KindTag = Tag(1, Varint), OrderNoTag = Tag(2, LengthDelimited), AmountTag = Tag(3, Varint),
        CurrencyTag = Tag(4, LengthDelimited), BankTag = Tag(5, LengthDelimited), AccountTag = Tag(6, LengthDelimited),
        OriginalOrderNoTag = Tag(7, LengthDelimited);
    private static readonly byte[] CurrencyBytes = Encoding.ASCII.GetBytes(TransferFields.Currency);
    private static readonly StandardFormat AccountFormat = new('D', TransferFields.AccountDigitCount);
    private const int AccountBytes = 2 + TransferFields.AccountDigitCount;

    public static int BatchField => 9;

    public static int Bytes(in TransferFields f)
    {
        int bytes = FieldBytes((long)f.Kind) + OrderNoFieldBytes(f.Wire, f.OrderSeq) + FieldBytes(f.AmountFen) + FieldBytes(CurrencyBytes);
        if (f.Bank >= 0) bytes += FieldBytes(f.Wire.BankCodes[f.Bank]) + 1 + VarintBytes(AccountBytes) + AccountBytes;
        if (f.OriginalSeq >= 0) bytes += OrderNoFieldBytes(f.Wire, f.OriginalSeq);
        return bytes;
    }

    public static int Write(Span<byte> destination, in TransferFields f)
    {
        int at = 0;
        WriteField(destination, ref at, KindTag, (long)f.Kind);
        WriteOrderNo(destination, ref at, OrderNoTag, f.Wire, f.OrderSeq);
        WriteField(destination, ref at, AmountTag, f.AmountFen);
        WriteField(destination, ref at, CurrencyTag, CurrencyBytes);
        if (f.Bank >= 0)
        {
            WriteField(destination, ref at, BankTag, f.Wire.BankCodes[f.Bank]);
            destination[at++] = AccountTag;
            at += WriteVarint(destination[at..], AccountBytes);
            destination[at++] = (byte)TransferFields.AccountPrefix[0];
            destination[at++] = (byte)TransferFields.AccountPrefix[1];
            if (!Utf8Formatter.TryFormat(f.AccountDigits, destination[at..], out int digits, AccountFormat) || digits != TransferFields.AccountDigitCount)
                throw new ArgumentOutOfRangeException(nameof(f), f.AccountDigits, "an account's digits are 14");
            at += digits;
        }
        if (f.OriginalSeq >= 0) WriteOrderNo(destination, ref at, OriginalOrderNoTag, f.Wire, f.OriginalSeq);
        return at;
    }

    private static int OrderNoFieldBytes(RunWire wire, long seq)
    {
        int bytes = wire.OrderNoBytes(seq);
        return 1 + VarintBytes((ulong)bytes) + bytes;
    }

    private static void WriteOrderNo(Span<byte> destination, ref int at, byte tag, RunWire wire, long seq)
    {
        destination[at++] = tag;
        at += WriteVarint(destination[at..], (ulong)wire.OrderNoBytes(seq));
        wire.RunTag.CopyTo(destination[at..]);
        at += wire.RunTag.Length;
        Utf8Formatter.TryFormat(seq, destination[at..], out int digits);
        at += digits;
    }
}

/// <summary>One result's fields the generator reads: the order it names, its status and a refusal's code, text in the
/// message's bytes. The rest of switch.v1.TransferResult is skipped. <see cref="BatchCount"/>: elements of its own batch field.</summary>
internal struct ResultFields
{
    public TextAt OrderNo;
    public TransactionStatus Status;
    public TextAt RejectCode;
    public int BatchCount;
}

/// <summary>One Transact result message decoded by hand into the fields the generator reads (<see cref="BatchFormMessage{TSelf, T, TDecoder}"/>):
/// one object per message, where the generated type made a message object, a repeated field, a growing array and strings per result.</summary>
internal sealed class TransferResults : BatchFormMessage<TransferResults, ResultFields, TransferResults.Decoder>
{
    /// <summary>The generator's side of Transact: the same path and requests, results decoded by this type.</summary>
    public static readonly GrpcMethod<TransferRequest, TransferResults> Transact = new(MethodType.DuplexStreaming,
        InstitutionMethods.Transact.ServiceFullName, InstitutionMethods.Transact.Name, TransferRequest.Parser,
        new MessageParser<TransferResults>(static () => new TransferResults()));

    /// <summary>switch.v1.TransferResult's fields (institution.proto) the generator reads; the others skipped.</summary>
    public readonly struct Decoder : IFieldsDecoder<ResultFields>
    {
        private const uint OrderNoTag = 1 << 3 | 2, StatusTag = 3 << 3, RejectCodeTag = 5 << 3 | 2;

        public static int BatchField => 16;
        public static MessageDescriptor Descriptor => TransferResult.Descriptor;
        public static void CountNested(ref ResultFields fields) => fields.BatchCount++;

        public static bool TryRead(ReadOnlySpan<byte> message, ref int at, int end, uint tag, ref ResultFields result)
        {
            switch (tag)
            {
                case OrderNoTag: return TryText(message, ref at, end, out result.OrderNo);
                case StatusTag:
                    if (!TryVarint(message, ref at, end, out ulong status)) return false;
                    result.Status = (TransactionStatus)(int)status;
                    return true;
                case RejectCodeTag: return TryText(message, ref at, end, out result.RejectCode);
                default: return TrySkip(message, ref at, end, tag);
            }
        }
    }
}
