using Switch.Engine.Events;

namespace Switch.Engine.Business;

/// <summary>
/// The checks of a request's or a command's own fields: pure (they read the event and the configuration, change
/// nothing, emit nothing) and each answers with the first <see cref="Refusal"/> or <see cref="Refusal.None"/>.
/// The checks against state (order memory, limits, routing) are the handlers'.
/// </summary>
public static class RequestChecks
{
    /// <summary>A code field: present, within its bytes, of code characters.</summary>
    public static Refusal Code(in Text32 text, int maxBytes, RequestField field)
    {
        RejectCode code = text.IsEmpty ? RejectCode.MissingField
            : text.IsOverlong || text.Length > maxBytes ? RejectCode.FieldTooLong
            : !FieldRules.IsCode(text.Span, maxBytes) ? RejectCode.InvalidField
            : RejectCode.None;
        return new Refusal(code, code == RejectCode.None ? RequestField.None : field);
    }

    /// <summary>A payment's, payout's or refund's fields; a payment or payout also names a configured bank.</summary>
    public static Refusal TransferFields(ref InputEvent e, Institution inst, Bank?[] banksByCode, out Bank? bank)
    {
        bank = null;
        if (e.Currency.IsEmpty) return new(RejectCode.MissingField, RequestField.Currency);
        if (e.Currency.IsOverlong) return new(RejectCode.FieldTooLong, RequestField.Currency);
        if (!e.Currency.Equals(FieldRules.Cny)) return new(RejectCode.UnsupportedCurrency, RequestField.Currency);
        if (e.AmountFen <= 0) return new(RejectCode.InvalidAmount, RequestField.Amount);
        if (e.AmountFen > inst.Config.SingleLimitFen) return new(RejectCode.AmountOverLimit, RequestField.Amount);
        if (e.Echo.IsOverlong) return new(RejectCode.FieldTooLong, RequestField.Echo);
        if (!FieldRules.IsEchoText(e.Echo.Span)) return new(RejectCode.InvalidField, RequestField.Echo);
        if (e.RequestType == RequestType.Refund)
        {
            // The refund goes back to the original payer: bank and account come from the original payment.
            return Code(in e.OriginalOrderNo, FieldRules.OrderNoMaxBytes, RequestField.OriginalOrderNo);
        }
        if (e.BankRef.IsEmpty) return new(RejectCode.MissingField, RequestField.Bank);
        if (e.BankRef.IsOverlong) return new(RejectCode.FieldTooLong, RequestField.Bank);
        int bankCode = FieldRules.NormaliseBankCode(e.BankRef.Span);
        if (bankCode < 0) return new(RejectCode.InvalidField, RequestField.Bank);
        bank = banksByCode[bankCode];
        if (bank is null) return new(RejectCode.UnknownBank, RequestField.Bank);
        return Code(in e.Account, FieldRules.AccountMaxBytes, RequestField.Account);
    }

    /// <summary>Whether <paramref name="original"/> (found by the refund's original order number) takes a refund of
    /// <paramref name="amountFen"/> more.</summary>
    public static Refusal Refundable(ref Transaction original, long amountFen)
    {
        if (original.Type != RequestType.AgreementPayment || original.Status != TransactionStatus.Succeeded)
        {
            return new(RejectCode.OriginalNotRefundable, RequestField.OriginalOrderNo);
        }
        if (original.RefundedFen >= original.AmountFen)
        {
            return new(RejectCode.OriginalFullyRefunded, RequestField.OriginalOrderNo);
        }
        if (original.RefundedFen + original.RefundReservedFen + amountFen > original.AmountFen)
        {
            return new(RejectCode.RefundExceedsOriginal, RequestField.Amount);
        }
        return Refusal.None;
    }

    /// <summary>Who and why, on every operator command: the operator a printable code, the note printable UTF-8.</summary>
    public static Refusal Actor(ref InputEvent e, bool noteRequired)
    {
        RejectCode code = e.Operator.IsEmpty ? RejectCode.MissingField
            : e.Operator.IsOverlong ? RejectCode.FieldTooLong
            : !FieldRules.IsCode(e.Operator.Span, Text32.CapacityBytes) ? RejectCode.InvalidField
            : RejectCode.None;
        if (code != RejectCode.None)
        {
            return new(code, RequestField.Operator);
        }
        code = e.Note.IsEmpty ? (noteRequired ? RejectCode.MissingField : RejectCode.None)
            : e.Note.IsOverlong ? RejectCode.FieldTooLong
            : !FieldRules.IsEchoText(e.Note.Span) ? RejectCode.InvalidField
            : RejectCode.None;
        return new Refusal(code, code == RejectCode.None ? RequestField.None : RequestField.Note);
    }

    /// <summary>The bank a command names, or UNKNOWN_BANK.</summary>
    public static Refusal CommandBank(ref InputEvent e, Bank?[] banksByCode, out Bank? bank)
    {
        bank = null;
        int code = e.BankRef.IsOverlong ? -1 : FieldRules.NormaliseBankCode(e.BankRef.Span);
        if (code < 0 || (bank = banksByCode[code]) is null)
        {
            return new(RejectCode.UnknownBank, RequestField.Bank);
        }
        return Refusal.None;
    }

    /// <summary>New weights for every endpoint of the bank, summing to the whole, and a valid ramp.</summary>
    public static Refusal Weights(ref InputEvent e, Bank bank)
    {
        if (e.EndpointCount != bank.Endpoints.Length)
        {
            return new(RejectCode.InvalidWeights, RequestField.Weights);
        }
        long sumBps = 0;
        for (int i = 0; i < e.EndpointCount; i++)
        {
            int w = e.WeightsBps[i];
            if (w is < 0 or > Routing.TotalWeightBps)
            {
                return new(RejectCode.InvalidWeights, RequestField.Weights);
            }
            sumBps += w;
        }
        if (sumBps != Routing.TotalWeightBps)
        {
            return new(RejectCode.InvalidWeights, RequestField.Weights);
        }
        if (!WeightRamp.IsValid(e.RampSteps, e.RampDurationMs))
        {
            return new(RejectCode.InvalidField, RequestField.Ramp);
        }
        return Refusal.None;
    }

    /// <summary>An endpoint of the bank and an admin state it can be set to.</summary>
    public static Refusal EndpointState(ref InputEvent e, Bank bank)
    {
        if (e.EndpointIndex < 0 || e.EndpointIndex >= bank.Endpoints.Length)
        {
            return new(RejectCode.UnknownEndpoint, RequestField.Endpoint);
        }
        if (e.EndpointState is not (Events.EndpointState.Up or Events.EndpointState.Draining or Events.EndpointState.Down))
        {
            return new(RejectCode.InvalidField, RequestField.EndpointState);
        }
        return Refusal.None;
    }
}

/// <summary>Why a request or command is refused: the reject code and the field it names. Checks return one; the
/// handler emits it, so every check is pure.</summary>
public readonly record struct Refusal(RejectCode Code, RequestField Field)
{
    public static readonly Refusal None = new(RejectCode.None, RequestField.None);
    public bool Refused => Code != RejectCode.None;
}
