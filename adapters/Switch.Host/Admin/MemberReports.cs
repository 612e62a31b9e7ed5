using System.Globalization;
using Switch.Contracts.V1;
using Switch.Engine.Business;
using Switch.Grpc;
using Switch.Host.Configuration;

namespace Switch.Host.Admin;

/// <summary>
/// GetMemberReport: the per-member figures of one day (a row per institution × bank, or per hour too), in the
/// switch's day zone, limited to what the caller may see. A scoped operator naming another participant gets
/// PERMISSION_DENIED naming its scope.
/// </summary>
public sealed class MemberReports(MemberStats stats, SwitchConfig running)
{
    private readonly int _offsetHours = running.Rules.DayUtcOffsetHours;
    /// <summary>The bank shown on rows of requests the switch refused itself.</summary>
    public const string NoBankText = "-";

    public MemberReportReply GetMemberReport(MemberReportRequest request, AuthenticatedOperator op)
    {
        int bankFilter = -1, institutionFilter = -1;
        if (request.Bank.Length > 0)
        {
            bankFilter = request.Bank == NoBankText ? MemberStats.NoBank : running.Banks.FirstOrDefault(b => b.Code.ToString("D3") == request.Bank)?.Code
                ?? throw Invalid($"bank: no bank '{request.Bank}' (banks: {string.Join(", ", running.Banks.Select(b => b.Code.ToString("D3")))})");
        }
        if (request.Institution.Length > 0)
        {
            institutionFilter = IndexOf(request.Institution)
                ?? throw Invalid($"institution: no institution '{request.Institution}'");
        }
        int scopeBank = -1, scopeInstitution = -1;
        if (op.Scope is { } scope)
        {
            if (scope.Bank is not null) scopeBank = int.Parse(scope.Bank, CultureInfo.InvariantCulture);
            else scopeInstitution = IndexOf(scope.Institution!) ?? -2; // an institution no longer in the journal's configuration: sees nothing
            string? other = scope.Bank is not null
                ? (bankFilter >= 0 && bankFilter != scopeBank ? "bank " + request.Bank : null)
                : (request.Institution.Length > 0 && request.Institution != scope.Institution ? "institution " + request.Institution : null);
            if (other is not null)
            {
                throw new RpcException(StatusCode.PermissionDenied, $"operator '{op.Id}' is scoped to {scope}: it may not see {other}");
            }
        }
        long? fromHour = request.Day.Length > 0 ? DayStartHour(request.Day) : NewestDayStartHour();
        var reply = new MemberReportReply();
        if (stats.OldestHour is { } oldest) reply.KeptFrom = HourText(oldest);
        if (fromHour is not { } from) return reply;
        reply.Day = DayText(from);
        // A bank's key sees no refusal rows: no bank was asked (the "-" rows are the institutions' own).
        bool Include(int institution, int bank) =>
            (bankFilter < 0 || bank == bankFilter) && (institutionFilter < 0 || institution == institutionFilter) &&
            (scopeBank < 0 || bank == scopeBank) && (scopeInstitution == -1 || institution == scopeInstitution);
        foreach (MemberFigures f in stats.Report(from, 24, request.Hourly ? 1 : 24, Include, IndexOrMissing))
        {
            reply.Rows.Add(ToWire(f));
        }
        return reply;
    }

    /// <summary>The day's rows (every participant) for the daily file.</summary>
    public List<MemberRow> Day(long dayStartHour) => stats.Report(dayStartHour, 24, 24, (_, _) => true, IndexOrMissing).Select(ToWire).ToList();

    private int IndexOrMissing(string institution) => IndexOf(institution) ?? -1;

    /// <summary>The first hour (Unix hours, UTC) of the day holding <paramref name="hour"/>, in the switch's day zone.</summary>
    public long DayStartHourOf(long hour) => Math.DivRem(hour + _offsetHours, 24, out long rest) * 24 - (rest < 0 ? 24 : 0) - _offsetHours;

    public string DayText(long dayStartHour) =>
        DateTimeOffset.FromUnixTimeSeconds((dayStartHour + _offsetHours) * 3600).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    private MemberRow ToWire(MemberFigures f)
    {
        var row = new MemberRow
        {
            PeriodStart = HourText(f.FromHour),
            PeriodHours = f.SpanHours,
            Institution = (uint)f.InstitutionIndex < (uint)running.Institutions.Count ? running.Institutions[f.InstitutionIndex].Code
                : f.InstitutionCode ?? f.InstitutionIndex.ToString(CultureInfo.InvariantCulture),
            Bank = f.BankCode == MemberStats.NoBank ? NoBankText : f.BankCode.ToString("D3", CultureInfo.InvariantCulture),
            Refused = f.Refused,
            Requests = f.Requests,
            Approvals = f.Approvals,
            BusinessDeclines = f.BusinessDeclines,
            Timeouts = f.Timeouts,
            SystemErrors = f.SystemErrors,
            Unavailable = f.Unavailable,
            WentUnknown = f.WentUnknown,
            UnknownResolved = f.UnknownResolved,
            UnknownToFinalMeanMs = f.UnknownToFinalMeanMs,
            UnknownToFinalMaxMs = f.UnknownToFinalMaxMs,
            ReversalsSent = f.ReversalsSent,
            ReversalsSucceeded = f.ReversalsSucceeded,
            LatencyP50Us = f.LatencyP50Us,
            LatencyP99Us = f.LatencyP99Us,
        };
        foreach ((string reason, long count) in f.Reasons) row.DeclinesByReason.Add(new DeclineReason { Reason = reason, Count = count });
        foreach ((string code, long count) in f.Refusals) row.RefusedByCode.Add(new DeclineReason { Reason = code, Count = count });
        return row;
    }

    private int? IndexOf(string institution)
    {
        for (int i = 0; i < running.Institutions.Count; i++)
        {
            if (running.Institutions[i].Code == institution) return i;
        }
        return null;
    }

    private long DayStartHour(string day)
    {
        if (!DateOnly.TryParseExact(day, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out DateOnly date))
        {
            throw Invalid($"day: a date as yyyy-MM-dd, got '{day}'");
        }
        return (long)(date.DayNumber - DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber) * 24 - _offsetHours;
    }

    private long? NewestDayStartHour() => stats.NewestHour is { } newest ? DayStartHourOf(newest) : null;

    private string HourText(long hour) =>
        DateTimeOffset.FromUnixTimeSeconds(hour * 3600).ToOffset(TimeSpan.FromHours(_offsetHours)).ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture);

    private static RpcException Invalid(string message) => new(StatusCode.InvalidArgument, message);
}
