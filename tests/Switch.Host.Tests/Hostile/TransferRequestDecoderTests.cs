using System.Buffers;
using System.Text;
using Google.Protobuf;
using Switch.Contracts.V1;
using Switch.Engine.Events;
using Switch.Host.Gateway;
using Xunit.Abstractions;

namespace Switch.Host.Tests.Hostile;

/// <summary>
/// Transact's hand decoder (<see cref="TransferRequestDecoder"/>) against the generated parser, fed the same bytes: valid
/// messages of every shape, protobuf's edge cases, and mutated and random bytes, whole or in pieces. Each must come out
/// the same (the same fields, the same batch verdict, the same ring slot) or be refused with the same words.
/// </summary>
public sealed class TransferRequestDecoderTests(ITestOutputHelper output)
{
    private static readonly string[] Texts =
        ["", "ORD-1", "CNY", "102", "105100000017", "6222020212345678", "订单-δ", "echo \uFFFD here", new string('x', 32), new string('y', 33),
         "ok\u00e9" + new string('z', 30), new string('e', 64), new string('e', 65), "😀 emoji"];

    private static string Text(Random random) => Texts[random.Next(Texts.Length)];

    private static TransferRequest Single(Random random) => new()
    {
        Kind = (RequestKind)random.Next(-2, 7),
        OrderNo = Text(random),
        AmountFen = random.Next(4) == 0 ? random.NextInt64(long.MinValue, long.MaxValue) : random.Next(0, 100_000),
        Currency = Text(random),
        Bank = Text(random),
        Account = Text(random),
        OriginalOrderNo = random.Next(3) == 0 ? Text(random) : "",
        Echo = random.Next(2) == 0 ? Text(random) : "",
    };

    /// <summary>A single request, a batch, or (rarely) a batch with single fields beside it or a nested batch.</summary>
    private static TransferRequest Valid(Random random)
    {
        if (random.Next(3) == 0) return Single(random);
        var batch = random.Next(8) == 0 ? Single(random) : new TransferRequest();
        int count = random.Next(1, 70);
        for (int i = 0; i < count; i++)
        {
            TransferRequest element = Single(random);
            if (random.Next(200) == 0) element.Batch.Add(Single(random));
            batch.Batch.Add(element);
        }
        return batch;
    }

    /// <summary>Protobuf's wire rules at work: unknown fields of each wire type, known numbers in another wire type, a
    /// field given twice, over-long varints, groups, bytes that are not UTF-8, truncation, random noise.</summary>
    private static byte[] Mutate(Random random, byte[] valid)
    {
        var bytes = new List<byte>(valid);
        int at = bytes.Count == 0 ? 0 : random.Next(bytes.Count);
        switch (random.Next(16))
        {
            case 0 when bytes.Count > 0: bytes[at] ^= (byte)(1 << random.Next(8)); break;
            case 1: bytes.Insert(at, (byte)random.Next(256)); break;
            case 2 when bytes.Count > 0: bytes.RemoveAt(at); break;
            case 3: bytes.RemoveRange(at, bytes.Count - at); break;
            case 4: bytes.AddRange([0xA0, 0x06, 0x96, 0x01]); break; // field 100, varint: unknown
            case 5: bytes.AddRange([0x79, 1, 2, 3, 4, 5, 6, 7, 8]); break; // field 15, fixed64: unknown
            case 6: bytes.AddRange([0x6D, 1, 2, 3, 4]); break; // field 13, fixed32: unknown
            case 7: bytes.AddRange([0x52, 0x03, 0xFF, 0x00, 0x01]); break; // field 10, bytes: unknown (not UTF-8, and need not be)
            case 8: bytes.AddRange([0x10, 0x05]); break; // order_no (2) as a varint: unknown to the generated parser
            case 9: bytes.AddRange([0x1A, 0x02, 0x31, 0x32]); break; // amount_fen (3) length-delimited: the same
            case 10: bytes.AddRange([0x18, 0x2A, 0x08, 0x03, 0x12, 0x02, 0x41, 0x42]); break; // amount, kind, order_no again: the last wins
            case 11: bytes.AddRange([0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, (byte)random.Next(0, 3)]); break; // 10-byte varints
            case 12: bytes.AddRange([0x08, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]); break; // kind -2, sign-extended
            case 13: bytes.AddRange([0x5B, 0x08, 0x01, 0x5C]); break; // a group (field 11): skipped whole by the generated parser
            case 14: bytes.AddRange([0x42, 0x02, 0xC3, 0x28]); break; // echo, not UTF-8
            default:
                byte[] noise = new byte[random.Next(0, 40)];
                random.NextBytes(noise);
                bytes.InsertRange(at, noise);
                break;
        }
        return bytes.ToArray();
    }

