using System.Globalization;
using Switch.Grpc;

namespace Switch.Contracts.V1;

/// <summary>
/// The batch form of the streams (bank.proto's Exchange, institution.proto's Transact): one message carrying many
/// requests or many results in its repeated <c>batch</c> field and nothing else. A reader takes batches only where it
/// has said so in a header, so a peer implementing only the single form keeps working; a batch is taken or refused
/// whole.
/// </summary>
public static class BatchForm
{
    /// <summary>Elements in one message at most, whatever a peer declares.</summary>
    public const int MaxElements = 8_190;

    /// <summary>A declared maximum read from a header: 1 (the single form) when absent; null when not 1 to MaxElements.</summary>
    public static int? ParseDeclared(string? header)
    {
        if (header is null) return 1;
        return int.TryParse(header, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n is >= 1 and <= MaxElements ? n : null;
    }

    public static string Format(int max) => max.ToString(CultureInfo.InvariantCulture);

    /// <summary>Null when the message is a well-formed single one or batch for a reader taking up to <paramref name="max"/>;
    /// else the refusal (INVALID_ARGUMENT), its message starting with its code.</summary>
    /// <param name="emptyIsRefused">Whether a message with nothing in it is BATCH_EMPTY (else it is a single one, however wrong).</param>
    /// <param name="elementProblem">What makes an element unusable for any reader (its field and why), or null: such an
    /// element refuses its batch whole (BATCH_ELEMENT_INVALID), so nothing of it acts on half a message.</param>
    internal static RpcException? Problem<T>(IReadOnlyList<T> batch, bool singleFieldsSet, Func<T, int> batchOf, int max, string what, bool emptyIsRefused,
        Func<T, string?>? elementProblem = null)
    {
        int count = batch.Count;
        if (count == 0)
        {
            return emptyIsRefused && !singleFieldsSet ? Refuse($"BATCH_EMPTY: the message holds neither a single one of the {what} nor a batch of them") : null;
        }
        if (count > max) return Refuse($"BATCH_TOO_LARGE: a batch of {count} {what}, over the {max} this reader declared; none of it was taken");
        if (singleFieldsSet) return Refuse($"BATCH_MIXED: a batch of {count} {what} with fields of a single one beside it; none of it was taken");
        for (int i = 0; i < count; i++)
        {
            if (batchOf(batch[i]) > 0) return Refuse($"BATCH_NESTED: element {i} of a batch of {count} {what} is itself a batch; none of it was taken");
            if (elementProblem?.Invoke(batch[i]) is { } wrong)
            {
                return Refuse($"BATCH_ELEMENT_INVALID: element {i} of a batch of {count} {what} (counting from 0): {wrong}; none of it was taken");
            }
        }
        return null;
    }

    private static RpcException Refuse(string message) => new(StatusCode.InvalidArgument, message);
}

/// <summary>The bank Exchange stream's batch form and its handshake (bank.proto).</summary>
public static class ExchangeBatch
{
    public const int MaxElements = BatchForm.MaxElements;

    /// <summary>Request metadata of the switch's Exchange call: it reads batched answers of up to this many.</summary>
    public const string SwitchBatchMaxHeader = "x-switch-batch-max";

    /// <summary>Response header of a bank's Exchange (sent with its first answer): it reads batched requests of up to this many.</summary>
    public const string BankBatchMaxHeader = "x-bank-batch-max";

    public static int? ParseDeclared(string? header) => BatchForm.ParseDeclared(header);

    public static string Format(int max) => BatchForm.Format(max);

    /// <summary>Null when the request message is well formed for a reader taking batches of up to <paramref name="max"/>;
    /// else the refusal. A message with nothing in it is BATCH_EMPTY; an element that cannot be answered (see
    /// <see cref="RequestProblem"/>) refuses the batch whole.</summary>
    public static RpcException? Problem(BankRequest message, int max) =>
        BatchForm.Problem(message.Batch, SingleFieldsSet(message), static r => r.Batch.Count, max, "requests", emptyIsRefused: true, RequestProblem);

    /// <summary>The field of a request that leaves nothing to answer it with (named as in bank.proto), or null: the
    /// transaction id is not positive, or the operation is unset or unknown. Other faults (an amount, an account) are
    /// the bank's to answer FAILED.</summary>
    public static string? RequestProblem(BankRequest request) => RequestProblem(request.TransactionId, request.Operation);

    public static string? RequestProblem(long transactionId, BankOperation operation) =>
        transactionId <= 0 ? $"transaction_id must be positive, got {transactionId}" : OperationProblem(operation);

