using System.Globalization;
using System.Text;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using EngineBreaker = Switch.Engine.Events.BreakerState;

namespace Switch.Host.Admin;

/// <summary>
/// /metrics: the live statistics and routing view in the Prometheus text exposition format 0.0.4. Gauges per bank,
/// endpoint and window; counters since the process started; the engine's applied-event count. Built per scrape
/// from the same sources as the API (no second set of numbers to drift).
/// </summary>
public sealed class MetricsWriter(SwitchEngine engine, AuditLog audit, LiveStats stats, SuccessRateWatch? watch, IClock clock)
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private static readonly (string Label, EndpointState State)[] States =
        [("up", EndpointState.Up), ("draining", EndpointState.Draining), ("down", EndpointState.Down)];
    private static readonly (string Label, EngineBreaker State)[] Breakers =
        [("closed", EngineBreaker.Closed), ("open", EngineBreaker.Open), ("half_open", EngineBreaker.HalfOpen)];

    public string Write()
    {
        long nowUs = clock.NowUs();
        IReadOnlyList<BankRouting> banks = audit.Banks();
        var figures = new Dictionary<(int Bank, int Endpoint, int Window), WindowFigures>();
        foreach (BankRouting bank in banks)
        {
            foreach (int w in LiveStats.WindowSeconds)
            {
                figures[(bank.Index, -1, w)] = stats.Window(bank.Index, -1, w, nowUs);
                for (int e = 0; e < bank.Endpoints.Length; e++) figures[(bank.Index, e, w)] = stats.Window(bank.Index, e, w, nowUs);
            }
        }
        var text = new StringBuilder(16 * 1024);

        Family(text, "switch_endpoint_requests_per_second", "gauge", "Transactions sent to the endpoint per second over the window.");
        WindowGauges(text, banks, figures, "switch_endpoint_requests_per_second", (f, w) => (double)f.Requests / w);
        Family(text, "switch_endpoint_success_ratio", "gauge", "Share of the transactions answered in the window that succeeded (0 when none).");
        WindowGauges(text, banks, figures, "switch_endpoint_success_ratio", (f, _) => f.SuccessRate);
        Family(text, "switch_endpoint_timeout_ratio", "gauge", "Share of the transactions answered in the window that timed out (0 when none).");
        WindowGauges(text, banks, figures, "switch_endpoint_timeout_ratio", (f, _) => f.TimeoutRate);
        Family(text, "switch_endpoint_latency_p50_seconds", "gauge", "Median bank round trip over the window (0 when none).");
        WindowGauges(text, banks, figures, "switch_endpoint_latency_p50_seconds", (f, _) => f.LatencyPercentileUs(0.50) / 1e6);
        Family(text, "switch_endpoint_latency_p99_seconds", "gauge", "99th percentile bank round trip over the window (0 when none).");
        WindowGauges(text, banks, figures, "switch_endpoint_latency_p99_seconds", (f, _) => f.LatencyPercentileUs(0.99) / 1e6);

        Family(text, "switch_bank_requests_per_second", "gauge", "Transactions sent to the bank per second over the window.");
        BankGauges(text, banks, figures, "switch_bank_requests_per_second", (f, w) => (double)f.Requests / w);
        Family(text, "switch_bank_success_ratio", "gauge", "Share of the bank's transactions answered in the window that succeeded (0 when none).");
        BankGauges(text, banks, figures, "switch_bank_success_ratio", (f, _) => f.SuccessRate);
        Family(text, "switch_bank_in_flight", "gauge", "Transactions sent to the bank and not yet answered.");
        foreach (BankRouting bank in banks) Sample(text, "switch_bank_in_flight", Labels(bank, null, null), stats.BankInFlight(bank.Index));

        Family(text, "switch_endpoint_in_flight", "gauge", "Transactions sent to the endpoint and not yet answered.");
        Each(text, banks, "switch_endpoint_in_flight", (b, e) => stats.InFlight(b.Index, e));
        Family(text, "switch_endpoint_weight_bps", "gauge", "The endpoint's cut-over weight in basis points of 10,000.");
        Each(text, banks, "switch_endpoint_weight_bps", (b, e) => b.Endpoints[e].WeightBps);
        Family(text, "switch_endpoint_reachable", "gauge", "1 when the connector reaches the endpoint.");
        Each(text, banks, "switch_endpoint_reachable", (b, e) => b.Endpoints[e].Reachable ? 1 : 0);
        Family(text, "switch_endpoint_takes_traffic", "gauge", "1 when the endpoint takes new transactions now.");
        Each(text, banks, "switch_endpoint_takes_traffic", (b, e) => b.Endpoints[e].TakesTraffic ? 1 : 0);
        Family(text, "switch_endpoint_state", "gauge", "The endpoint's admin state: 1 for the state it is in.");
        foreach (BankRouting bank in banks)
        {
            for (int e = 0; e < bank.Endpoints.Length; e++)
            {
                foreach (var (label, state) in States)
                {
                    Sample(text, "switch_endpoint_state", Labels(bank, bank.Endpoints[e].Name, null) + $",state=\"{label}\"", bank.Endpoints[e].State == state ? 1 : 0);
                }
            }
        }
        Family(text, "switch_endpoint_breaker_state", "gauge", "The endpoint's circuit breaker: 1 for the state it is in.");
        foreach (BankRouting bank in banks)
        {
            for (int e = 0; e < bank.Endpoints.Length; e++)
            {
                foreach (var (label, state) in Breakers)
                {
                    Sample(text, "switch_endpoint_breaker_state", Labels(bank, bank.Endpoints[e].Name, null) + $",state=\"{label}\"", bank.Endpoints[e].Breaker == state ? 1 : 0);
                }
            }
        }

        Family(text, "switch_endpoint_requests_total", "counter", "Transactions sent to the endpoint since the process started.");
        Each(text, banks, "switch_endpoint_requests_total", (b, e) => stats.Totals(b.Index, e).Requests);
        Family(text, "switch_endpoint_answers_total", "counter", "Transactions answered by outcome since the process started.");
        foreach (BankRouting bank in banks)
        {
            for (int e = 0; e < bank.Endpoints.Length; e++)
            {
                var t = stats.Totals(bank.Index, e);
                string labels = Labels(bank, bank.Endpoints[e].Name, null);
                Sample(text, "switch_endpoint_answers_total", labels + ",outcome=\"succeeded\"", t.Succeeded);
                Sample(text, "switch_endpoint_answers_total", labels + ",outcome=\"failed\"", t.Failed);
                Sample(text, "switch_endpoint_answers_total", labels + ",outcome=\"timed_out\"", t.TimedOut);
            }
        }

        if (watch is not null)
        {
            Family(text, "switch_bank_success_rate_alert", "gauge", "1 while the bank's success-rate alert is active.");
            IReadOnlyList<SuccessRateAlert> alerts = watch.Alerts();
            foreach (BankRouting bank in banks)
            {
                Sample(text, "switch_bank_success_rate_alert", Labels(bank, null, null), alerts.Any(a => a.Active && a.BankIndex == bank.Index) ? 1 : 0);
            }
        }
        Family(text, "switch_engine_events_applied_total", "counter", "Input events the business logic has applied since the journal began.");
        Sample(text, "switch_engine_events_applied_total", "", engine.AppliedSequence + 1);
        Family(text, "switch_audit_entries_total", "counter", "Entries in the audit log (operator changes, ramp steps, breaker and reachability changes, batch closes).");
        Sample(text, "switch_audit_entries_total", "", audit.LastAuditNo);
        return text.ToString();
    }

    private static void Family(StringBuilder text, string name, string type, string help) =>
        text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n').Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    private static void WindowGauges(StringBuilder text, IReadOnlyList<BankRouting> banks, Dictionary<(int, int, int), WindowFigures> figures,
        string name, Func<WindowFigures, int, double> value)
    {
        foreach (BankRouting bank in banks)
        {
            for (int e = 0; e < bank.Endpoints.Length; e++)
            {
                foreach (int w in LiveStats.WindowSeconds)
                {
                    Sample(text, name, Labels(bank, bank.Endpoints[e].Name, w), value(figures[(bank.Index, e, w)], w));
                }
            }
        }
    }

    private static void BankGauges(StringBuilder text, IReadOnlyList<BankRouting> banks, Dictionary<(int, int, int), WindowFigures> figures,
        string name, Func<WindowFigures, int, double> value)
    {
        foreach (BankRouting bank in banks)
        {
            foreach (int w in LiveStats.WindowSeconds) Sample(text, name, Labels(bank, null, w), value(figures[(bank.Index, -1, w)], w));
        }
    }

    private static void Each(StringBuilder text, IReadOnlyList<BankRouting> banks, string name, Func<BankRouting, int, double> value)
    {
        foreach (BankRouting bank in banks)
        {
            for (int e = 0; e < bank.Endpoints.Length; e++) Sample(text, name, Labels(bank, bank.Endpoints[e].Name, null), value(bank, e));
        }
    }

    private static string Labels(BankRouting bank, string? endpoint, int? windowSeconds)
    {
        var labels = new StringBuilder();
        labels.Append("bank=\"").Append(bank.CodeText).Append('"');
        if (endpoint is not null) labels.Append(",endpoint=\"").Append(Escape(endpoint)).Append('"');
        if (windowSeconds is { } w) labels.Append(",window=\"").Append(WindowLabel(w)).Append('"');
        return labels.ToString();
    }

    public static string WindowLabel(int seconds) => seconds % 60 == 0 ? $"{seconds / 60}m" : $"{seconds}s";

    /// <summary>Label values escape backslash, double quote and line feed (exposition format 0.0.4).</summary>
    public static string Escape(string value) => value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");

    private static void Sample(StringBuilder text, string name, string labels, double value)
    {
        text.Append(name);
        if (labels.Length > 0) text.Append('{').Append(labels).Append('}');
        text.Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
    }
}
