using System.Globalization;
using System.Text;

namespace Switch.Contracts.V1;

/// <summary>
/// The member report as CSV (RFC 4180, one header line): the daily file beside the clearing files and
/// <c>switchctl report --csv</c> write the same columns. Business declines by reason go in one column as
/// REASON=count pairs separated by ';' (reasons are upper-case codes: no comma or quote to escape), and so do the
/// refusals by reject code of the bank "-" rows (requests the switch refused itself).
/// </summary>
public static class MemberReportCsv
{
    public const string Header = "period_start,period_hours,institution,bank,requests,approvals,business_declines,declines_by_reason," +
        "timeouts,system_errors,unavailable,went_unknown,unknown_resolved,unknown_to_final_mean_ms,unknown_to_final_max_ms," +
        "reversals_sent,reversals_succeeded,latency_p50_us,latency_p99_us,refused,refused_by_code";

    public static string Line(MemberRow r) =>
        string.Join(',', Field(r.PeriodStart), I(r.PeriodHours), Field(r.Institution), Field(r.Bank), I(r.Requests), I(r.Approvals),
            I(r.BusinessDeclines), Field(Pairs(r.DeclinesByReason)), I(r.Timeouts), I(r.SystemErrors), I(r.Unavailable), I(r.WentUnknown),
            I(r.UnknownResolved), I(r.UnknownToFinalMeanMs), I(r.UnknownToFinalMaxMs), I(r.ReversalsSent), I(r.ReversalsSucceeded),
            I(r.LatencyP50Us), I(r.LatencyP99Us), I(r.Refused), Field(Pairs(r.RefusedByCode)));

    /// <summary>CODE=count pairs separated by ';'.</summary>
    public static string Pairs(IEnumerable<DeclineReason> counts)
    {
        var text = new StringBuilder();
        foreach (DeclineReason d in counts)
        {
            if (text.Length > 0) text.Append(';');
            text.Append(d.Reason).Append('=').Append(d.Count.ToString(CultureInfo.InvariantCulture));
        }
        return text.ToString();
    }

    public static string Document(IEnumerable<MemberRow> rows)
    {
        var text = new StringBuilder(Header).Append('\n');
        foreach (MemberRow r in rows) text.Append(Line(r)).Append('\n');
        return text.ToString();
    }

    private static string I(long value) => value.ToString(CultureInfo.InvariantCulture);

    // Quoted only when needed (a code with a comma or quote would otherwise break the line).
    private static string Field(string value) =>
        value.AsSpan().IndexOfAny(",\"\n\r") < 0 ? value : "\"" + value.Replace("\"", "\"\"") + "\"";
}
