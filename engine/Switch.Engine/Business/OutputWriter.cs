using Switch.Engine.Snapshots;
using Switch.Engine.Events;

namespace Switch.Engine.Business;

/// <summary>
/// The logic's one way out: encodes answers, feeds, bank requests, clearing positions and audit entries (with their
/// human-readable notes) into output slots. Owned by <see cref="SwitchLogic"/>, on its thread; it decides nothing,
/// except the numbering of audit entries, which it keeps.
/// </summary>
public sealed class OutputWriter(Institution[] institutions, Bank[] banks, IOutputSink sink)
{
    private static readonly Text64 NoteProbing = Note("open time passed: probing");
    private static readonly Text32 ActorBreaker = Text32.From("breaker");

    private IOutputSink _sink = sink;

    /// <summary>The event time every output is stamped with; set by the logic as each event is applied.</summary>
    public long NowUs;
    /// <summary>The last audit entry's number (entries are numbered 1, 2, 3... in engine order).</summary>
    public long LastAuditNo { get; private set; }

    public void SetSink(IOutputSink sink) => _sink = sink;
    public IOutputSink Sink => _sink;

    /// <summary>The snapshot mark (see <see cref="OutputKind.SnapshotMark"/>).</summary>
    public void SnapshotMark(long recordNo)
    {
        ref OutputEvent o = ref _sink.Begin();
        o.Kind = OutputKind.SnapshotMark;
        o.CorrelationId = recordNo;
        o.TimestampUs = NowUs;
        _sink.End();
    }

    public void Save(StateWriter w)
    {
        w.Long(NowUs);
        w.Long(LastAuditNo);
    }

    public void Restore(ref StateReader r)
    {
        NowUs = r.Long();
        LastAuditNo = r.Long();
    }

    public static Text64 Note(string value)
    {
        var note = new Text64();
        note.Set(value);
        return note;
    }

    // ---------------------------------------------------------------- answers to institutions

    public void Reject(ref InputEvent e, Refusal refusal)
    {
        BeginReject(ref e, refusal.Code, refusal.Field);
        _sink.End();
    }

    /// <summary>BANK_UNRESOLVED_LIMIT on the bank field; the reason names the bank and the bound, for the caller's message.</summary>
    public void RejectBankUnresolved(ref InputEvent e, Bank bank, int maxUnresolved)
    {
        ref OutputEvent o = ref BeginReject(ref e, RejectCode.BankUnresolvedLimit, RequestField.Bank);
        o.BankCode = bank.Code;
        Span<byte> reasonUtf8 = stackalloc byte[Text32.CapacityBytes];
        System.Text.Unicode.Utf8.TryWrite(reasonUtf8, $"bank {bank.Code:D3} limit {maxUnresolved}", out int written);
        o.Reason.Set(reasonUtf8[..written]);
        _sink.End();
    }

    private ref OutputEvent BeginReject(ref InputEvent e, RejectCode code, RequestField field)
    {
        ref OutputEvent o = ref _sink.Begin();
        o.Kind = OutputKind.Answer;
        o.TimestampUs = NowUs;
        o.CorrelationId = e.CorrelationId;
        o.RequestType = e.RequestType;
        o.QueryAnswer = e.RequestType == RequestType.Query;
        o.Reject = code;
        o.RejectField = field;
        o.AmountFen = e.AmountFen;
        o.Institution = e.Institution;
        o.OrderNo = e.OrderNo;
        o.Echo = e.Echo;
        o.ReceivedUs = NowUs;
        return ref o;
    }

    public void Answer(ref Transaction tx, long correlationId, bool duplicate, bool queryAnswer = false)
    {
        ref OutputEvent o = ref _sink.Begin();
        FillTransaction(ref o, ref tx);
        o.Kind = OutputKind.Answer;
        o.CorrelationId = correlationId;
        o.Duplicate = duplicate;
        o.QueryAnswer = queryAnswer;
        _sink.End();
    }

    public void Feed(ref Transaction tx)
    {
        ref OutputEvent o = ref _sink.Begin();
        FillTransaction(ref o, ref tx);
        o.Kind = OutputKind.Feed;
        _sink.End();
    }

    public void BankRequest(ref Transaction tx, BankOperation operation, int endpointIndex, int attempt, long bankDeadlineUs)
    {
        ref OutputEvent o = ref _sink.Begin();
        FillTransaction(ref o, ref tx);
        o.Kind = OutputKind.BankRequest;
        o.Operation = operation;
        o.EndpointIndex = endpointIndex;
        o.Attempt = attempt;
        o.BankDeadlineUs = bankDeadlineUs;
        _sink.End();
    }

    private void FillTransaction(ref OutputEvent o, ref Transaction tx)
    {
        Institution inst = institutions[tx.InstitutionIndex];
        o.TimestampUs = NowUs;
        o.TransactionId = tx.Id;
        o.RequestType = tx.Type;
        o.Status = tx.Status;
        o.InstitutionIndex = tx.InstitutionIndex;
        o.BankIndex = tx.BankIndex;
        o.BankCode = banks[tx.BankIndex].Code;
        o.EndpointIndex = tx.EndpointIndex;
        o.AmountFen = tx.AmountFen;
        o.FeeFen = tx.FeeFen;
        o.FeedNo = tx.FeedNo;
        o.BatchId = tx.BatchId;
        o.ReceivedUs = tx.ReceivedUs;
        o.FinalUs = tx.FinalUs;
        o.Institution.Set(inst.CodeUtf8);
        o.OrderNo = tx.OrderNo;
        o.Account = tx.Account;
        o.Reason = tx.Reason;
        o.Echo = tx.Echo;
    }

    // ---------------------------------------------------------------- answers to operators

