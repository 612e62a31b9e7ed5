namespace Switch.Engine.Business;

/// <summary>One participant's gross movements in the open clearing batch. Fees are part of the debits (institution)
/// or credits (switch); <see cref="FeesFen"/> says how much of them.</summary>
public struct BatchTotals
{
    public long DebitsFen;
    public long CreditsFen;
    public long FeesFen;
    /// <summary>Successful transactions posted.</summary>
    public long Count;

    public readonly long NetFen => CreditsFen - DebitsFen;

    public void Post(long debitFen, long creditFen, long feeFen)
    {
        DebitsFen = checked(DebitsFen + debitFen);
        CreditsFen = checked(CreditsFen + creditFen);
        FeesFen = checked(FeesFen + feeFen);
        Count++;
    }
}
