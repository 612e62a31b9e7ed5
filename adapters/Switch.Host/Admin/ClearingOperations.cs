using System.Text;
using Switch.Clearing;
using Switch.Contracts.V1;
using Switch.Engine.Events;
using Switch.Grpc;
using Switch.Host.Clearing;
using Switch.Host.Gateway;
using WireBreakTotal = Switch.Contracts.V1.BreakTotal;
using WireSettlementLine = Switch.Contracts.V1.SettlementLine;

namespace Switch.Host.Admin;

/// <summary>
/// The clearing part of the operator API (admin.proto): one method per RPC, each answering the reply message or
/// throwing <see cref="RpcException"/> with a precise status. Authentication is the caller's: the operator's
/// identity arrives as an argument, never from a request field.
/// </summary>
public sealed class ClearingOperations
{
    public const int DefaultListLimit = 50;
    public const int MaxListLimit = 1_000;
    /// <summary>The reason is journaled with the close (InputEvent.Note).</summary>
    public const int MaxReasonBytes = Text64.CapacityBytes;
    public const int MaxChunkBytes = 1 << 20;
    /// <summary>A submitted file: 10 million lines of about 150 bytes fit with room to spare.</summary>
    public const long DefaultMaxSubmissionBytes = 4L << 30;
    /// <summary>Comparisons running at once (each spools its upload to disk and holds a bounded sort buffer).</summary>
    public const int MaxConcurrentComparisons = 2;

    private readonly ClearingDesk _desk;
    private readonly long _maxSubmissionBytes;
    private readonly SemaphoreSlim _comparisons = new(MaxConcurrentComparisons, MaxConcurrentComparisons);

