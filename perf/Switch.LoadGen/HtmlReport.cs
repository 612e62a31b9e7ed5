using System.Globalization;
using System.Net;
using System.Text;

namespace Switch.LoadGen;

/// <summary>The report as one self-contained HTML page: tables and inline SVG charts, nothing fetched.</summary>
public static class HtmlReport
{
    private const int ChartWidth = 900;
    private const int ChartHeight = 260;
    private const int Margin = 50;

    public static string Render(Report r)
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Switch load report</title><style>");
        sb.Append("body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 18px}");
        sb.Append("td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f2f2f2}td.l,th.l{text-align:left}");
        sb.Append(".bad{color:#b00;font-weight:bold}svg{background:#fafafa;border:1px solid #ddd}</style></head><body>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<h1>Load report: {E(r.Transport)} {E(r.Loop)} loop</h1>\n<p>{E(r.Profile)}<br>started {r.StartedUtc:yyyy-MM-dd HH:mm:ss} UTC</p>\n");

        sb.Append("<h2>Headline</h2><table>");
        Row(sb, "completed / sent", $"{r.Completed} / {r.Sent}");
        Row(sb, "throughput", $"{r.ThroughputPerSecond:F0} per second over {r.Seconds:F2} s");
        Row(sb, "latency (from intended send time)", $"p50 {Report.Ms(r.Latency.P50Us)}, p90 {Report.Ms(r.Latency.P90Us)}, p99 {Report.Ms(r.Latency.P99Us)}, p99.9 {Report.Ms(r.Latency.P999Us)}, max {Report.Ms(r.Latency.MaxUs)}");
        Row(sb, "lost", r.Lost.ToString(CultureInfo.InvariantCulture), r.Lost != 0);
        Row(sb, "duplicated", r.Duplicated.ToString(CultureInfo.InvariantCulture), r.Duplicated != 0);
        Row(sb, "unexpected answers", r.Unexpected.ToString(CultureInfo.InvariantCulture), r.Unexpected != 0);
        Row(sb, "max send lag", $"{r.MaxSendLagMs:F1} ms");
        if (r.Profile.StartsWith("surge", StringComparison.Ordinal))
        {
            Row(sb, $"p99 back under {r.P99TargetMs:0.#} ms after the peak", r.SurgeRecoverySeconds is { } rec ? $"{rec:0.#} s" : "never", r.SurgeRecoverySeconds is null or > 5);
        }
        if (r.FailoverSummary() is { } failovers) Row(sb, "failovers", failovers);
        if (r.WarmTransactions > 0) Row(sb, "warm transactions (before, not counted)", r.WarmTransactions.ToString(CultureInfo.InvariantCulture));
        Row(sb, "generator CPU", $"{r.GeneratorCpuSeconds:F1} s");
        if (r.SwitchCpuSeconds is { } cpu) Row(sb, "switch CPU", $"{cpu:F1} s");
        foreach ((string thread, double seconds) in r.SwitchCpuByThread.OrderByDescending(kv => kv.Value)) Row(sb, $"switch CPU: {thread}", $"{seconds:F2} s");
        sb.Append("</table>\n");

        sb.Append("<h2>Per second</h2>\n");
        Chart(sb, "requests per second", r.Series, [("sent", "#888", p => p.Sent), ("completed", "#1565c0", p => p.Completed)], 1);
        Chart(sb, "latency, ms (answers completed in that second)", r.Series, [("p50", "#2e7d32", p => p.P50Us), ("p99", "#c62828", p => p.P99Us)], 1000);

        sb.Append("<h2>Outcomes</h2><table><tr><th class=l>kind</th>");
        string[] outcomes = Enum.GetNames<Outcome>();
        foreach (string o in outcomes) sb.Append(CultureInfo.InvariantCulture, $"<th>{o}</th>");
        sb.Append("</tr>");
        foreach ((string kind, Dictionary<string, long> counts) in r.OutcomesByKind.Append(new("all", r.Outcomes)))
        {
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td class=l>{E(kind)}</td>");
            foreach (string o in outcomes) sb.Append(CultureInfo.InvariantCulture, $"<td>{counts.GetValueOrDefault(o)}</td>");
            sb.Append("</tr>");
        }
        sb.Append("</table>\n");
        if (r.Codes.Count > 0)
        {
            sb.Append("<table><tr><th class=l>reject / error code</th><th>count</th></tr>");
            foreach ((string code, long n) in r.Codes) sb.Append(CultureInfo.InvariantCulture, $"<tr><td class=l>{E(code)}</td><td>{n}</td></tr>");
            sb.Append("</table>\n");
        }

