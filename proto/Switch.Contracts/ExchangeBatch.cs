using System.Globalization;
using Switch.Grpc;

namespace Switch.Contracts.V1;

/// <summary>
/// The batch form of the bank Exchange stream (bank.proto): one message carrying many requests or many answers.
/// Each side reads batches only when it has said so in a header, so a bank implementing only the single form
/// keeps working; a batch is taken or refused whole.
/// </summary>
public static class ExchangeBatch
{
    /// <summary>Elements in one message at most, whatever a peer declares.</summary>
    public const int MaxElements = 8_190;

    /// <summary>Request metadata of the switch's Exchange call: it reads batched answers of up to this many.</summary>
    public const string SwitchBatchMaxHeader = "x-switch-batch-max";

    /// <summary>Response header of a bank's Exchange (sent with its first answer): it reads batched requests of up to this many.</summary>
    public const string BankBatchMaxHeader = "x-bank-batch-max";

    /// <summary>A declared maximum read from a header: 1 (the single form) when absent; null when not 1 to MaxElements.</summary>
    public static int? ParseDeclared(string? header)
    {
        if (header is null) return 1;
        return int.TryParse(header, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n is >= 1 and <= MaxElements ? n : null;
    }

    public static string Format(int max) => max.ToString(CultureInfo.InvariantCulture);

    /// <summary>Null when the request message is a well-formed single request or batch for a reader taking up to
    /// <paramref name="max"/>; else the refusal, its message starting with its code.</summary>
    public static RpcException? Problem(BankRequest message, int max) =>
        Problem(message.Batch.Count, SingleFieldsSet(message), NestedAt(message.Batch, static r => r.Batch.Count), max, "requests");

    /// <summary>As for requests, for an answer message.</summary>
    public static RpcException? Problem(BankResponse message, int max) =>
        Problem(message.Batch.Count, SingleFieldsSet(message), NestedAt(message.Batch, static r => r.Batch.Count), max, "answers");

    private static RpcException? Problem(int count, bool beside, int nestedAt, int max, string what)
    {
        if (count == 0 && !beside) return Refuse($"BATCH_EMPTY: the message holds neither a single one of the {what} nor a batch of them");
        if (count == 0) return null; // The single form.
        if (count > max) return Refuse($"BATCH_TOO_LARGE: a batch of {count} {what}, over the {max} this reader declared; none of it was taken");
        if (beside) return Refuse($"BATCH_MIXED: a batch of {count} {what} with fields of a single one beside it; none of it was taken");
        if (nestedAt >= 0) return Refuse($"BATCH_NESTED: element {nestedAt} of a batch of {count} {what} is itself a batch; none of it was taken");
        return null;
    }

    private static RpcException Refuse(string message) => new(StatusCode.InvalidArgument, message);

    private static bool SingleFieldsSet(BankRequest m) =>
        m.TransactionId != 0 || m.Operation != BankOperation.Unspecified || m.AmountFen != 0 || m.Account.Length != 0 || m.BankCode != 0
        || m.Attempt != 0 || m.DeadlineUnixUs != 0;

    private static bool SingleFieldsSet(BankResponse m) =>
        m.TransactionId != 0 || m.Operation != BankOperation.Unspecified || m.Reply != BankReply.Unspecified || m.Reason.Length != 0;

    private static int NestedAt<T>(IReadOnlyList<T> elements, Func<T, int> batchCount)
    {
        for (int i = 0; i < elements.Count; i++)
        {
            if (batchCount(elements[i]) > 0) return i;
        }
        return -1;
    }
}
