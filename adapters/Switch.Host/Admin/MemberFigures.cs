namespace Switch.Host.Admin;

/// <summary>One row of the member report: one institution × bank over one period.</summary>
public sealed class MemberFigures(long fromHour, int spanHours, int institutionIndex, int bankCode)
{
    public long FromHour { get; } = fromHour;
    public int SpanHours { get; } = spanHours;
    public int InstitutionIndex { get; } = institutionIndex;
    public int BankCode { get; } = bankCode;
    /// <summary>Refusal rows: the institution's code as the refusals named it.</summary>
    public string? InstitutionCode { get; init; }
    /// <summary>Requests the switch refused itself (bank <see cref="MemberStats.NoBank"/> rows), in total and by reject code.</summary>
    public long Refused;
    internal readonly long[] RefusalCounts = new long[MemberStats.MaxRefusalCodes];
    public List<(string Code, long Count)> Refusals { get; } = [];
    public long Requests, Approvals, BusinessDeclines, Timeouts, SystemErrors, Unavailable, WentUnknown, UnknownResolved,
        ReversalsSent, ReversalsSucceeded, UnknownToFinalMaxMs, UnknownToFinalSumMs;
    internal readonly long[] ReasonCounts = new long[MemberStats.MaxReasons];
    internal readonly long[] Latency = new long[CellHistogram.Buckets];
    /// <summary>Business declines by reason, in the order reasons were first seen.</summary>
    public List<(string Reason, long Count)> Reasons { get; } = [];

    public long Finals => Approvals + BusinessDeclines + Timeouts + SystemErrors + Unavailable;
    public long TechnicalDeclines => Timeouts + SystemErrors + Unavailable;
    public long LatencyP50Us => CellHistogram.Percentile(Latency, 0.50);
    public long LatencyP99Us => CellHistogram.Percentile(Latency, 0.99);
    public long UnknownToFinalMeanMs => UnknownResolved == 0 ? 0 : UnknownToFinalSumMs / UnknownResolved;
    internal bool IsEmpty => Requests == 0 && Finals == 0 && WentUnknown == 0 && ReversalsSent == 0 && Refused == 0;

    internal void Add(ReadOnlySpan<int> c)
    {
        Requests += c[MemberStats.Requests];
        Approvals += c[MemberStats.Approvals];
        BusinessDeclines += c[MemberStats.BusinessDeclines];
        Timeouts += c[MemberStats.Timeouts];
        SystemErrors += c[MemberStats.SystemErrors];
        Unavailable += c[MemberStats.Unavailable];
        WentUnknown += c[MemberStats.WentUnknown];
        UnknownResolved += c[MemberStats.UnknownResolved];
        ReversalsSent += c[MemberStats.ReversalsSent];
        ReversalsSucceeded += c[MemberStats.ReversalsSucceeded];
        UnknownToFinalMaxMs = Math.Max(UnknownToFinalMaxMs, c[MemberStats.UnknownToFinalMaxMs]);
        UnknownToFinalSumMs += (uint)c[MemberStats.UnknownToFinalSumMsLow] | ((long)c[MemberStats.UnknownToFinalSumMsHigh] << 32);
        for (int i = 0; i < MemberStats.MaxReasons; i++) ReasonCounts[i] += c[MemberStats.ReasonBase + i];
        for (int i = 0; i < CellHistogram.Buckets; i++) Latency[i] += c[MemberStats.LatencyBase + i];
        Refused += c[MemberStats.Refused];
        for (int i = 0; i < MemberStats.MaxRefusalCodes; i++) RefusalCounts[i] += c[MemberStats.RefusalBase + i];
    }
}