        sb.Append("<h2>By bank</h2><table><tr><th class=l>bank</th><th>completed</th><th>succeeded</th><th>failed</th><th>unknown</th><th>rejected</th><th>p50</th><th>p99</th><th>max</th></tr>");
        foreach (Report.BankLine b in r.Banks)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td class=l>{E(b.Bank)}</td><td>{b.Completed}</td><td>{b.Outcomes.GetValueOrDefault("Succeeded")}</td><td>{b.Outcomes.GetValueOrDefault("Failed")}</td>");
            sb.Append(CultureInfo.InvariantCulture, $"<td>{b.Outcomes.GetValueOrDefault("Unknown")}</td><td>{b.Outcomes.GetValueOrDefault("Rejected")}</td><td>{Report.Ms(b.Latency.P50Us)}</td><td>{Report.Ms(b.Latency.P99Us)}</td><td>{Report.Ms(b.Latency.MaxUs)}</td></tr>");
        }
        sb.Append("</table>\n");

        sb.Append(CultureInfo.InvariantCulture, $"<h2>By endpoint</h2><p>{E(r.EndpointSource)}</p>");
        if (r.Endpoints.Count > 0)
        {
            sb.Append("<table><tr><th class=l>bank</th><th class=l>endpoint</th><th>requests</th><th>succeeded</th><th>failed</th><th>timed out</th><th>p50 (bank round trip)</th><th>p99</th></tr>");
            foreach (Report.EndpointLine e in r.Endpoints)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<tr><td class=l>{E(e.Bank)}</td><td class=l>{E(e.Endpoint)}</td><td>{e.Requests}</td><td>{e.Succeeded}</td><td>{e.Failed}</td><td>{e.TimedOut}</td><td>{Report.Ms(e.P50Us)}</td><td>{Report.Ms(e.P99Us)}</td></tr>");
            }
            sb.Append("</table>\n");
        }

        sb.Append("<h2>Settings</h2><table>");
        foreach ((string k, string v) in r.Settings) Row(sb, k, v);
        sb.Append("</table>\n</body></html>\n");
        return sb.ToString();
    }

    private static string E(string s) => WebUtility.HtmlEncode(s);

    private static void Row(StringBuilder sb, string name, string value, bool bad = false) =>
        sb.Append(CultureInfo.InvariantCulture, $"<tr><th class=l>{E(name)}</th><td class=\"l{(bad ? " bad" : "")}\">{E(value)}</td></tr>");

    /// <summary>A line chart of the series (x: second, y: value / divisor), axes with a few ticks and a legend.</summary>
    private static void Chart(StringBuilder sb, string title, IReadOnlyList<SecondPoint> series, (string Name, string Color, Func<SecondPoint, long> Value)[] lines, double divisor)
    {
        double maxY = 0;
        foreach (SecondPoint p in series)
        foreach (var line in lines)
            maxY = Math.Max(maxY, line.Value(p) / divisor);
        maxY = NiceCeiling(maxY);
        int n = Math.Max(1, series.Count);
        double plotW = ChartWidth - 2 * Margin, plotH = ChartHeight - 2 * Margin;
        double X(int second) => Margin + plotW * (second - 1) / Math.Max(1, n - 1);
        double Y(double v) => ChartHeight - Margin - plotH * v / maxY;
        var inv = CultureInfo.InvariantCulture;
        sb.Append(inv, $"<h3>{E(title)}</h3><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{ChartWidth}\" height=\"{ChartHeight}\" font-size=\"11\">");
        sb.Append(inv, $"<line x1=\"{Margin}\" y1=\"{ChartHeight - Margin}\" x2=\"{ChartWidth - Margin}\" y2=\"{ChartHeight - Margin}\" stroke=\"#444\"/>");
        sb.Append(inv, $"<line x1=\"{Margin}\" y1=\"{Margin}\" x2=\"{Margin}\" y2=\"{ChartHeight - Margin}\" stroke=\"#444\"/>");
        for (int i = 0; i <= 4; i++)
        {
            double v = maxY * i / 4;
            sb.Append(inv, $"<line x1=\"{Margin}\" y1=\"{Y(v):F1}\" x2=\"{ChartWidth - Margin}\" y2=\"{Y(v):F1}\" stroke=\"#e0e0e0\"/>");
            sb.Append(inv, $"<text x=\"{Margin - 4}\" y=\"{Y(v) + 4:F1}\" text-anchor=\"end\">{v:0.##}</text>");
        }
        int step = Math.Max(1, n / 10);
        for (int s = 1; s <= n; s += step)
        {
            sb.Append(inv, $"<text x=\"{X(s):F1}\" y=\"{ChartHeight - Margin + 14}\" text-anchor=\"middle\">{s}s</text>");
        }
        for (int l = 0; l < lines.Length; l++)
        {
            var line = lines[l];
            sb.Append(inv, $"<polyline fill=\"none\" stroke=\"{line.Color}\" stroke-width=\"1.5\" points=\"");
            for (int i = 0; i < series.Count; i++) sb.Append(inv, $"{X(series[i].Second):F1},{Y(line.Value(series[i]) / divisor):F1} ");
            sb.Append("\"/>");
            sb.Append(inv, $"<rect x=\"{Margin + 10 + l * 110}\" y=\"{Margin - 30}\" width=\"12\" height=\"3\" fill=\"{line.Color}\"/>");
            sb.Append(inv, $"<text x=\"{Margin + 26 + l * 110}\" y=\"{Margin - 25}\">{E(line.Name)}</text>");
        }
        sb.Append("</svg>\n");
    }

    /// <summary>1, 2, 5 x 10^k at or above v (so the axis ticks are round numbers).</summary>
    private static double NiceCeiling(double v)
    {
        if (v <= 0) return 1;
        double p = Math.Pow(10, Math.Floor(Math.Log10(v)));
        foreach (double m in (double[])[1, 2, 5, 10])
        {
            if (m * p >= v) return m * p;
        }
        return 10 * p;
    }
}
