using Switch.Engine.Clearing;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Host.Gateway;

namespace Switch.Host.Clearing;

/// <summary>The answer to a close command: the batch it closed, or why it was refused.</summary>
public readonly record struct CloseBatchResult(RejectCode Reject, RequestField Field, long BatchId);

/// <summary>
/// What operators do with clearing, for the operator API and CLI to expose: close the open batch (an engine event,
/// journaled like any other), read a closed batch's files, and compare a participant's record with the switch's.
/// </summary>
public sealed class ClearingDesk(SwitchEngine engine, AnswerRouter answers, ClearingRecorder recorder, string dataDirectory)
{
    /// <summary>Publishes a close command and waits for the engine's answer. Throws when the input ring is full.</summary>
    public async Task<CloseBatchResult> CloseBatchAsync(string operatorId, CancellationToken cancellation)
    {
        var answer = new UnaryAnswer();
        long correlationId = answers.Register(answer);
        try
        {
            if (!engine.TryClaim(out long sequence)) throw new InvalidOperationException("clearing: the engine is busy, try again");
            ref InputEvent e = ref engine.Slot(sequence);
            e.Kind = EventKind.CloseBatch;
            e.CorrelationId = correlationId;
            e.Reason.Set(operatorId);
            engine.Publish(sequence);
            OutputEvent o = await answer.Task.WaitAsync(cancellation);
            return new CloseBatchResult(o.Reject, o.RejectField, o.BatchId);
        }
        finally
        {
            answers.Unregister(correlationId);
        }
    }

    /// <summary>The highest batch whose files are complete (0: none yet); generation failures are in <see cref="Fault"/>.</summary>
    public long FilesCompleteThrough => recorder.GeneratedThrough;
    public Exception? Fault => recorder.Fault;

    /// <summary>A complete batch's settlement instructions file, or null if the batch is open or its files are not written yet.</summary>
    public string? SettlementPath(long batchId) => ClearingFiles.IsComplete(dataDirectory, batchId)
        ? Path.Combine(ClearingFiles.BatchDirectory(dataDirectory, batchId), ClearingFiles.SettlementFile)
        : null;

    /// <summary>Parses a participant's record of a batch and compares it with the switch's file for that participant.
    /// Throws <see cref="ClearingFormatException"/> (line and reason) for a malformed or mismatched submission.</summary>
    public BreakReport CompareSubmitted(Stream submitted)
    {
        ReconciliationFile theirs = ReconciliationFile.Parse(submitted);
        if (!ClearingFiles.IsComplete(dataDirectory, theirs.BatchId))
        {
            throw new ClearingFormatException(1, $"batch {theirs.BatchId} has no complete files at the switch (open, or not written yet)");
        }
        string file = theirs.ParticipantKind == "BANK"
            ? ClearingFiles.BankFile(int.TryParse(theirs.ParticipantId, out int code) && code is >= 1 and <= 999 ? code : throw new ClearingFormatException(1, $"participant_id: not a bank code: '{theirs.ParticipantId}'"))
            : ClearingFiles.InstitutionFile(theirs.ParticipantId);
        string path = Path.Combine(ClearingFiles.BatchDirectory(dataDirectory, theirs.BatchId), file);
        if (!File.Exists(path)) throw new ClearingFormatException(1, $"{theirs.ParticipantKind} {theirs.ParticipantId} is not a participant of batch {theirs.BatchId}");
        using FileStream ours = File.OpenRead(path);
        return BreakReport.Compare(ReconciliationFile.Parse(ours), theirs);
    }
}
