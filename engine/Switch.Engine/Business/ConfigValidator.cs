namespace Switch.Engine.Business;

/// <summary>Checks a configuration before the engine accepts it; each error names the field.</summary>
public static class ConfigValidator
{
    /// <summary>2^36 transactions: decades at the design peak's daily volume; a larger figure is a typing error.</summary>
    public const long MaxOrderMemoryTransactions = 1L << 36;
    /// <summary>Per bank: 2^20, far above any bank's in-flight caps plus what can stay unknown in an outage.</summary>
    public const int MaxUnresolvedPerBank = 1 << 20;
    /// <summary>Banks × maxUnresolvedPerBank: the parked table is pre-allocated, so at most 2^21 slots (688 MiB).</summary>
    public const long MaxParkedTransactions = 1L << 21;

    public static void Validate(SwitchConfig config)
    {
        Require(config.Institutions is { Count: > 0 }, "institutions", "at least one institution is required");
        Require(config.Institutions!.Count <= SwitchConfig.MaxInstitutions, "institutions", $"at most {SwitchConfig.MaxInstitutions}");
        Require(config.Banks is { Count: > 0 }, "banks", "at least one bank is required");
        Require(config.Banks!.Count <= SwitchConfig.MaxBanks, "banks", $"at most {SwitchConfig.MaxBanks}");

        var codes = new HashSet<string>(StringComparer.Ordinal);
        var codeHashes = new HashSet<ulong>();
        for (int i = 0; i < config.Institutions.Count; i++)
        {
            InstitutionConfig inst = config.Institutions[i];
            string at = $"institutions[{i}]";
            Require(inst is not null, at, "null entry");
            Require(FieldRules.IsCode(inst!.Code, FieldRules.InstitutionMaxBytes), at + ".code",
                $"1 to {FieldRules.InstitutionMaxBytes} printable ASCII characters, got '{inst.Code}'");
            Require(codes.Add(inst.Code), at + ".code", $"duplicate institution code '{inst.Code}'");
            Require(codeHashes.Add(Hashing.StableHash.OfBytes(System.Text.Encoding.ASCII.GetBytes(inst.Code))), at + ".code",
                "code hash collides with another institution's; choose another code");
            Require(FieldRules.IsCode(inst.ReserveAccount, FieldRules.AccountMaxBytes), at + ".reserveAccount",
                $"1 to {FieldRules.AccountMaxBytes} printable ASCII characters");
            Require(inst.SingleLimitFen is > 0 and <= InstitutionConfig.MaxSingleLimitFen, at + ".singleLimitFen",
                $"1 to {InstitutionConfig.MaxSingleLimitFen} (so fee arithmetic stays exact in 64 bits)");
            Require(inst.NetDebitCapFen >= 0, at + ".netDebitCapFen", "must be >= 0");
            ValidateFee(inst.AgreementPaymentFee, at + ".agreementPaymentFee");
            ValidateFee(inst.PayoutFee, at + ".payoutFee");
            ValidateFee(inst.RefundFee, at + ".refundFee");
        }

        var bankCodes = new HashSet<int>();
        for (int b = 0; b < config.Banks.Count; b++)
        {
            BankConfig bank = config.Banks[b];
            string at = $"banks[{b}]";
            Require(bank is not null, at, "null entry");
            Require(bank!.Code is >= 1 and <= 999, at + ".code", $"a 3-digit bank code, got {bank.Code}");
            Require(bankCodes.Add(bank.Code), at + ".code", $"duplicate bank code {bank.Code}");
            Require(bank.DailyAccountLimitFen >= 0, at + ".dailyAccountLimitFen", "must be >= 0");
            Require(bank.Endpoints is { Count: > 0 }, at + ".endpoints", "at least one endpoint");
            Require(bank.Endpoints!.Count <= Events.InputEvent.MaxEndpointsPerBank, at + ".endpoints",
                $"at most {Events.InputEvent.MaxEndpointsPerBank}");
            long sumBps = 0;
            var names = new HashSet<string>(StringComparer.Ordinal);
            for (int e = 0; e < bank.Endpoints.Count; e++)
            {
                EndpointConfig endpoint = bank.Endpoints[e];
                string eat = $"{at}.endpoints[{e}]";
                Require(endpoint is not null, eat, "null entry");
                Require(!string.IsNullOrWhiteSpace(endpoint!.Name), eat + ".name", "required");
                Require(names.Add(endpoint.Name), eat + ".name", $"duplicate endpoint name '{endpoint.Name}'");
                Require(endpoint.WeightBps is >= 0 and <= Routing.TotalWeightBps, eat + ".weightBps", "0 to 10000");
                Require(endpoint.InFlightCap > 0, eat + ".inFlightCap", "must be > 0");
                sumBps += endpoint.WeightBps;
            }
            Require(sumBps == Routing.TotalWeightBps, at + ".endpoints", $"weights must sum to 10000 bps, got {sumBps}");
        }

        RulesConfig rules = config.Rules;
        Require(rules is not null, "rules", "required");
        Require(rules!.TransactionCapacity is >= 16 and <= 1 << 26 && (rules.TransactionCapacity & (rules.TransactionCapacity - 1)) == 0,
            "rules.transactionCapacity", $"a power of two from 16 to 67108864, got {rules.TransactionCapacity}");
        Require(rules.OrderMemoryTransactions >= rules.TransactionCapacity && rules.OrderMemoryTransactions <= MaxOrderMemoryTransactions,
            "rules.orderMemoryTransactions", $"from transactionCapacity to {MaxOrderMemoryTransactions}, got {rules.OrderMemoryTransactions}");
        Require(rules.MaxUnresolvedPerBank is >= 1 and <= MaxUnresolvedPerBank, "rules.maxUnresolvedPerBank",
            $"1 to {MaxUnresolvedPerBank}, got {rules.MaxUnresolvedPerBank}");
        Require((long)rules.MaxUnresolvedPerBank * config.Banks.Count <= MaxParkedTransactions, "rules.maxUnresolvedPerBank",
            $"times the {config.Banks.Count} banks at most {MaxParkedTransactions} (the parked table, 344 bytes a slot), got {rules.MaxUnresolvedPerBank}");
        Require(rules.BankTimeoutMs is >= 1 and <= 600_000, "rules.bankTimeoutMs", "1 to 600000");
        Require(rules.QueryBackoffInitialMs is >= 1 and <= 600_000, "rules.queryBackoffInitialMs", "1 to 600000");
        Require(rules.QueryBackoffMaxMs >= rules.QueryBackoffInitialMs && rules.QueryBackoffMaxMs <= 3_600_000,
            "rules.queryBackoffMaxMs", "from queryBackoffInitialMs to 3600000");
        Require(rules.ReverseAfterMs is >= 1 and <= 86_400_000, "rules.reverseAfterMs", "1 to 86400000");
        Require(rules.MaxTrackedAccounts is >= 16 and <= 1 << 26, "rules.maxTrackedAccounts", "16 to 67108864");
        Require(rules.DayUtcOffsetHours is >= -12 and <= 14, "rules.dayUtcOffsetHours", "-12 to 14");
        Require(rules.BatchCloseTimes is not null, "rules.batchCloseTimes", "a list (may be empty)");
        Require(rules.BatchCloseTimes!.Count <= BatchSchedule.MaxClosesPerDay, "rules.batchCloseTimes", $"at most {BatchSchedule.MaxClosesPerDay}");
        _ = new BatchSchedule(rules.BatchCloseTimes, rules.DayUtcOffsetHours); // checks each time and duplicates
        Require(rules.BreakerWindowMs is >= 1_000 and <= 900_000 && rules.BreakerWindowMs % 1_000 == 0, "rules.breakerWindowMs",
            $"whole seconds from 1000 to 900000 (one-second buckets), got {rules.BreakerWindowMs}");
        Require(rules.BreakerMinCalls is >= 1 and <= 1_000_000, "rules.breakerMinCalls", $"1 to 1000000, got {rules.BreakerMinCalls}");
        Require(rules.BreakerErrorRatePct is >= 1 and <= 100, "rules.breakerErrorRatePct", $"1 to 100, got {rules.BreakerErrorRatePct}");
        Require(rules.BreakerOpenMs is >= 1 and <= 3_600_000, "rules.breakerOpenMs", $"1 to 3600000, got {rules.BreakerOpenMs}");
        Require(rules.BreakerProbeEvery is >= 1 and <= 10_000, "rules.breakerProbeEvery", $"1 to 10000, got {rules.BreakerProbeEvery}");
        Require(rules.BreakerProbeSuccesses is >= 1 and <= 10_000, "rules.breakerProbeSuccesses", $"1 to 10000, got {rules.BreakerProbeSuccesses}");
    }

    private static void ValidateFee(FeeRule? fee, string at)
    {
        Require(fee is not null, at, "required");
        Require(fee!.Bps is >= 0 and <= 10_000, at + ".bps", "0 to 10000");
        Require(fee.FixedFen is >= 0 and <= InstitutionConfig.MaxSingleLimitFen, at + ".fixedFen", $"0 to {InstitutionConfig.MaxSingleLimitFen}");
    }

    private static void Require(bool condition, string field, string why)
    {
        if (!condition)
        {
            throw new ConfigException($"configuration: {field}: {why}");
        }
    }
}
