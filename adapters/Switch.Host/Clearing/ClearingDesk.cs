using Switch.Clearing;
using Switch.Engine.Client;
using Switch.Engine.Clearing;
using Switch.Engine.Events;

namespace Switch.Host.Clearing;

/// <summary>The answer to a close command: the batch it closed, or why it was refused.</summary>
public readonly record struct CloseBatchResult(RejectCode Reject, RequestField Field, long BatchId);

/// <summary>
/// What operators do with clearing, for the operator API and CLI to expose: close the open batch (an engine event,
/// journaled like any other), read a closed batch's files, and compare a participant's record with the switch's.
/// </summary>
public sealed class ClearingDesk(EngineClient engine, ClearingRecorder recorder, string dataDirectory)
{
    public string DataDirectory => dataDirectory;
    public ClearingRecorder Recorder => recorder;

    /// <summary>Publishes a close command and waits for the engine's answer. Throws the engine client's errors
    /// (<see cref="EngineBusyException"/>: the input ring stayed full, nothing was published). The reason is journaled
    /// with the command.</summary>
    public async Task<CloseBatchResult> CloseBatchAsync(string operatorId, string reason, CancellationToken cancellation)
    {
        OutputEvent o = await engine.CallAsync(new CloseFill(operatorId, reason), cancellation);
        return new CloseBatchResult(o.Reject, o.RejectField, o.BatchId);
    }

    private readonly struct CloseFill(string operatorId, string reason) : IInputFill
    {
        public void Fill(ref InputEvent e, long correlationId) => e.PrepareCloseBatch(correlationId, operatorId, reason);
    }

    /// <summary>The highest batch whose files are complete (0: none yet); generation failures are in <see cref="Fault"/>.</summary>
    public long FilesCompleteThrough => recorder.GeneratedThrough;
    public Exception? Fault => recorder.Fault;

    /// <summary>Where a batch's files stand.</summary>
    public BatchFiles FilesOf(long batchId) =>
        batchId <= 0 || batchId > recorder.LastClosedBatchId ? BatchFiles.NotClosed
        : ClearingFiles.IsComplete(dataDirectory, batchId) ? BatchFiles.Complete
        : recorder.Fault is not null ? BatchFiles.Faulted
        : BatchFiles.Pending;

    /// <summary>Throws <see cref="BatchFilesException"/> unless the batch is closed and its files complete.</summary>
    public void RequireFiles(long batchId)
    {
        BatchFiles state = FilesOf(batchId);
        string? why = state switch
        {
            BatchFiles.Complete => null,
            BatchFiles.NotClosed => batchId == recorder.LastClosedBatchId + 1 ? $"batch {batchId} is the open batch: it has no files until it closes"
                : $"batch {batchId} does not exist (the last closed batch is {recorder.LastClosedBatchId})",
            BatchFiles.Faulted => $"the files of batch {batchId} are not written: file generation failed ({recorder.Fault?.Message}); fix the cause and restart the switch",
            _ => $"the files of batch {batchId} are being written; try again shortly",
        };
        if (why is not null) throw new BatchFilesException(batchId, state, why);
    }

    /// <summary>A complete batch's settlement instructions, read back from its file (the business record).</summary>
    public SettlementFile ReadSettlement(long batchId, out string relativePath)
    {
        RequireFiles(batchId);
        relativePath = Path.GetRelativePath(dataDirectory, Path.Combine(ClearingFiles.BatchDirectory(dataDirectory, batchId), ClearingFiles.SettlementFile));
        SettlementFile file = SettlementFile.Read(Path.Combine(dataDirectory, relativePath));
        if (file.BatchId != batchId) throw new InvalidDataException($"clearing: the settlement file of batch {batchId} says batch {file.BatchId}");
        return file;
    }

    /// <summary>The switch's reconciliation file for one participant of a complete batch.</summary>
    public string SwitchFileOf(long batchId, string participantKind, string participantId)
    {
        RequireFiles(batchId);
        string file = participantKind == "BANK"
            ? ClearingFiles.BankFile(participantId.Length == 3 && int.TryParse(participantId, out int code) && code is >= 1 and <= 999 ? code
                : throw new ClearingFormatException(1, $"participant_id: not a 3-digit bank code: '{participantId}'"))
            : ClearingFiles.InstitutionFile(participantId);
        string path = Path.Combine(ClearingFiles.BatchDirectory(dataDirectory, batchId), file);
        if (!File.Exists(path)) throw new BatchFilesException(batchId, BatchFiles.Complete, $"{participantKind} {participantId} is not a participant of batch {batchId}");
        return path;
    }

    /// <summary>Reads a participant's record of a batch (checked line by line as it streams) and compares it with the
    /// switch's file for that participant, both sorted by switch id in bounded memory (runs spilled to
    /// <paramref name="tempDirectory"/>). Throws <see cref="ClearingFormatException"/> (line and reason) for a malformed
    /// or mismatched submission, <see cref="BatchFilesException"/> when the batch or participant has no file at the switch.</summary>
    public BreakReport CompareSubmitted(Stream submitted, long maxBytes, string tempDirectory, int runEntries = SortedReconFile.DefaultRunEntries)
    {
        using SortedReconFile theirs = SortedReconFile.Read(submitted, maxBytes, tempDirectory, runEntries);
        string path = SwitchFileOf(theirs.Header.BatchId, theirs.Header.ParticipantKind, theirs.Header.ParticipantId);
        SortedReconFile ours;
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            ours = SortedReconFile.Read(file, long.MaxValue, tempDirectory, runEntries);
        }
        catch (ClearingFormatException e)
        {
            // Not the participant's fault: the switch's own file does not read back as written.
            throw new InvalidDataException($"clearing: the switch's file {Path.GetRelativePath(dataDirectory, path)} is damaged: {e.Message}");
        }
        using (ours)
        {
            return BreakReport.Compare(ours, theirs);
        }
    }
}
