using BenchmarkDotNet.Attributes;
using Google.Protobuf;
using Switch.Contracts.V1;

namespace Switch.Benchmarks.Codec;

/// <summary>
/// The institution API's messages through the protobuf codec, as the gateway and the load generator see them:
/// a payment request and its result, sized, written into a reused buffer, and parsed back (parse allocates the
/// message and its strings; writing allocates nothing).
/// </summary>
[MemoryDiagnoser]
public class ProtobufCodecBenchmarks
{
    private TransferRequest _request = null!;
    private TransferResult _result = null!;
    private byte[] _requestBytes = null!;
    private byte[] _resultBytes = null!;
    private readonly byte[] _buffer = new byte[1024];

    [GlobalSetup]
    public void Setup()
    {
        _request = new TransferRequest
        {
            Kind = RequestKind.AgreementPayment, OrderNo = "3f9a1c2e-104857", AmountFen = 12_345, Currency = "CNY", Bank = "102",
            Account = "6222020200112233", Echo = "batch-7",
        };
        _result = new TransferResult
        {
            OrderNo = _request.OrderNo, TransactionId = 1_048_577, Status = TransactionStatus.Succeeded, AmountFen = 12_345, FeeFen = 7,
            FeedNo = 524_288, ReceivedUnixUs = 1_794_000_000_000_000, FinalUnixUs = 1_794_000_000_001_250, Echo = "batch-7", Kind = RequestKind.AgreementPayment,
        };
        _requestBytes = _request.ToByteArray();
        _resultBytes = _result.ToByteArray();
        Console.WriteLine($"// request bytes: {_requestBytes.Length}, result bytes: {_resultBytes.Length}");
    }

    [Benchmark]
    public int WriteRequest()
    {
        int size = _request.CalculateSize();
        _request.WriteTo(_buffer.AsSpan(0, size));
        return size;
    }

    [Benchmark]
    public TransferRequest ParseRequest() => TransferRequest.Parser.ParseFrom(_requestBytes);

    [Benchmark]
    public int WriteResult()
    {
        int size = _result.CalculateSize();
        _result.WriteTo(_buffer.AsSpan(0, size));
        return size;
    }

    [Benchmark]
    public TransferResult ParseResult() => TransferResult.Parser.ParseFrom(_resultBytes);
}
