using System.Globalization;
using System.Text;
using Switch.Contracts.V1;

namespace Switch.Operator;

/// <summary>Human-readable views of the admin replies: aligned tables, units in the headers.</summary>
public static class Render
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Banks(TextWriter w, ListBanksReply reply)
    {
        var table = new TextTable("BANK", "ENDPOINT", "WEIGHT%", "STATE", "REACHABLE", "BREAKER", "IN-FLIGHT", "REQ/S", "SUCCESS%", "TIMEOUT%", "P50MS", "P99MS");
        foreach (BankView bank in reply.Banks)
        {
            foreach (EndpointView e in bank.Endpoints)
            {
                WindowStats s = e.Last10S ?? new WindowStats();
                table.Row(bank.Bank, e.Name, Percent(e.WeightBps / (double)OperatorArgs.TotalWeightBps), State(e.State),
                    e.Reachable ? "yes" : "NO", Breaker(e.Breaker), e.InFlight.ToString(Inv), Rate(s.RequestsPerSecond),
                    RatePercent(s, s.SuccessRate), RatePercent(s, s.TimeoutRate), Ms(s.P50LatencyUs), Ms(s.P99LatencyUs));
            }
        }
        table.Write(w);
        foreach (BankView bank in reply.Banks)
        {
            WindowStats s = bank.Last10S ?? new WindowStats();
            w.WriteLine(s.Succeeded + s.Failed + s.TimedOut == 0
                ? $"bank {bank.Bank} {bank.Name}: no answers in the last 10 s"
                : $"bank {bank.Bank} {bank.Name}: last 10 s {Rate(s.RequestsPerSecond)} req/s, success {Percent(s.SuccessRate)}%, timeout {Percent(s.TimeoutRate)}%, p99 {Ms(s.P99LatencyUs)} ms");
            if (bank.Ramp is { } ramp) w.WriteLine("  " + Ramp(bank, ramp));
        }
    }

    public static string Ramp(BankView bank, RampView ramp)
    {
        string next = ramp.NextStepUnixMs > 0 ? " next step at " + DateTimeOffset.FromUnixTimeMilliseconds(ramp.NextStepUnixMs).UtcDateTime.ToString("HH:mm:ss'Z'", Inv) : "";
        return $"ramp by {ramp.OperatorId}: {Named(bank.Endpoints.Select(e => e.Name).ToList(), ramp.FromWeightsBps)} -> " +
               $"{Named(bank.Endpoints.Select(e => e.Name).ToList(), ramp.TargetWeightsBps)}, step {ramp.StepsDone} of {ramp.StepsTotal}{next}";
    }

    public static void Changed(TextWriter w, string what, CommandReply reply)
    {
        w.WriteLine($"{what}: recorded as audit #{reply.AuditNo}");
        if (reply.Bank is { } bank)
        {
            w.WriteLine($"bank {bank.Bank} now: " + string.Join(", ", bank.Endpoints.Select(e => $"{e.Name}={e.WeightBps} bps {State(e.State)}")));
            if (bank.Ramp is { } ramp) w.WriteLine("  " + Ramp(bank, ramp));
        }
    }

    public static void Stats(TextWriter w, StatsReply reply)
    {
        w.WriteLine("at " + DateTimeOffset.FromUnixTimeMilliseconds(reply.AtUnixMs).UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", Inv));
        var table = new TextTable("BANK", "ENDPOINT", "WINDOW", "REQUESTS", "REQ/S", "SUCCESS%", "TIMEOUT%", "FAILED", "P50MS", "P99MS", "IN-FLIGHT");
        foreach (BankStats bank in reply.Banks)
        {
            AddWindows(table, bank.Bank, "*", bank.InFlight, bank.Windows);
            foreach (EndpointStats e in bank.Endpoints) AddWindows(table, bank.Bank, e.Name, e.InFlight, e.Windows);
        }
        table.Write(w);
    }

    private static void AddWindows(TextTable table, string bank, string endpoint, long inFlight, IEnumerable<WindowStats> windows)
    {
        foreach (WindowStats s in windows)
        {
            table.Row(bank, endpoint, Window(s.WindowSeconds), s.Requests.ToString(Inv), Rate(s.RequestsPerSecond), RatePercent(s, s.SuccessRate),
                RatePercent(s, s.TimeoutRate), s.Failed.ToString(Inv), Ms(s.P50LatencyUs), Ms(s.P99LatencyUs), inFlight.ToString(Inv));
        }
    }

    public static void Alerts(TextWriter w, ListAlertsReply reply)
    {
        if (reply.Alerts.Count == 0)
        {
            w.WriteLine("no alerts");
            return;
        }
        var table = new TextTable("BANK", "KIND", "ACTIVE", "SINCE", "CLEARED", "BASELINE%", "ACTUAL%", "WINDOWS", "MESSAGE");
        foreach (Alert a in reply.Alerts)
        {
            table.Row(a.Bank, a.Kind, a.Active ? "ACTIVE" : "cleared", UnixMs(a.SinceUnixMs), a.ClearedUnixMs > 0 ? UnixMs(a.ClearedUnixMs) : "-",
                Percent(a.BaselineSuccessRate), Percent(a.ActualSuccessRate), a.WindowsBelow.ToString(Inv), a.Message);
        }
        table.Write(w);
    }

    /// <summary>One line per entry; weights by endpoint name when the bank's endpoints are known.</summary>
    public static string AuditLine(AuditEntry e, IReadOnlyDictionary<string, IReadOnlyList<string>> endpointsByBank)
    {
        var sb = new StringBuilder();
        sb.Append('#').Append(e.AuditNo.ToString(Inv)).Append("  ")
          .Append(DateTimeOffset.FromUnixTimeMilliseconds(e.AtUnixUs / 1000).UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.fff'Z'", Inv)).Append("  ")
          .Append(e.OperatorId).Append("  ").Append(e.Kind);
        if (e.Bank.Length > 0) sb.Append("  bank ").Append(e.Bank);
        if (e.Endpoint.Length > 0) sb.Append(" endpoint ").Append(e.Endpoint);
        switch (e.Kind)
        {
            case "STATE": sb.Append("  ").Append(State(e.State)); break;
            case "REACHABILITY": sb.Append("  ").Append(e.Reachable ? "reachable" : "UNREACHABLE"); break;
            case "BATCH_CLOSED": sb.Append("  batch ").Append(e.BatchId.ToString(Inv)); break;
        }
        if (e.Kind.StartsWith("BREAKER", StringComparison.Ordinal)) sb.Append("  breaker ").Append(Breaker(e.Breaker));
        if (e.WeightsBps.Count > 0)
        {
            endpointsByBank.TryGetValue(e.Bank, out IReadOnlyList<string>? names);
            sb.Append("  ").Append(Named(names ?? [], e.WeightsBps));
            if (e.TargetWeightsBps.Count > 0) sb.Append(" -> ").Append(Named(names ?? [], e.TargetWeightsBps));
        }
        if (e.Reason.Length > 0) sb.Append("  \"").Append(e.Reason).Append('"');
        return sb.ToString();
    }

    public static void Batches(TextWriter w, ListBatchesReply reply)
    {
        w.WriteLine($"open batch: {reply.OpenBatchId}");
        if (reply.FilesFault.Length > 0) w.WriteLine($"FILES FAULT: {reply.FilesFault}");
        var table = new TextTable("BATCH", "OPENED", "CLOSED", "TRANSACTIONS", "FILES", "CLOSED-BY");
        foreach (BatchInfo b in reply.Batches)
        {
            table.Row(b.BatchId.ToString(Inv), UnixMs(b.OpenedUnixUs / 1000), UnixMs(b.ClosedUnixUs / 1000), b.Transactions.ToString(Inv),
                b.FilesComplete ? "complete" : "PENDING", b.ClosedBy);
        }
        table.Write(w);
    }

    public static void MemberReport(TextWriter w, MemberReportReply reply)
    {
        if (reply.Day.Length == 0)
        {
            w.WriteLine("no figures yet");
            return;
        }
        w.WriteLine($"day {reply.Day} (kept from {reply.KeptFrom}):");
        var table = new TextTable("PERIOD", "INSTITUTION", "BANK", "REQUESTS", "APPROVED", "BUSINESS", "TIMEOUTS", "SYS-ERR", "UNAVAIL",
            "UNKNOWN", "UNK->FINAL-MS", "REVERSALS", "P50-MS", "P99-MS", "REFUSED", "DECLINES-BY-REASON");
        foreach (MemberRow r in reply.Rows)
        {
            table.Row(r.PeriodStart, r.Institution, r.Bank, r.Requests.ToString(Inv), r.Approvals.ToString(Inv), r.BusinessDeclines.ToString(Inv),
                r.Timeouts.ToString(Inv), r.SystemErrors.ToString(Inv), r.Unavailable.ToString(Inv),
                $"{r.WentUnknown}/{r.UnknownResolved}", $"{r.UnknownToFinalMeanMs}/{r.UnknownToFinalMaxMs}", $"{r.ReversalsSucceeded}/{r.ReversalsSent}",
                Ms(r.LatencyP50Us), Ms(r.LatencyP99Us), r.Refused.ToString(Inv),
                string.Join(' ', r.DeclinesByReason.Concat(r.RefusedByCode).Select(d => $"{d.Reason}={d.Count}")));
        }
        table.Write(w);
        w.WriteLine("UNKNOWN: went unknown/resolved; UNK->FINAL-MS: mean/max; REVERSALS: succeeded/sent; bank -: refused by the switch, by reject code");
    }

    public static void Explanation(TextWriter w, ExplainReply reply)
    {
        w.WriteLine($"order {reply.OrderNo} of {reply.Institution}: {reply.DecisionsSeen} request(s) decided" +
            $" (journal replayed: {reply.JournalRecordsScanned} records in {reply.ElapsedMs} ms)");
        foreach (OrderDecision d in reply.Decisions)
        {
            w.WriteLine();
            string what = d.Outcome == "ADMITTED" ? $"ADMITTED as transaction {d.TransactionId}, sent to {d.Endpoint}"
                : d.Outcome == "REFUSED" ? $"REFUSED {d.RejectCode}" + (d.RejectField.Length > 0 ? $" ({d.RejectField})" : "") : d.Outcome;
            w.WriteLine($"{d.At} {d.Kind} {Fen(d.AmountFen)} fen" + (d.Bank.Length > 0 ? $" at bank {d.Bank}" : "") + $": {what}");
            if (d.Endpoints.Count > 0)
            {
                var table = new TextTable("ENDPOINT", "WEIGHT-BPS", "STATE", "REACHABLE", "BREAKER", "IN-FLIGHT", "IN-DRAW", "CHOSEN");
                foreach (ExplainEndpoint e in d.Endpoints)
                {
                    table.Row(e.Name, e.WeightBps.ToString(Inv), e.State, e.Reachable ? "yes" : "NO", e.Breaker,
                        $"{e.InFlight}/{e.InFlightCap}" + (e.AtInFlightCap ? " AT CAP" : ""), e.Excluded.Length == 0 ? "yes" : "no: " + e.Excluded,
                        e.Chosen ? "<==" : "");
                }
                table.Write(w);
            }
            foreach (string line in d.Because) w.WriteLine("  " + line);
        }
    }

    public static void Settlement(TextWriter w, SettlementReply reply)
    {
        w.WriteLine($"batch {reply.BatchId} settlement ({reply.File}):");
        var table = new TextTable("KIND", "PARTICIPANT", "DEBITS-FEN", "CREDITS-FEN", "FEES-FEN", "NET-FEN", "COUNT", "DIRECTION");
        foreach (SettlementLine l in reply.Lines)
        {
            string direction = l.NetFen > 0 ? "RECEIVE" : l.NetFen < 0 ? "PAY" : "NONE";
            table.Row(l.ParticipantKind, l.ParticipantId, Fen(l.DebitsFen), Fen(l.CreditsFen), Fen(l.FeesFen), Fen(l.NetFen), l.Count.ToString(Inv), direction);
        }
        table.Write(w);
        w.WriteLine($"sum of net: {Fen(reply.SumNetFen)} fen");
    }

    public static void Breaks(TextWriter w, BreakReportReply r)
    {
        w.WriteLine($"batch {r.BatchId}, {r.ParticipantKind} {r.ParticipantId}: switch lines {r.SwitchLines}, participant lines {r.ParticipantLines}, matched {r.Matched}");
        var totals = new TextTable("BREAK", "COUNT", "AMOUNT-FEN");
        foreach (BreakTotal t in r.Totals) totals.Row(t.Kind, t.Count.ToString(Inv), Fen(t.AmountFen));
        totals.Write(w);
        if (r.Breaks.Count == 0)
        {
            w.WriteLine("no breaks");
            return;
        }
        var table = new TextTable("BREAK", "TRANSACTION", "ORDER", "SWITCH-FEN", "PARTICIPANT-FEN", "SWITCH-STATUS", "PARTICIPANT-STATUS");
        foreach (BreakLine b in r.Breaks)
        {
            table.Row(b.Kind, b.TransactionId.ToString(Inv), b.OrderNo, Fen(b.SwitchAmountFen), Fen(b.ParticipantAmountFen), Dash(b.SwitchStatus), Dash(b.ParticipantStatus));
        }
        table.Write(w);
        if (r.BreaksTruncated) w.WriteLine("(list truncated; the totals count every break)");
    }

    public static string State(EndpointAdminState state) => state switch
    {
        EndpointAdminState.Up => "up",
        EndpointAdminState.Draining => "draining",
        EndpointAdminState.Down => "down",
        _ => "?",
    };

    public static string Breaker(BreakerState state) => state switch
    {
        BreakerState.Closed => "closed",
        BreakerState.Open => "OPEN",
        BreakerState.HalfOpen => "half-open",
        _ => "?",
    };

    private static string Named(IReadOnlyList<string> names, IReadOnlyList<int> weightsBps) =>
        string.Join(" ", weightsBps.Select((bps, i) => (i < names.Count ? names[i] : "#" + i.ToString(Inv)) + "=" + bps.ToString(Inv)));

    private static string Window(int seconds) => seconds % 60 == 0 ? (seconds / 60).ToString(Inv) + "m" : seconds.ToString(Inv) + "s";
    private static string Percent(double share) => (share * 100).ToString("0.##", Inv);
    // A rate over no answers is shown as '-', not as a misleading 0%.
    private static string RatePercent(WindowStats s, double share) => s.Succeeded + s.Failed + s.TimedOut == 0 ? "-" : Percent(share);
    private static string Rate(double perSecond) => perSecond.ToString("0.#", Inv);
    private static string Ms(long us) => us == 0 ? "-" : (us / 1000.0).ToString("0.0", Inv);
    private static string Fen(long fen) => fen.ToString(Inv);
    private static string Dash(string s) => s.Length == 0 ? "-" : s;
    private static string UnixMs(long ms) => ms <= 0 ? "-" : DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", Inv);

    /// <summary>`switchctl cluster`: one row per node asked.</summary>
    public static void Cluster(TextWriter w, IReadOnlyList<(string Address, NodeStatus? Reply, string? Failure)> nodes, bool stateHash = false)
    {
        string[] columns = ["ADDRESS", "NODE", "ROLE", "TERM", "JOURNAL", "APPLIED", "ACKED", "LAG", "REPLICATION", "PRIMARY"];
        var table = new TextTable(stateHash ? [.. columns, "STATE HASH (AT RECORDS)"] : columns);
        foreach (var (address, reply, failure) in nodes)
        {
            if (reply is null)
            {
                string[] none = [address, "-", "no answer", "-", "-", "-", "-", "-", "-", failure ?? ""];
                table.Row(stateHash ? [.. none, "-"] : none);
                continue;
            }
            bool primary = reply.Role == "primary";
            string[] row = [address, reply.Node.Length > 0 ? reply.Node : "-", reply.Role, reply.Term.ToString(), reply.JournalRecords.ToString(),
                reply.AppliedRecords.ToString(), primary ? reply.AcknowledgedRecords.ToString() : "-",
                primary ? $"{reply.LagRecords} ({reply.LagSeconds * 1000:F0} ms)" : "-", primary ? reply.Replication : "-",
                reply.Primary.Length > 0 ? reply.Primary : "-"];
            // Two nodes at the same record count must show the same hash (compare when the pair is idle).
            string hash = reply.StateHash.Length > 0 ? $"{reply.StateHash} ({reply.StateHashRecords})" : reply.StateHashError;
            table.Row(stateHash ? [.. row, hash] : row);
        }
        table.Write(w);
    }
}
