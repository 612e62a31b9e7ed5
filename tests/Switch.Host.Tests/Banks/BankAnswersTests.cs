using System.Buffers;
using System.Text;
using Google.Protobuf;
using Switch.Contracts.V1;
using Switch.Host.Banks;

namespace Switch.Host.Tests.Banks;

public sealed class BankAnswersTests
{
    private static BankResponse Answer(long id, BankOperation operation = BankOperation.Debit, BankReply reply = BankReply.Succeeded, string reason = "") =>
        new() { TransactionId = id, Operation = operation, Reply = reply, Reason = reason };

    private static BankResponse Batch(params BankResponse[] elements)
    {
        var message = new BankResponse();
        message.Batch.Add(elements);
        return message;
    }

    /// <summary>Messages well-formed and not: each decodes to the fields the generated type parses, with the same refusal.</summary>
    private static IEnumerable<BankResponse> Messages()
    {
        yield return Answer(1);
        yield return Answer(long.MaxValue, BankOperation.Reverse, BankReply.Failed, "INSUFFICIENT_FUNDS 余额不足");
        yield return Batch(Enumerable.Range(1, 200).Select(i => Answer(i, (BankOperation)(1 + i % 4), (BankReply)(1 + i % 4), i % 7 == 0 ? "R" + i : "")).ToArray());
        yield return new BankResponse(); // BATCH_EMPTY
        BankResponse mixed = Batch(Answer(1), Answer(2));
        mixed.Reason = "beside";
        yield return mixed; // BATCH_MIXED
        yield return Batch(Answer(1), Batch(Answer(2), Answer(3))); // BATCH_NESTED
        yield return Batch(Answer(1), Answer(-4)); // BATCH_ELEMENT_INVALID: the id
        yield return Batch(Answer(1), Answer(2, BankOperation.Unspecified)); // the operation
        yield return Batch(Answer(1), Answer(2, BankOperation.Credit, (BankReply)9)); // the reply
        yield return Batch(Enumerable.Range(1, ExchangeBatch.MaxElements + 1).Select(i => Answer(i)).ToArray()); // BATCH_TOO_LARGE
    }

    private static BankAnswers Decode(byte[] bytes) => Decode(new ReadOnlySequence<byte>(bytes));

    private static BankAnswers Decode(in ReadOnlySequence<byte> bytes)
    {
        var answers = new BankAnswers();
        answers.DecodeFrom(bytes);
        return answers;
    }

    [Fact]
    public void Every_message_decodes_to_the_fields_and_the_refusal_of_the_generated_type()
    {
        foreach (BankResponse message in Messages())
        {
            BankAnswers answers = Decode(message.ToByteArray());
            Assert.Equal(ExchangeBatch.Problem(message, ExchangeBatch.MaxElements)?.Status.Detail, answers.Problem(ExchangeBatch.MaxElements)?.Status.Detail);
            Assert.Equal(message.Batch.Count, answers.BatchCount);
            for (int i = 0; i < answers.Count; i++)
            {
                BankResponse expected = message.Batch.Count == 0 ? message : message.Batch[i];
                BankAnswers.Answer got = answers.At(i);
                Assert.Equal((expected.TransactionId, expected.Operation, expected.Reply, expected.Reason, expected.Batch.Count),
                    (got.TransactionId, got.Operation, got.Reply, Encoding.UTF8.GetString(got.Reason.In(answers.Bytes)), got.BatchCount));
            }
            answers.Release();
            Assert.Equal(0, answers.BatchCount);
        }
    }

    [Fact]
    public void Fields_a_newer_bank_adds_are_skipped_as_the_generated_type_skips_them()
    {
        BankResponse element = Answer(7, BankOperation.Query, BankReply.NotFound);
        // Field 9 (varint 300) and field 10 (bytes "xy") appended to the element, and field 11 (fixed32) to the message.
        byte[] elementBytes = [.. element.ToByteArray(), 9 << 3, 0xAC, 0x02, 10 << 3 | 2, 2, (byte)'x', (byte)'y'];
        byte[] message = [5 << 3 | 2, (byte)elementBytes.Length, .. elementBytes, 11 << 3 | 5, 1, 2, 3, 4];
        BankResponse generated = BankResponse.Parser.ParseFrom(message);
        Assert.Equal((7L, BankOperation.Query, BankReply.NotFound), (generated.Batch[0].TransactionId, generated.Batch[0].Operation, generated.Batch[0].Reply));

        BankAnswers answers = Decode(message);

        Assert.Null(answers.Problem(ExchangeBatch.MaxElements));
        Assert.Equal(1, answers.Count);
        Assert.Equal((7L, BankOperation.Query, BankReply.NotFound), (answers.At(0).TransactionId, answers.At(0).Operation, answers.At(0).Reply));
    }

    [Fact]
    public void A_truncated_message_fails_to_parse_as_the_generated_type_does()
    {
        byte[] bytes = Batch(Answer(1), Answer(2)).ToByteArray();
        byte[] truncated = bytes[..^1];
        Assert.Throws<InvalidProtocolBufferException>(() => BankResponse.Parser.ParseFrom(truncated));
        Assert.Throws<InvalidProtocolBufferException>(() => Decode(truncated));
    }

    [Fact]
    public void A_message_across_buffer_segments_decodes_as_one_in_a_single_segment()
    {
        byte[] bytes = Batch(Enumerable.Range(1, 50).Select(i => Answer(i, BankOperation.Credit, BankReply.Failed, "R" + i)).ToArray()).ToByteArray();
        // Split mid-element, as a large batch lands across the request body's buffers.
        var first = new Segment(bytes.AsMemory(0, bytes.Length / 2));
        Segment last = first.Then(bytes.AsMemory(bytes.Length / 2));
        BankAnswers answers = Decode(new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length));
        Array.Clear(bytes); // the decoded text must not point into the segments

        Assert.Null(answers.Problem(ExchangeBatch.MaxElements));
        Assert.Equal(50, answers.Count);
        for (int i = 0; i < 50; i++)
        {
            Assert.Equal((i + 1L, "R" + (i + 1)), (answers.At(i).TransactionId, Encoding.UTF8.GetString(answers.At(i).Reason.In(answers.Bytes))));
        }
        answers.Release();
    }

    [Fact]
    public void A_group_the_generated_type_would_skip_is_refused_by_name_not_misread()
    {
        // An answer, then an unknown group (field 12: start, a varint inside, end): no bank sends one.
        byte[] message = [.. Answer(7).ToByteArray(), 12 << 3 | 3, 1 << 3, 1, 12 << 3 | 4];
        Assert.Equal(7L, BankResponse.Parser.ParseFrom(message).TransactionId);

        var refusal = Assert.Throws<InvalidDataException>(() => Decode(message));
        Assert.Contains("switch.v1.BankResponse", refusal.Message);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory) => Memory = memory;

        public Segment Then(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory) { RunningIndex = RunningIndex + Memory.Length };
            Next = next;
            return next;
        }
    }
}
