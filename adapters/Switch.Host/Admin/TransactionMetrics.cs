using Prometheus;
using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Host.Gateway;

namespace Switch.Host.Admin;

/// <summary>
/// The transaction histograms and counters of /metrics, fed by <see cref="LiveStats"/> on the engine's output thread.
/// Every labelled child is resolved once here, at start (institutions × request types, banks × endpoints, institutions
/// × banks × outcomes, reject codes), so an observation is an array index and the library's lock-free add: no label
/// look-up and no allocation per transaction.
/// </summary>
public sealed class TransactionMetrics
{
    /// <summary>Index of <see cref="Outcomes"/>.</summary>
    public const int Succeeded = 0, Failed = 1, Rejected = 2, Unknown = 3;
    public static readonly string[] Outcomes = ["succeeded", "failed", "rejected", "unknown"];
    /// <summary>The bank label of a request refused before any bank was found for it.</summary>
    public const string NoBank = "none";

    // Seconds. End to end and bank: 0.5 ms to 60 s (a bank times out at seconds; a late final can take longer).
    private static readonly double[] LatencyBuckets = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60];
    // Seconds: an unknown outcome is resolved by queries over seconds to hours.
    private static readonly double[] ResolveBuckets = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 14400];

    private readonly Histogram.Child[][] _endToEnd;        // [institution][request type]
    private readonly Histogram.Child[][] _bankLatency;     // [bank][endpoint]
    private readonly Histogram.Child[] _unknownToFinal;    // [bank]
    private readonly Counter.Child[][][] _transactions;    // [institution][bank + 1, 0 = none][outcome]
    private readonly Counter.Child[] _rejects;             // [reject code]

    public TransactionMetrics(IMetricFactory factory, SwitchConfig config)
    {
        string[] institutions = config.Institutions.Select(i => i.Code).ToArray();
        string[] banks = config.Banks.Select(b => b.Code.ToString("D3")).ToArray();
        RequestType[] types = Enum.GetValues<RequestType>();

        Histogram endToEnd = factory.CreateHistogram("switch_transaction_duration_seconds",
            "From the request's arrival to its final outcome, by institution and request type.",
            ["institution", "type"], new HistogramConfiguration { Buckets = LatencyBuckets });
        _endToEnd = institutions.Select(i => types.Select(t => endToEnd.WithLabels(i, TypeName(t))).ToArray()).ToArray();

        Histogram bank = factory.CreateHistogram("switch_bank_duration_seconds",
            "From the first request sent to the endpoint to the bank's final answer applied (the bank's round trip as the switch sees it).",
            ["bank", "endpoint"], new HistogramConfiguration { Buckets = LatencyBuckets });
        _bankLatency = config.Banks.Select((b, i) => b.Endpoints.Select(e => bank.WithLabels(banks[i], e.Name)).ToArray()).ToArray();

        Histogram resolve = factory.CreateHistogram("switch_unknown_to_final_seconds",
            "From a transaction's UNKNOWN answer at its deadline to its final outcome, by bank.",
            ["bank"], new HistogramConfiguration { Buckets = ResolveBuckets });
        _unknownToFinal = banks.Select(b => resolve.WithLabels(b)).ToArray();

        Counter transactions = factory.CreateCounter("switch_transactions_total",
            "Transactions by institution, bank and outcome: final (succeeded, failed), rejected, or answered UNKNOWN at the deadline (each of those counts once more at its final outcome).",
            ["institution", "bank", "outcome"]);
        _transactions = institutions.Select(i => new[] { NoBank }.Concat(banks)
            .Select(b => Outcomes.Select(o => transactions.WithLabels(i, b, o)).ToArray()).ToArray()).ToArray();

        Counter rejects = factory.CreateCounter("switch_rejects_total", "Requests refused, by reject code.", ["code"]);
        RejectCode[] codes = Enum.GetValues<RejectCode>();
        _rejects = new Counter.Child[(int)codes.Max() + 1];
        foreach (RejectCode code in codes)
        {
            if (code != RejectCode.None) _rejects[(int)code] = rejects.WithLabels(ResultMapping.RejectName(code));
        }
    }

    public static string TypeName(RequestType type) => type switch
    {
        RequestType.AgreementPayment => "agreement_payment",
        RequestType.Payout => "payout",
        RequestType.Refund => "refund",
        RequestType.Query => "query",
        _ => "none",
    };

    /// <summary>A final outcome (a feed entry). <paramref name="sentUs"/>: when its first bank request went out, or -1
    /// when unknown; <paramref name="unknownUs"/>: when it was answered UNKNOWN, or -1 when it never was.</summary>
    public void Final(in OutputEvent o, long sentUs, long unknownUs)
    {
        if (!IsInstitution(o.InstitutionIndex) || !IsBank(o.BankIndex)) return;
        _endToEnd[o.InstitutionIndex][(int)o.RequestType].Observe(Seconds(o.FinalUs - o.ReceivedUs));
        _transactions[o.InstitutionIndex][o.BankIndex + 1][o.Status == TransactionStatus.Succeeded ? Succeeded : Failed].Inc();
        if (sentUs >= 0 && (uint)o.EndpointIndex < (uint)_bankLatency[o.BankIndex].Length)
        {
            _bankLatency[o.BankIndex][o.EndpointIndex].Observe(Seconds(o.FinalUs - sentUs));
        }
        if (unknownUs >= 0) _unknownToFinal[o.BankIndex].Observe(Seconds(o.FinalUs - unknownUs));
    }

    /// <summary>The first UNKNOWN answer of a transaction (its deadline passed without a final answer).</summary>
    public void WentUnknown(in OutputEvent o)
    {
        if (IsInstitution(o.InstitutionIndex) && IsBank(o.BankIndex)) _transactions[o.InstitutionIndex][o.BankIndex + 1][Unknown].Inc();
    }

    /// <summary>A refused request (not a duplicate's repeated answer).</summary>
    public void Refused(in OutputEvent o)
    {
        if ((uint)o.Reject < (uint)_rejects.Length) _rejects[(int)o.Reject]?.Inc();
        if (IsInstitution(o.InstitutionIndex))
        {
            _transactions[o.InstitutionIndex][IsBank(o.BankIndex) ? o.BankIndex + 1 : 0][Rejected].Inc();
        }
    }

    private bool IsInstitution(int index) => (uint)index < (uint)_endToEnd.Length;
    private bool IsBank(int index) => (uint)index < (uint)_bankLatency.Length;
    private static double Seconds(long us) => Math.Max(0, us) / 1e6;
}