    /// <summary>As <see cref="Problem(BankRequest, int)"/>, for a request message decoded by hand into its elements'
    /// fields (<paramref name="batchOf"/>: an element's own batch count) and whether its single fields are set.</summary>
    public static RpcException? RequestsProblem<T>(IReadOnlyList<T> batch, bool singleFieldsSet, Func<T, int> batchOf, Func<T, string?> requestProblem, int max) =>
        BatchForm.Problem(batch, singleFieldsSet, batchOf, max, "requests", emptyIsRefused: true, requestProblem);

    private static string? OperationProblem(BankOperation operation) =>
        operation is BankOperation.Debit or BankOperation.Credit or BankOperation.Query or BankOperation.Reverse
            ? null
            : $"operation must be DEBIT, CREDIT, QUERY or REVERSE, got {(int)operation}";

    /// <summary>As for requests, for an answer message; an element that answers nothing the switch can act on (see
    /// <see cref="AnswerProblem"/>) refuses the batch whole.</summary>
    public static RpcException? Problem(BankResponse message, int max) =>
        BatchForm.Problem(message.Batch, SingleFieldsSet(message), static r => r.Batch.Count, max, "answers", emptyIsRefused: true, AnswerProblem);

    /// <summary>As <see cref="Problem(BankResponse, int)"/>, for an answer message decoded by hand into its elements'
    /// fields (<paramref name="batchOf"/>: an element's own batch count) and whether its single fields are set.</summary>
    public static RpcException? Problem<T>(IReadOnlyList<T> batch, bool singleFieldsSet, Func<T, int> batchOf, Func<T, string?> answerProblem, int max) =>
        BatchForm.Problem(batch, singleFieldsSet, batchOf, max, "answers", emptyIsRefused: true, answerProblem);

    /// <summary>The field of an answer that makes it no answer at all (named as in bank.proto), or null: the transaction
    /// id is not positive, or the operation or reply is unset or unknown. A reason is free text.</summary>
    public static string? AnswerProblem(BankResponse answer) => AnswerProblem(answer.TransactionId, answer.Operation, answer.Reply);

    public static string? AnswerProblem(long transactionId, BankOperation operation, BankReply reply)
    {
        if (transactionId <= 0) return $"transaction_id must be positive, got {transactionId}";
        if (OperationProblem(operation) is { } wrong) return wrong;
        if (reply is not (BankReply.Succeeded or BankReply.Failed or BankReply.NotFound or BankReply.Pending))
            return $"reply must be SUCCEEDED, FAILED, NOT_FOUND or PENDING, got {(int)reply}";
        return null;
    }

    private static bool SingleFieldsSet(BankRequest m) =>
        m.TransactionId != 0 || m.Operation != BankOperation.Unspecified || m.AmountFen != 0 || m.Account.Length != 0 || m.BankCode != 0
        || m.Attempt != 0 || m.DeadlineUnixUs != 0;

    private static bool SingleFieldsSet(BankResponse m) =>
        m.TransactionId != 0 || m.Operation != BankOperation.Unspecified || m.Reply != BankReply.Unspecified || m.Reason.Length != 0;
}

/// <summary>The institution Transact stream's batch form (institution.proto).</summary>
public static class TransactBatch
{
    public const int MaxElements = BatchForm.MaxElements;

    /// <summary>Request metadata of a Transact call: the institution reads batched results of up to this many.</summary>
    public const string InstitutionBatchMaxHeader = "x-institution-batch-max";

    /// <summary>Null when the message is a single request (an empty one too: it is rejected as a request, as before
    /// batches) or a well-formed batch; else the refusal.</summary>
    public static RpcException? Problem(TransferRequest message) => Problem(message.Batch, SingleFieldsSet(message), static r => r.Batch.Count);

    /// <summary>As <see cref="Problem(TransferRequest)"/>, for a message decoded by hand into its elements' fields
    /// (<paramref name="batchOf"/>: an element's own batch count) and whether its single fields are set.</summary>
    public static RpcException? Problem<T>(IReadOnlyList<T> batch, bool singleFieldsSet, Func<T, int> batchOf) =>
        BatchForm.Problem(batch, singleFieldsSet, batchOf, MaxElements, "requests", emptyIsRefused: false);

    private static bool SingleFieldsSet(TransferRequest m) =>
        m.Kind != RequestKind.Unspecified || m.OrderNo.Length != 0 || m.AmountFen != 0 || m.Currency.Length != 0 || m.Bank.Length != 0
        || m.Account.Length != 0 || m.OriginalOrderNo.Length != 0 || m.Echo.Length != 0;
}
