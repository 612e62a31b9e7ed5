using Google.Protobuf;
using Switch.Contracts.V1;
using Switch.Engine.Events;
using Switch.Host.Gateway;
using EngineStatus = Switch.Engine.Events.TransactionStatus;

namespace Switch.Host.Tests.EndToEnd;

public sealed class TransferResultEncoderTests
{
    /// <summary>The encoder's bytes for these answers: the single form for one, else the batch form.</summary>
    internal static byte[] Encode(ResultFields[] answers)
    {
        var encoder = new Switch.Grpc.Framing.BatchFormEncoder<ResultFields, TransferResultFields>(answers, 0, answers.Length, batch: answers.Length > 1, new int[answers.Length]);
        byte[] bytes = new byte[encoder.CalculateSize()];
        Assert.Equal(bytes.Length, encoder.WriteTo(bytes));
        return bytes;
    }

    /// <summary>Answers of every shape: each status, every reject code and field, texts at their limits, overlong, not UTF-8.</summary>
    private static List<ResultFields> Cases()
    {
        var cases = new List<ResultFields>();
        var succeeded = new ResultFields
        {
            TransactionId = 1_234_567, AmountFen = 50_000, FeeFen = 30, FeedNo = 9, ReceivedUs = 1_700_000_000_000_001, FinalUs = 1_700_000_000_000_999,
            RequestType = RequestType.AgreementPayment, Status = EngineStatus.Succeeded,
        };
        succeeded.OrderNo.Set("ORD-000001");
        succeeded.Echo.Set("流水=A,64字节以内");
        cases.Add(succeeded);
        ResultFields processing = succeeded;
        processing.Status = EngineStatus.Dispatched;
        processing.FeedNo = 0;
        processing.FinalUs = 0;
        processing.Echo.Clear();
        cases.Add(processing);
        ResultFields unknown = processing;
        unknown.Status = EngineStatus.Unknown;
        unknown.QueryAnswer = true;
        unknown.RequestType = RequestType.Payout;
        cases.Add(unknown);
        ResultFields failed = succeeded;
        failed.Status = EngineStatus.Failed;
        failed.Reason.Set("INSUFFICIENT_FUNDS");
        failed.Duplicate = true;
        failed.OrderNo.Set(new string('o', 32));
        failed.Echo.Set(new string('e', 64));
        failed.FeeFen = -5;
        failed.FeedNo = long.MaxValue;
        cases.Add(failed);
        ResultFields succeededWithReason = succeeded;
        succeededWithReason.Reason.Set("ignored unless failed");
        cases.Add(succeededWithReason);
        foreach (RejectCode code in Enum.GetValues<RejectCode>().Where(c => c != RejectCode.None))
        {
            foreach (RequestField field in Enum.GetValues<RequestField>())
            {
                ResultFields rejected = new() { Reject = code, RejectField = field, RequestType = RequestType.Refund, AmountFen = 100, ReceivedUs = 5 };
                rejected.OrderNo.Set("R-" + (int)code);
                if (code == RejectCode.BankUnresolvedLimit) rejected.Reason.Set("bank 102: 1000");
                cases.Add(rejected);
            }
        }
        ResultFields overlong = new() { Reject = RejectCode.FieldTooLong, RejectField = RequestField.OrderNo };
        overlong.OrderNo.SetOverlong();
        overlong.Echo.SetOverlong();
        cases.Add(overlong);
        ResultFields notUtf8 = new() { Reject = RejectCode.InvalidField, RejectField = RequestField.Echo };
        notUtf8.Echo.Set([0xFF]);
        notUtf8.OrderNo.Set([0x41, 0xC3]); // a truncated sequence
        cases.Add(notUtf8);
        cases.Add(new ResultFields { Status = EngineStatus.Unknown }); // everything zero but the status
        return cases;
    }

    [Fact]
    public void Each_answer_encodes_to_the_same_bytes_as_its_generated_message()
    {
        foreach (ResultFields answer in Cases())
        {
            Assert.Equal(ResultMapping.ToResult(answer).ToByteArray(), Encode([answer]));
        }
    }

    [Fact]
    public void A_run_of_answers_encodes_to_the_same_bytes_as_the_batch_form_of_the_generated_messages()
    {
        ResultFields[] answers = Cases().ToArray();
        var envelope = new TransferResult();
        foreach (ResultFields answer in answers) envelope.Batch.Add(ResultMapping.ToResult(answer));

        byte[] encoded = Encode(answers);

        Assert.Equal(envelope.ToByteArray(), encoded);
        Assert.Equal(envelope, TransferResult.Parser.ParseFrom(encoded));
    }

    [Fact]
    public void An_answer_in_a_status_no_result_has_is_refused()
    {
        var answer = new ResultFields { Status = EngineStatus.None };
        Assert.Throws<InvalidOperationException>(() => Encode([answer]));
    }
}