    /// <summary>The bytes as the body's buffer may hold them: whole, or in pieces.</summary>
    private static ReadOnlySequence<byte> Pieces(Random random, byte[] bytes)
    {
        if (bytes.Length < 2 || random.Next(3) != 0) return new ReadOnlySequence<byte>(bytes);
        int cut = random.Next(1, bytes.Length);
        var first = new Piece(bytes.AsMemory(0, cut), 0);
        Piece last = first.Then(bytes.AsMemory(cut));
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Piece : ReadOnlySequenceSegment<byte>
    {
        public Piece(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Piece Then(ReadOnlyMemory<byte> memory)
        {
            var next = new Piece(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }

    /// <summary>Feeds both decoders; asserts they agree. Returns whether the hand path decided.</summary>
    private static bool SameFromBoth(TransferRequestDecoder decoder, ReadOnlySequence<byte> bytes)
    {
        TransferRequest? parsed = null;
        string? refusal = null;
        try
        {
            parsed = TransferRequest.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            refusal = e.Message;
        }
        bool decoded = decoder.TryDecode(bytes, out InvalidProtocolBufferException? malformed);
        if (parsed is null)
        {
            Assert.False(decoded, $"the generated parser refused ({refusal}), the hand decoder took: {Convert.ToHexString(bytes.ToArray())}");
            Assert.Equal(refusal, malformed!.Message);
            return decoder.DecodedByHand;
        }
        Assert.True(decoded, $"the generated parser took it, the hand decoder refused ({malformed?.Message}): {Convert.ToHexString(bytes.ToArray())}");
        ReadOnlySpan<byte> message = decoder.Message.Span;
        Same(parsed, decoder.Single, message);
        string? problem = parsed.Batch.Count == 0 ? null : TransactBatch.Problem(parsed)?.Status.Detail;
        Assert.Equal(problem, decoder.Problem()?.Status.Detail);
        if (problem is null)
        {
            Assert.Equal(parsed.Batch.Count, decoder.BatchCount);
            for (int i = 0; i < parsed.Batch.Count; i++) Same(parsed.Batch[i], decoder.Element(i), message);
        }
        return decoder.DecodedByHand;
    }

    private static void Same(TransferRequest parsed, in RequestFields fields, ReadOnlySpan<byte> message)
    {
        Assert.Equal((int)parsed.Kind, fields.Kind);
        Assert.Equal(parsed.AmountFen, fields.AmountFen);
        Assert.Equal(parsed.OrderNo, Encoding.UTF8.GetString(fields.OrderNo.In(message)));
        Assert.Equal(parsed.Currency, Encoding.UTF8.GetString(fields.Currency.In(message)));
        Assert.Equal(parsed.Bank, Encoding.UTF8.GetString(fields.Bank.In(message)));
        Assert.Equal(parsed.Account, Encoding.UTF8.GetString(fields.Account.In(message)));
        Assert.Equal(parsed.OriginalOrderNo, Encoding.UTF8.GetString(fields.OriginalOrderNo.In(message)));
        Assert.Equal(parsed.Echo, Encoding.UTF8.GetString(fields.Echo.In(message)));
        Assert.Equal(parsed.Batch.Count, fields.BatchCount);
        // The ring slot each fills: the same event, byte for byte (overlong fields, an echo with U+FFFD refused alike).
        var fromString = new InputEvent();
        var fromBytes = new InputEvent();
        DateTime deadline = new(2026, 12, 6, 23, 0, 0, DateTimeKind.Utc);
        new ResultMapping.RequestFill(parsed, ResultMapping.TypeOf(parsed.Kind), "ALIPAY"u8.ToArray(), deadline).Fill(ref fromString, 7);
        new ResultMapping.DecodedFill(message.ToArray(), fields, ResultMapping.TypeOf((RequestKind)fields.Kind), "ALIPAY"u8.ToArray(), deadline).Fill(ref fromBytes, 7);
        Assert.Equal(
            (fromString.Kind, fromString.CorrelationId, fromString.RequestType, fromString.AmountFen, fromString.Institution, fromString.OrderNo,
                fromString.OriginalOrderNo, fromString.BankRef, fromString.Account, fromString.Currency, fromString.Echo, fromString.ClientDeadlineUs),
            (fromBytes.Kind, fromBytes.CorrelationId, fromBytes.RequestType, fromBytes.AmountFen, fromBytes.Institution, fromBytes.OrderNo,
                fromBytes.OriginalOrderNo, fromBytes.BankRef, fromBytes.Account, fromBytes.Currency, fromBytes.Echo, fromBytes.ClientDeadlineUs));
    }

    [Fact]
    public void Valid_messages_of_every_shape_decode_by_hand_as_the_generated_parser_decodes_them()
    {
        var random = new Random(17);
        var decoder = new TransferRequestDecoder();
        int byHand = 0, nested = 0;
        for (int i = 0; i < 3_000; i++)
        {
            TransferRequest valid = Valid(random);
            bool hasNested = valid.Batch.Any(e => e.Batch.Count > 0);
            bool hand = SameFromBoth(decoder, Pieces(random, valid.ToByteArray()));
            if (hasNested) nested++;
            else
            {
                Assert.True(hand, "a message without a nested batch is the hand path's");
                byHand++;
            }
        }
        output.WriteLine($"{byHand} by hand, {nested} with a nested batch (the generated parser's)");
    }

    [Fact]
    public void Mutated_and_random_bytes_come_out_the_same_or_are_refused_in_the_same_words()
    {
        int seed = Environment.GetEnvironmentVariable("SWITCH_FUZZ_SEED") is { } s ? int.Parse(s) : Random.Shared.Next();
        output.WriteLine($"fuzz seed {seed} (set SWITCH_FUZZ_SEED to replay)");
        var random = new Random(seed);
        var decoder = new TransferRequestDecoder();
        int byHand = 0, refused = 0;
        const int Messages = 30_000;
        for (int i = 0; i < Messages; i++)
        {
            byte[] bytes = Valid(random).ToByteArray();
            for (int m = random.Next(1, 4); m > 0; m--) bytes = Mutate(random, bytes);
            ReadOnlySequence<byte> sequence = Pieces(random, bytes);
            if (SameFromBoth(decoder, sequence)) byHand++;
            try { TransferRequest.Parser.ParseFrom(sequence); }
            catch (InvalidProtocolBufferException) { refused++; }
        }
        output.WriteLine($"{Messages} messages: {byHand} decided by hand, {refused} refused");
        Assert.InRange(byHand, Messages / 4, Messages); // the hand path takes the unusual but valid ones, not only the plain
        Assert.InRange(refused, 1, Messages - 1);
    }

    [Theory]
    [InlineData("A0069601", "unknown varint field")]
    [InlineData("790102030405060708", "unknown fixed64 field")]
    [InlineData("6D01020304", "unknown fixed32 field")]
    [InlineData("5203FF0001", "unknown bytes field, not UTF-8")]
    [InlineData("1005", "order_no as a varint")]
    [InlineData("1A023132", "amount_fen length-delimited")]
    [InlineData("182A0803120241421801", "amount, kind and order_no twice: the last wins")]
    [InlineData("18FFFFFFFFFFFFFFFFFF01", "amount -1 in ten bytes")]
    [InlineData("08FEFFFFFFFFFFFFFFFF01", "kind -2, sign-extended")]
    [InlineData("4A00", "an empty batch element")]
    public void Protobufs_rules_on_the_hand_path(string hex, string what)
    {
        var decoder = new TransferRequestDecoder();
        byte[] bytes = Convert.FromHexString("120341424318E807" + hex); // order_no "ABC", amount 1000, then the case
        Assert.True(SameFromBoth(decoder, new ReadOnlySequence<byte>(bytes)), what);
    }

    [Theory]
    [InlineData("4203C328FF", "echo not UTF-8")]
    [InlineData("00", "tag zero")]
    [InlineData("0F", "wire type 7")]
    [InlineData("1205414243", "order_no cut short")]
    [InlineData("18FFFFFFFFFFFFFFFFFFFF01", "an 11-byte varint")]
    [InlineData("5C", "an end-group tag")]
    [InlineData("4A044A020800", "a nested batch")]
    [InlineData("5B08015C", "a group")]
    public void What_the_hand_path_leaves_to_the_generated_parser_is_decided_and_worded_as_before(string hex, string what)
    {
        var decoder = new TransferRequestDecoder();
        byte[] bytes = Convert.FromHexString("120341424318E807" + hex);
        Assert.False(SameFromBoth(decoder, new ReadOnlySequence<byte>(bytes)), what);
    }
}
