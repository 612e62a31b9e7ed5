using Switch.Engine.Business;

namespace Switch.Engine.Tests.Support;

public static class TestConfigs
{
    /// <summary>Two institutions, three banks of two endpoints each; small limits so tests can reach them.</summary>
    public static SwitchConfig Small(int transactionCapacity = 1024, long dailyAccountLimitFen = 2_000_000) => new()
    {
        Institutions =
        [
            new InstitutionConfig
            {
                Code = "ALIPAY", ReserveAccount = "R-ALIPAY-001", SingleLimitFen = 5_000_000, NetDebitCapFen = 1_000_000,
                AgreementPaymentFee = new FeeRule { Bps = 10 }, PayoutFee = new FeeRule { Bps = 5, FixedFen = 1 },
                RefundFee = new FeeRule { FixedFen = 0 },
            },
            new InstitutionConfig
            {
                Code = "TENPAY", ReserveAccount = "R-TENPAY-001", SingleLimitFen = 5_000_000, NetDebitCapFen = 500_000,
                AgreementPaymentFee = new FeeRule { Bps = 8, FixedFen = 2 }, PayoutFee = new FeeRule { Bps = 6 },
                RefundFee = new FeeRule { Bps = 1 },
            },
        ],
        Banks =
        [
            Bank(102, "ICBC", dailyAccountLimitFen),
            Bank(103, "ABC", dailyAccountLimitFen),
            Bank(308, "CMB", dailyAccountLimitFen),
        ],
        Rules = new RulesConfig
        {
            TransactionCapacity = transactionCapacity,
            MaxUnresolvedPerBank = 4096, // the parked table stays small in the many harnesses tests build
            BankTimeoutMs = 1_000,
            QueryBackoffInitialMs = 500,
            QueryBackoffMaxMs = 4_000,
            ReverseAfterMs = 10_000,
            MaxTrackedAccounts = 4096,
        },
    };

    private static BankConfig Bank(int code, string name, long dailyLimitFen) => new()
    {
        Code = code,
        Name = name,
        DailyAccountLimitFen = dailyLimitFen,
        Endpoints =
        [
            new EndpointConfig { Name = $"{name}-A", WeightBps = 9_500, InFlightCap = 64 },
            new EndpointConfig { Name = $"{name}-B", WeightBps = 500, InFlightCap = 64 },
        ],
    };
}
