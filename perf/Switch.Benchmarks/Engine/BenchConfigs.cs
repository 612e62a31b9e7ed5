using Switch.Engine.Business;
using Switch.Engine.Events;

namespace Switch.Benchmarks.Engine;

internal static class BenchConfigs
{
    /// <summary>Eight institutions, twenty banks of two endpoints, a large table: the steady state of a busy day.</summary>
    public static SwitchConfig Busy(int transactionCapacity) => new()
    {
        Institutions = Enumerable.Range(0, 8).Select(i => new InstitutionConfig
        {
            Code = $"INST{i:D2}",
            ReserveAccount = $"R{i:D6}",
            SingleLimitFen = 100_000_000,
            NetDebitCapFen = long.MaxValue / 4,
            AgreementPaymentFee = new FeeRule { Bps = 6 },
            PayoutFee = new FeeRule { Bps = 3, FixedFen = 1 },
        }).ToList(),
        Banks = Enumerable.Range(0, 20).Select(b => new BankConfig
        {
            Code = 100 + b,
            DailyAccountLimitFen = 0,
            Endpoints =
            [
                new EndpointConfig { Name = "A", WeightBps = 9_500, InFlightCap = 1 << 20 },
                new EndpointConfig { Name = "B", WeightBps = 500, InFlightCap = 1 << 20 },
            ],
        }).ToList(),
        Rules = new RulesConfig { TransactionCapacity = transactionCapacity, MaxTrackedAccounts = 1 << 16 },
    };

    /// <summary>Writes the n-th order number into a request without allocating.</summary>
    public static void FillPayment(ref InputEvent e, long n, long correlationId)
    {
        e.Kind = EventKind.InstitutionRequest;
        e.RequestType = RequestType.AgreementPayment;
        e.CorrelationId = correlationId;
        e.AmountFen = 100 + n % 10_000;
        Span<byte> digits = stackalloc byte[24];
        digits[0] = (byte)'N';
        n.TryFormat(digits[1..], out int written);
        e.OrderNo.Set(digits[..(written + 1)]);
        e.Institution.Set(Institutions[(int)(n & 7)]);
        e.BankRef.Set(Banks[(int)(n % 20)]);
        e.Account.Set(Accounts[(int)(n % Accounts.Length)]);
        e.Currency.Set("CNY"u8);
    }

    private static readonly byte[][] Institutions = Enumerable.Range(0, 8).Select(i => System.Text.Encoding.ASCII.GetBytes($"INST{i:D2}")).ToArray();
    private static readonly byte[][] Banks = Enumerable.Range(0, 20).Select(b => System.Text.Encoding.ASCII.GetBytes($"{100 + b}")).ToArray();
    private static readonly byte[][] Accounts = Enumerable.Range(0, 4096).Select(a => System.Text.Encoding.ASCII.GetBytes($"6222{a:D12}")).ToArray();
}
