using Google.Protobuf;
using Switch.BankSim;
using Switch.Contracts.V1;

namespace Switch.Host.Tests.BankSim;

public sealed class BankResponseEncoderTests
{
    private static readonly BankAnswer[] Answers =
    [
        new(1, BankOperation.Debit, BankReply.Succeeded, ""),
        new(long.MaxValue, BankOperation.Reverse, BankReply.Failed, BankReasons.Reversed),
        new(300, BankOperation.Query, BankReply.NotFound, ""),
        new(70_000, BankOperation.Credit, BankReply.Failed, "余额不足 INSUFFICIENT_FUNDS"),
        new(9, BankOperation.Credit, BankReply.Pending, ""),
    ];

    private static byte[] Encode(BankAnswer[] answers, bool batch)
    {
        var encoder = new Switch.Grpc.Framing.BatchFormEncoder<BankAnswer, BankResponseFields>(answers, 0, answers.Length, batch, new int[answers.Length]);
        byte[] bytes = new byte[encoder.CalculateSize()];
        Assert.Equal(bytes.Length, encoder.WriteTo(bytes));
        return bytes;
    }

    [Fact]
    public void Each_answer_encodes_to_the_same_bytes_as_its_generated_message()
    {
        foreach (BankAnswer answer in Answers)
        {
            Assert.Equal(answer.ToMessage().ToByteArray(), Encode([answer], batch: false));
        }
    }

    [Fact]
    public void A_run_of_answers_encodes_to_the_batch_form_of_the_generated_messages_one_included()
    {
        foreach (BankAnswer[] run in new[] { Answers, Answers[..1] })
        {
            var envelope = new BankResponse();
            envelope.Batch.Add(run.Select(a => a.ToMessage()));
            Assert.Equal(envelope.ToByteArray(), Encode(run, batch: true));
        }
    }
}