    public void RejectCommand(ref InputEvent e, Refusal refusal)
    {
        ref OutputEvent o = ref BeginCommandAnswer(e.CorrelationId);
        o.Reject = refusal.Code;
        o.RejectField = refusal.Field;
        _sink.End();
    }

    public void AcceptCommand(ref InputEvent e, Bank bank, long auditNo)
    {
        ref OutputEvent o = ref BeginCommandAnswer(e.CorrelationId);
        o.BankIndex = bank.Index;
        o.BankCode = bank.Code;
        o.AuditNo = auditNo;
        _sink.End();
    }

    public void BatchCloseAccepted(long correlationId, long batchId, long auditNo)
    {
        ref OutputEvent o = ref BeginCommandAnswer(correlationId);
        o.BatchId = batchId;
        o.AuditNo = auditNo;
        _sink.End();
    }

    private ref OutputEvent BeginCommandAnswer(long correlationId)
    {
        ref OutputEvent o = ref _sink.Begin();
        o.Kind = OutputKind.CommandAnswer;
        o.TimestampUs = NowUs;
        o.CorrelationId = correlationId;
        return ref o;
    }

    // ---------------------------------------------------------------- clearing

    public ref OutputEvent BeginPosition(long batchId, ParticipantKind participant, in BatchTotals totals)
    {
        ref OutputEvent o = ref _sink.Begin();
        o.Kind = OutputKind.BatchPosition;
        o.TimestampUs = NowUs;
        o.BatchId = batchId;
        o.Participant = participant;
        o.DebitsFen = totals.DebitsFen;
        o.CreditsFen = totals.CreditsFen;
        o.FeeFen = totals.FeesFen;
        o.NetFen = totals.NetFen;
        o.Count = totals.Count;
        return ref o;
    }

    public void EndPosition() => _sink.End();

    public void BatchClosed(long correlationId, long batchId, long openedUs, long finalisedCount, in Text32 closedBy)
    {
        ref OutputEvent closed = ref _sink.Begin();
        closed.Kind = OutputKind.BatchClosed;
        closed.TimestampUs = NowUs;
        closed.CorrelationId = correlationId;
        closed.BatchId = batchId;
        closed.BatchOpenedUs = openedUs;
        closed.BatchClosedUs = NowUs;
        closed.Count = finalisedCount;
        closed.ParticipantCount = banks.Length + institutions.Length + 1;
        closed.Reason = closedBy;
        _sink.End();
    }

    // ---------------------------------------------------------------- audit

    /// <summary>
    /// One audit entry, numbered in engine order. About a bank: its weights after the change (and the ramp's
    /// progress for ramp entries); about an endpoint too: its admin state, reachability and breaker. Complete
    /// enough that a view rebuilt from the entries alone matches the logic's.
    /// </summary>
    public long Audit(AuditKind kind, Bank? bank, int endpointIndex, in Text32 operatorId, in Text64 note, long batchId = 0)
    {
        long auditNo = ++LastAuditNo;
        ref OutputEvent o = ref _sink.Begin();
        o.Kind = OutputKind.Audit;
        o.TimestampUs = NowUs;
        o.AuditNo = auditNo;
        o.AuditKind = kind;
        o.BankIndex = -1;
        o.EndpointIndex = endpointIndex;
        o.BatchId = batchId;
        o.Operator = operatorId;
        o.Note = note;
        if (bank is not null)
        {
            o.BankIndex = bank.Index;
            o.BankCode = bank.Code;
            o.EndpointCount = bank.Endpoints.Length;
            for (int i = 0; i < bank.Endpoints.Length; i++)
            {
                o.WeightsBps[i] = bank.Endpoints[i].WeightBps;
            }
            if (kind is AuditKind.RampStarted or AuditKind.RampStep or AuditKind.RampDone or AuditKind.RampCancelled)
            {
                WeightRamp ramp = bank.Ramp;
                o.RampTargetBps = ramp.TargetBps;
                o.RampSteps = ramp.Steps;
                o.RampStepsDone = ramp.StepsDone;
                o.RampNextStepUs = ramp.Active ? ramp.NextStepUs : 0;
            }
            if (endpointIndex >= 0)
            {
                Endpoint endpoint = bank.Endpoints[endpointIndex];
                o.EndpointState = endpoint.State;
                o.Reachable = endpoint.Reachable;
                o.Breaker = endpoint.Breaker.State;
            }
        }
        _sink.End();
        return auditNo;
    }

    /// <summary>A breaker's transition, audited with a note that says why in words.</summary>
    public void BreakerAudit(Bank bank, int endpointIndex, int probeSuccesses)
    {
        EndpointBreaker breaker = bank.Endpoints[endpointIndex].Breaker;
        Span<byte> noteUtf8 = stackalloc byte[Text64.CapacityBytes];
        int written;
        AuditKind kind;
        switch (breaker.State)
        {
            case BreakerState.Open:
                kind = AuditKind.BreakerOpen;
                System.Text.Unicode.Utf8.TryWrite(noteUtf8, $"{breaker.TripFailures} failed or timed out of {breaker.TripCalls} calls", out written);
                break;
            case BreakerState.HalfOpen:
                kind = AuditKind.BreakerHalfOpen;
                NoteProbing.Span.CopyTo(noteUtf8);
                written = NoteProbing.Length;
                break;
            default:
                kind = AuditKind.BreakerClosed;
                System.Text.Unicode.Utf8.TryWrite(noteUtf8, $"{probeSuccesses} probes answered in a row", out written);
                break;
        }
        var note = new Text64();
        note.Set(noteUtf8[..written]);
        Audit(kind, bank, endpointIndex, in ActorBreaker, in note);
    }
}
