using Switch.Engine.Snapshots;
using Switch.Engine.Events;

namespace Switch.Engine.Business;

/// <summary>
/// The open clearing batch: every participant's position and gross totals, the postings that move them, and the
/// netting at a close. Positions sum to zero after every posting. Owned by <see cref="SwitchLogic"/>, on its thread;
/// the participants' positions live on <see cref="Institution"/> and <see cref="Bank"/>, changed only here.
/// </summary>
public sealed class ClearingBook(Institution[] institutions, Bank[] banks)
{
    /// <summary>The switch fee account's gross movements in the open batch (its net is <see cref="SwitchFeeFen"/>).</summary>
    private BatchTotals _switchFeeOpen;

    public long SwitchFeeFen { get; private set; }
    public BatchTotals SwitchFeeOpen => _switchFeeOpen;
    /// <summary>The batch outcomes finalise into now; batches are numbered 1, 2, 3...</summary>
    public long OpenBatchId { get; private set; } = 1;
    /// <summary>When the open batch opened: the previous close, or the first event for batch 1 (a mark of time, not
    /// state: not in the state hash).</summary>
    public long OpenBatchOpenedUs { get; private set; }
    /// <summary>Transactions finalised (succeeded or failed) in the open batch.</summary>
    public long OpenBatchFinalised { get; private set; }

    public void Save(StateWriter w)
    {
        w.Section("book");
        w.Long(SwitchFeeFen);
        w.Value(in _switchFeeOpen);
        w.Long(OpenBatchId);
        w.Long(OpenBatchOpenedUs);
        w.Long(OpenBatchFinalised);
    }

    public void Restore(ref StateReader r)
    {
        r.Section("book");
        SwitchFeeFen = r.Long();
        _switchFeeOpen = r.Value<BatchTotals>();
        OpenBatchId = r.Long();
        OpenBatchOpenedUs = r.Long();
        OpenBatchFinalised = r.Long();
        if (OpenBatchId < 1 || OpenBatchFinalised < 0) throw new InvalidDataException($"snapshot: open batch {OpenBatchId} with {OpenBatchFinalised} final");
    }

    /// <summary>Batch 1 opens with the first event.</summary>
    public void Seen(long nowUs)
    {
        if (OpenBatchOpenedUs == 0)
        {
            OpenBatchOpenedUs = nowUs;
        }
    }

    /// <summary>A transaction final in the open batch: its batch id.</summary>
    public long CountFinalised()
    {
        OpenBatchFinalised++;
        return OpenBatchId;
    }

    /// <summary>The sum of every position in the open batch: zero whenever the book is consistent.</summary>
    public long PositionSumFen()
    {
        long sum = SwitchFeeFen;
        foreach (Institution inst in institutions) sum = checked(sum + inst.PositionFen);
        foreach (Bank bank in banks) sum = checked(sum + bank.PositionFen);
        return sum;
    }

    /// <summary>Moves a successful transaction's money in the open batch. Each posting sums to zero.</summary>
    public void Post(RequestType type, Institution inst, Bank bank, long amountFen, long feeFen)
    {
        long bankDelta, instDelta;
        if (type == RequestType.AgreementPayment)
        {
            // The payer's bank debited the user: it owes the amount; the reserve gains it less the fee.
            bankDelta = -amountFen;
            instDelta = amountFen - feeFen;
            bank.Open.Post(debitFen: amountFen, creditFen: 0, feeFen: 0);
            inst.Open.Post(debitFen: feeFen, creditFen: amountFen, feeFen: feeFen);
        }
        else
        {
            // The payee's bank credited the user: it is owed the amount; the reserve pays it plus the fee.
            bankDelta = amountFen;
            instDelta = -(amountFen + feeFen);
            bank.Open.Post(debitFen: 0, creditFen: amountFen, feeFen: 0);
            inst.Open.Post(debitFen: amountFen + feeFen, creditFen: 0, feeFen: feeFen);
        }
        _switchFeeOpen.Post(debitFen: 0, creditFen: feeFen, feeFen: feeFen);
        if (bankDelta + instDelta + feeFen != 0) throw new InvalidOperationException("logic: a posting does not sum to zero");
        bank.PositionFen = checked(bank.PositionFen + bankDelta);
        inst.PositionFen = checked(inst.PositionFen + instDelta);
        SwitchFeeFen = checked(SwitchFeeFen + feeFen);
    }

    /// <summary>
    /// Nets the open batch, hands its positions out (one output per participant, then the marker) and opens the
    /// next; returns the closed batch's id. Checked before anything is emitted: if the positions do not sum to zero
    /// the engine stops, and no output of this close exists. Cost: one output per participant (at most 5,001).
    /// </summary>
    public long Close(OutputWriter output, long nowUs, long correlationId, in Text32 closedBy)
    {
        long sumFen = _switchFeeOpen.NetFen;
        if (_switchFeeOpen.NetFen != SwitchFeeFen) throw new InvalidOperationException("clearing: switch fee totals differ from its position");
        foreach (Institution inst in institutions)
        {
            if (inst.Open.NetFen != inst.PositionFen) throw new InvalidOperationException($"clearing: {inst.Config.Code} totals differ from its position");
            sumFen = checked(sumFen + inst.Open.NetFen);
        }
        foreach (Bank bank in banks)
        {
            if (bank.Open.NetFen != bank.PositionFen) throw new InvalidOperationException($"clearing: bank {bank.Code} totals differ from its position");
            sumFen = checked(sumFen + bank.Open.NetFen);
        }
        if (sumFen != 0) throw new InvalidOperationException($"clearing: batch {OpenBatchId} positions sum to {sumFen} fen, not zero");

        long batchId = OpenBatchId;
        foreach (Bank bank in banks)
        {
            ref OutputEvent o = ref output.BeginPosition(batchId, ParticipantKind.Bank, in bank.Open);
            o.BankIndex = bank.Index;
            o.BankCode = bank.Code;
            output.EndPosition();
            bank.Open = default;
            bank.PositionFen = 0;
        }
        foreach (Institution inst in institutions)
        {
            ref OutputEvent o = ref output.BeginPosition(batchId, ParticipantKind.Institution, in inst.Open);
            o.InstitutionIndex = inst.Index;
            o.Institution.Set(inst.CodeUtf8);
            output.EndPosition();
            inst.Open = default;
            // The net debit cap is about the open batch: the new one starts from zero. Reservations of payouts
            // still at the bank stay: they post into the new batch when final.
            inst.PositionFen = 0;
        }
        output.BeginPosition(batchId, ParticipantKind.SwitchFee, in _switchFeeOpen);
        output.EndPosition();
        _switchFeeOpen = default;
        SwitchFeeFen = 0;
        output.BatchClosed(correlationId, batchId, OpenBatchOpenedUs, OpenBatchFinalised, in closedBy);

        OpenBatchId++;
        OpenBatchOpenedUs = nowUs;
        OpenBatchFinalised = 0;
        return batchId;
    }
}