    public ClearingOperations(ClearingDesk desk, long maxSubmissionBytes = DefaultMaxSubmissionBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSubmissionBytes, 1024);
        _desk = desk;
        _maxSubmissionBytes = maxSubmissionBytes;
        // A crash mid-comparison leaves its upload behind; built once at start, nothing is being compared yet.
        if (Directory.Exists(SpoolDirectory))
        {
            foreach (string stray in Directory.EnumerateFiles(SpoolDirectory, "upload-*.csv")) File.Delete(stray);
        }
    }

    /// <summary>Where uploads are spooled while they are compared (deleted after; stray ones are removed at start).</summary>
    public string SpoolDirectory => Path.Combine(_desk.DataDirectory, "clearing", "submissions");

    public async Task<CloseBatchReply> CloseBatchAsync(CloseBatchRequest request, string operatorId, CancellationToken cancellation)
    {
        string? invalid = CheckReason(request.Reason);
        if (invalid is not null) throw new RpcException(StatusCode.InvalidArgument, $"reason: {invalid}");
        CloseBatchResult result;
        try
        {
            result = await _desk.CloseBatchAsync(operatorId, request.Reason, cancellation);
        }
        catch (Exception e) when (InstitutionGateway.EngineError(e) is { } status)
        {
            throw status;
        }
        if (result.Reject != RejectCode.None)
        {
            throw new RpcException(ResultMapping.StatusOf(result.Reject),
                $"{ResultMapping.RejectName(result.Reject)}: {FieldName(result.Field)} {ResultMapping.Describe(result.Reject)}");
        }
        return new CloseBatchReply { BatchId = result.BatchId };
    }

    public ListBatchesReply ListBatches(ListBatchesRequest request)
    {
        if (request.Limit is < 0 or > MaxListLimit) throw new RpcException(StatusCode.InvalidArgument, $"limit: 0 (default {DefaultListLimit}) to {MaxListLimit}, got {request.Limit}");
        int limit = request.Limit == 0 ? DefaultListLimit : request.Limit;
        var reply = new ListBatchesReply { OpenBatchId = _desk.Recorder.LastClosedBatchId + 1 };
        foreach (BatchSummary b in _desk.Recorder.RecentBatches(limit))
        {
            reply.Batches.Add(new BatchInfo
            {
                BatchId = b.BatchId,
                OpenedUnixUs = b.OpenedUs,
                ClosedUnixUs = b.ClosedUs,
                Transactions = b.TransactionCount,
                FilesComplete = _desk.FilesOf(b.BatchId) == BatchFiles.Complete,
                ClosedBy = b.ClosedBy,
            });
        }
        if (_desk.Fault is { } fault) reply.FilesFault = fault.Message;
        return reply;
    }

    public SettlementReply GetSettlement(SettlementRequest request)
    {
        if (request.BatchId <= 0) throw new RpcException(StatusCode.InvalidArgument, $"batch_id: must be > 0, got {request.BatchId}");
        SettlementFile file;
        string relativePath;
        try
        {
            file = _desk.ReadSettlement(request.BatchId, out relativePath);
        }
        catch (BatchFilesException e)
        {
            throw Unavailable(e);
        }
        catch (Exception e) when (e is ClearingFormatException or InvalidDataException or IOException)
        {
            // The switch's own file no longer reads back as written: the operators must know, loudly.
            throw new RpcException(StatusCode.DataLoss, $"the settlement file of batch {request.BatchId} is damaged: {e.Message}");
        }
        var reply = new SettlementReply { BatchId = file.BatchId, SumNetFen = file.NetSumFen, File = relativePath };
        foreach (Switch.Clearing.SettlementLine l in file.Lines)
        {
            reply.Lines.Add(new WireSettlementLine
            {
                ParticipantKind = l.Kind, ParticipantId = l.Id, DebitsFen = l.DebitsFen, CreditsFen = l.CreditsFen,
                FeesFen = l.FeesFen, NetFen = l.NetFen, Count = l.Count,
            });
        }
        return reply;
    }

    /// <summary>
    /// Spools the upload to a temporary file (bounded by the size cap, chunks of at most 1 MiB), then compares it
    /// with the switch's file for the batch and participant its header names.
    /// </summary>
    public async Task<BreakReportReply> SubmitRecordsAsync(IAsyncEnumerable<RecordsChunk> chunks, CancellationToken cancellation)
    {
        if (!await _comparisons.WaitAsync(0, cancellation))
        {
            throw new RpcException(StatusCode.ResourceExhausted, $"{MaxConcurrentComparisons} comparisons are running; try again when one is done");
        }
        string spool = Path.Combine(SpoolDirectory, $"upload-{Guid.NewGuid():N}.csv");
        try
        {
            Directory.CreateDirectory(SpoolDirectory); // not made durable: an upload lives only for its comparison
            await SpoolAsync(chunks, spool, cancellation);
            BreakReport report;
            try
            {
                // Parsing and comparing are CPU work: off the caller's I/O thread.
                report = await Task.Run(() =>
                {
                    using var submitted = new FileStream(spool, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
                    return _desk.CompareSubmitted(submitted, _maxSubmissionBytes, SpoolDirectory);
                }, cancellation);
            }
            catch (ClearingFormatException e)
            {
                throw new RpcException(StatusCode.InvalidArgument, e.Message);
            }
            catch (BatchFilesException e)
            {
                throw Unavailable(e);
            }
            catch (InvalidDataException e)
            {
                throw new RpcException(StatusCode.DataLoss, e.Message);
            }
            return ToReply(report);
        }
        finally
        {
            File.Delete(spool);
            _comparisons.Release();
        }
    }

    private async Task SpoolAsync(IAsyncEnumerable<RecordsChunk> chunks, string path, CancellationToken cancellation)
    {
        await using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
        long total = 0;
        await foreach (RecordsChunk chunk in chunks.WithCancellation(cancellation))
        {
            int length = chunk.Data.Length;
            if (length > MaxChunkBytes) throw new RpcException(StatusCode.InvalidArgument, $"data: a chunk holds at most {MaxChunkBytes} bytes, got {length}");
            total += length;
            if (total > _maxSubmissionBytes) throw new RpcException(StatusCode.InvalidArgument, $"line 0: file larger than {_maxSubmissionBytes} bytes");
            // Fail fast on what is plainly not a reconciliation file, before spooling gigabytes of it.
            if (total == length && length > 0 && chunk.Data.Span[0] != (byte)'H')
            {
                throw new RpcException(StatusCode.InvalidArgument, "line 1: header not on the first line (a reconciliation file starts with H)");
            }
            await file.WriteAsync(chunk.Data.Memory, cancellation);
        }
        if (total == 0) throw new RpcException(StatusCode.InvalidArgument, "line 1: empty file: no header");
    }

    public static BreakReportReply ToReply(BreakReport report)
    {
        var reply = new BreakReportReply
        {
            BatchId = report.BatchId,
            ParticipantKind = report.ParticipantKind,
            ParticipantId = report.ParticipantId,
            SwitchLines = report.SwitchLines,
            ParticipantLines = report.ParticipantLines,
            Matched = report.Matched,
            BreaksTruncated = report.BreaksTruncated,
        };
        foreach (BreakKind kind in Enum.GetValues<BreakKind>())
        {
            Switch.Clearing.BreakTotal t = report.Totals[kind];
            reply.Totals.Add(new WireBreakTotal { Kind = KindName(kind), Count = t.Count, AmountFen = t.AmountFen });
        }
        foreach (Break b in report.Breaks)
        {
            reply.Breaks.Add(new BreakLine
            {
                Kind = KindName(b.Kind), TransactionId = b.SwitchId, OrderNo = b.OrderNo, SwitchAmountFen = b.SwitchAmountFen,
                ParticipantAmountFen = b.ParticipantAmountFen, SwitchStatus = b.SwitchStatus, ParticipantStatus = b.ParticipantStatus,
            });
        }
        return reply;
    }

    public static string KindName(BreakKind kind) => kind switch
    {
        BreakKind.MissingAtSwitch => "MISSING_AT_SWITCH",
        BreakKind.MissingAtParticipant => "MISSING_AT_PARTICIPANT",
        BreakKind.AmountMismatch => "AMOUNT_MISMATCH",
        BreakKind.StatusMismatch => "STATUS_MISMATCH",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>Null when the reason is fine: required, at most 64 bytes of UTF-8, no control characters.</summary>
    public static string? CheckReason(string reason)
    {
        if (string.IsNullOrWhiteSpace(reason)) return "required (why the batch is closed now)";
        int bytes = Encoding.UTF8.GetByteCount(reason);
        if (bytes > MaxReasonBytes) return $"at most {MaxReasonBytes} bytes of UTF-8, got {bytes}";
        foreach (char c in reason)
        {
            if (char.IsControl(c)) return $"no control characters (found U+{(int)c:X4})";
        }
        return null;
    }

    private static RpcException Unavailable(BatchFilesException e) => new(
        e.State == BatchFiles.Faulted ? StatusCode.FailedPrecondition : StatusCode.NotFound, e.Message);

    private static string FieldName(RequestField field) => field switch
    {
        RequestField.Operator => "operator_id",
        RequestField.Note => "reason",
        _ => ResultMapping.FieldName(field),
    };
}
