using System.Buffers;
using BenchmarkDotNet.Attributes;
using Google.Protobuf;
using Switch.Contracts.V1;
using Switch.Engine.Events;
using Switch.Host.Gateway;

namespace Switch.Benchmarks.Codec;

/// <summary>
/// One Transact message of the batch form (64 payments, as the load harness sends at volume) from its bytes into 64 ring
/// slots: through the generated parser (a TransferRequest and six strings a payment) against the gateway's hand decoder
/// (fields read in place, text copied from the message's bytes into the slot).
/// </summary>
[MemoryDiagnoser]
public class TransactDecodeBenchmarks
{
    private const int Payments = 64;
    private static readonly byte[] Institution = "ALIPAY"u8.ToArray();
    private readonly InputEvent[] _slots = new InputEvent[Payments];
    private readonly TransferRequestDecoder _decoder = new();
    private ReadOnlySequence<byte> _message;

    [GlobalSetup]
    public void Setup()
    {
        var batch = new TransferRequest();
        for (int i = 0; i < Payments; i++)
        {
            batch.Batch.Add(new TransferRequest
            {
                Kind = RequestKind.AgreementPayment, OrderNo = $"LG-3f9a1c2e-{1_048_576 + i}", AmountFen = 12_345 + i, Currency = "CNY",
                Bank = i % 2 == 0 ? "102" : "103", Account = $"62220202{i:D8}", Echo = "batch-7",
            });
        }
        byte[] bytes = batch.ToByteArray();
        _message = new ReadOnlySequence<byte>(bytes);
        Console.WriteLine($"// message bytes: {bytes.Length} ({bytes.Length / Payments} a payment)");
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Payments)]
    public long Generated()
    {
        TransferRequest message = TransferRequest.Parser.ParseFrom(_message);
        long sum = 0;
        for (int i = 0; i < message.Batch.Count; i++)
        {
            TransferRequest request = message.Batch[i];
            new ResultMapping.RequestFill(request, ResultMapping.TypeOf(request.Kind), Institution, DateTime.MaxValue).Fill(ref _slots[i], i);
            sum += _slots[i].AmountFen;
        }
        return sum;
    }

    [Benchmark(OperationsPerInvoke = Payments)]
    public long ByHand()
    {
        if (!_decoder.TryDecode(_message, out _) || _decoder.Problem() is not null) throw new InvalidOperationException("not a batch");
        long sum = 0;
        for (int i = 0; i < _decoder.BatchCount; i++)
        {
            new ResultMapping.DecodedFill(_decoder.Message, _decoder.Element(i), ResultMapping.TypeOf((RequestKind)_decoder.Element(i).Kind), Institution, DateTime.MaxValue).Fill(ref _slots[i], i);
            sum += _slots[i].AmountFen;
        }
        return sum;
    }
}
