using System.Globalization;
using System.Text.Json.Serialization;
using System.Text.Json;
using System.Text;
using Switch.Telemetry;

namespace Switch.LoadGen;

/// <summary>A run's report: what was asked, what came back. Written as JSON (and HTML); read back by compare.</summary>
public sealed record Report
{
    public const int CurrentVersion = 1;

    public int Version { get; init; } = CurrentVersion;
    public DateTime StartedUtc { get; init; }
    public string Transport { get; init; } = "";
    /// <summary>"open" (a rate profile) or "closed" (a fixed number in flight).</summary>
    public string Loop { get; init; } = "";
    public string Profile { get; init; } = "";
    public Dictionary<string, string> Settings { get; init; } = new();
    public double Seconds { get; init; }
    public long Sent { get; init; }
    public long Completed { get; init; }
    public double ThroughputPerSecond { get; init; }
    public LatencySummary Latency { get; init; } = new(0, 0, 0, 0, 0, 0, 0);
    public Dictionary<string, long> Outcomes { get; init; } = new();
    public Dictionary<string, Dictionary<string, long>> OutcomesByKind { get; init; } = new();
    /// <summary>Rejects and call errors by code.</summary>
    public Dictionary<string, long> Codes { get; init; } = new();
    public long Lost { get; init; }
    public long Duplicated { get; init; }
    public long Unexpected { get; init; }
    public double MaxSendLagMs { get; init; }
    public double GeneratorCpuSeconds { get; init; }
    public double? SwitchCpuSeconds { get; init; }
    /// <summary>The switch's CPU seconds during the run by thread group (run command on Linux).</summary>
    public Dictionary<string, double> SwitchCpuByThread { get; init; } = new();
    /// <summary>The journal's group commits during the run (run command: the switch's /metrics), or null.</summary>
    public string? Journal { get; init; }
    /// <summary>The switch's heap during the run (run command: the switch's /metrics), or null.</summary>
    public string? SwitchHeap { get; init; }
    /// <summary>The switch's <c>event=stall</c> records since it started (run command: warm-up included), each as logged.</summary>
    public List<string>? SwitchStalls { get; init; }
    /// <summary>The whole machine during the run (<see cref="MachineTimes"/>); null where it cannot be read.</summary>
    public string? Machine { get; init; }
    public long GeneratorAllocatedBytes { get; init; }
    /// <summary>Transactions sent before the measured window to fill the switch's table (--warm), not counted here.</summary>
    public long WarmTransactions { get; init; }
    public List<BankLine> Banks { get; init; } = new();
    public List<EndpointLine> Endpoints { get; init; } = new();
    /// <summary>Where the per-endpoint split came from, or why there is none.</summary>
    public string EndpointSource { get; init; } = "";
    public List<SecondPoint> Series { get; init; } = new();
    /// <summary>The p99 the surge is judged against, and how long after the peak ended the per-second p99 came
    /// back under it for good (null: never, or not a surge).</summary>
    public double P99TargetMs { get; init; }
    public double? SurgeRecoverySeconds { get; init; }
    /// <summary>Following several addresses: the switch-overs gone through, each finished one's time with no successful
    /// answer (ms, from the last success before it to the first on the primary after it), and the moves between addresses.</summary>
    public int Failovers { get; init; }
    public List<double> FailoverGapsMs { get; init; } = new();
    /// <summary>What began each switch-over: which call failed on which address, with its status.</summary>
    public List<string> FailoverCauses { get; init; } = new();
    public int TargetMoves { get; init; }
    /// <summary>Requests a switch-over left unsettled: settled by a Query on the primary, or sent again (never taken).</summary>
    public long SettledByQuery { get; init; }
    public long SentAgain { get; init; }
    /// <summary>With snapshots taken during the run (run --snapshot-every): the latency of requests sent while one was
    /// taken against the rest of the run. Null: none asked for.</summary>
    public SnapshotSplit? Snapshots { get; init; }

    /// <param name="Taken">Snapshots taken during the run.</param>
    /// <param name="Seconds">How long they took in all (from the harness's ask to the switch's answer).</param>
    /// <param name="During">Requests whose intended send time fell while a snapshot was taken.</param>
    /// <param name="Outside">The rest of the run's requests.</param>
    public sealed record SnapshotSplit(int Taken, double Seconds, LatencySummary During, LatencySummary Outside)
    {
        public static SnapshotSplit From(SnapshotWindows windows, ResultRecorder.Totals totals, long nowTicks) =>
            new(windows.Count, Math.Round(windows.Seconds(nowTicks), 2), totals.DuringSnapshot.Summary(), totals.OutsideSnapshot.Summary());

        /// <summary>p99 during over p99 outside (null when either side has no request).</summary>
        public double? P99Ratio => During.Count == 0 || Outside.Count == 0 || Outside.P99Us == 0 ? null : (double)During.P99Us / Outside.P99Us;

        public string Line() => string.Create(CultureInfo.InvariantCulture,
            $"{Taken} taken, {Seconds:F1} s in all; sent during one: {During.Count} requests, p99 {Ms(During.P99Us)} p99.9 {Ms(During.P999Us)}; " +
            $"outside: {Outside.Count}, p99 {Ms(Outside.P99Us)} p99.9 {Ms(Outside.P999Us)}; p99 ratio {(P99Ratio is { } r ? r.ToString("0.00", CultureInfo.InvariantCulture) : "-")}");
    }

    /// <summary>Seconds from peakEndSeconds until the per-second p99 is at or under the target and stays there
    /// (0 if it never went over); null if it never comes back by the end.</summary>
    public static double? RecoverySeconds(IReadOnlyList<SecondPoint> series, double peakEndSeconds, double targetMs)
    {
        long targetUs = (long)(targetMs * 1000);
        int recoveredAt = -1;
        foreach (SecondPoint p in series)
        {
            if (p.Second <= peakEndSeconds || p.Completed == 0) continue; // Point k covers second (k-1, k].
            if (p.P99Us > targetUs) recoveredAt = -1;
            else if (recoveredAt < 0) recoveredAt = p.Second;
        }
        return recoveredAt < 0 ? null : Math.Max(0, recoveredAt - 1 - peakEndSeconds);
    }

    public sealed record BankLine(string Bank, long Completed, Dictionary<string, long> Outcomes, LatencySummary Latency);

    /// <summary>One endpoint as the switch counted it (admin GetStats, longest window).</summary>
    public sealed record EndpointLine(string Bank, string Endpoint, long Requests, long Succeeded, long Failed, long TimedOut, long P50Us, long P99Us);

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static Report FromJson(string json, string source)
    {
        Report? report;
        try
        {
            report = JsonSerializer.Deserialize<Report>(json, Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not a load report: {e.Message}");
        }
        if (report is null || report.Version != CurrentVersion) throw new InvalidDataException($"{source}: not a version {CurrentVersion} load report");
        return report;
    }

    public static Report Build(RunOptions options, RunOutcome run, double? switchCpuSeconds, IReadOnlyList<EndpointLine> endpoints, string endpointSource, double p99TargetMs = 20)
    {
        long[,,] counts = run.Totals.Counts;
        int kinds = counts.GetLength(0), banks = counts.GetLength(1), outcomes = counts.GetLength(2);
        Dictionary<string, long> Sum(Func<int, int, bool> take)
        {
            var d = new Dictionary<string, long>();
            for (int o = 0; o < outcomes; o++)
            {
                long n = 0;
                for (int k = 0; k < kinds; k++)
                for (int b = 0; b < banks; b++)
                    if (take(k, b)) n += counts[k, b, o];
                if (n > 0) d[((Outcome)o).ToString()] = n;
            }
            return d;
        }
        long completed = run.Totals.Latency.Count;
        var settings = new Dictionary<string, string>
        {
            ["target"] = string.Join(",", new[] { options.Target }.Concat(options.FailoverTargets)),
            ["lanes"] = options.Lanes.ToString(CultureInfo.InvariantCulture),
            ["window"] = options.Transport == global::Switch.LoadGen.Transport.Stream ? options.Window.ToString(CultureInfo.InvariantCulture) : "",
            ["batch"] = options.Transport == global::Switch.LoadGen.Transport.Stream && options.Batch > 1 ? options.Batch.ToString(CultureInfo.InvariantCulture) : "",
            ["maxUnaryInFlight"] = options.Transport == global::Switch.LoadGen.Transport.Unary && options.OpenLoop ? options.MaxUnaryInFlight.ToString(CultureInfo.InvariantCulture) : "",
            ["institutions"] = string.Join(",", options.Workload.Institutions.Select(i => i.Code)),
            ["banks"] = string.Join(",", options.Workload.Banks),
            ["mix"] = string.Join(",", new[] { "payment", "payout", "refund", "query" }.Zip(options.Workload.MixWeights, (k, w) => $"{k}={w}")),
            ["amountsFen"] = $"{options.Workload.MinAmountFen}..{options.Workload.MaxAmountFen}",
            ["accounts"] = options.Workload.AccountPool.ToString(CultureInfo.InvariantCulture),
            ["seed"] = options.Workload.Seed.ToString(CultureInfo.InvariantCulture),
            ["graceSeconds"] = options.GraceSeconds.ToString(CultureInfo.InvariantCulture),
            ["processors"] = Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture),
        };
        return new Report
        {
            StartedUtc = run.StartedUtc,
            Transport = options.Transport.ToString().ToLowerInvariant(),
            Loop = options.OpenLoop ? "open" : "closed",
            Profile = options.Profile?.Describe() ?? $"closed loop, {options.Lanes} {(options.Transport == global::Switch.LoadGen.Transport.Stream ? $"streams x {options.Window} window" : "callers")} for {options.ClosedSeconds:0.###} s",
            Settings = settings.Where(kv => kv.Value.Length > 0).ToDictionary(),
            Seconds = Math.Round(run.Seconds, 3),
            Sent = run.Sent,
            Completed = completed,
            ThroughputPerSecond = run.Seconds > 0 ? Math.Round(completed / run.Seconds, 1) : 0,
            Latency = run.Totals.Latency.Summary(),
            Outcomes = Sum((_, _) => true),
            OutcomesByKind = Enumerable.Range(0, kinds).Select(k => (Name: ((Kind)k).ToString(), Counts: Sum((kk, _) => kk == k)))
                .Where(x => x.Counts.Count > 0).ToDictionary(x => x.Name, x => x.Counts),
            Codes = run.Codes.OrderByDescending(kv => kv.Value).ToDictionary(),
            Lost = run.Lost,
            Duplicated = run.Duplicated,
            Unexpected = run.Unexpected,
            MaxSendLagMs = Math.Round(run.MaxSendLagMs, 2),
            GeneratorCpuSeconds = Math.Round(run.GeneratorCpuSeconds, 2),
            GeneratorAllocatedBytes = run.GeneratorAllocatedBytes,
            SwitchCpuSeconds = switchCpuSeconds is { } cpu ? Math.Round(cpu, 2) : null,
            Banks = Enumerable.Range(0, banks).Select(b => new BankLine(options.Workload.Banks[b], run.Totals.ByBank[b].Count, Sum((_, bb) => bb == b), run.Totals.ByBank[b].Summary())).ToList(),
            Endpoints = endpoints.ToList(),
            EndpointSource = endpointSource,
            Series = run.Series.ToList(),
            P99TargetMs = p99TargetMs,
            SurgeRecoverySeconds = options.Profile is SurgeProfile surge ? RecoverySeconds(run.Series, surge.PeakEndSeconds, p99TargetMs) : null,
            Failovers = run.Failovers,
            FailoverGapsMs = run.FailoverGapsMs.ToList(),
            FailoverCauses = run.FailoverCauses.ToList(),
            TargetMoves = run.TargetMoves,
            SettledByQuery = run.SettledByQuery,
            SentAgain = run.SentAgain,
        };
    }

    /// <summary>The headline: a few lines for the console.</summary>
    public string Headline()
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"{Transport} {Loop} loop: {Profile}{(WarmTransactions > 0 ? $", after {WarmTransactions} warm transactions (not counted)" : "")}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  completed {Completed} of {Sent} sent in {Seconds:F2} s = {ThroughputPerSecond:F0} per second");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  latency p50 {Ms(Latency.P50Us)} p90 {Ms(Latency.P90Us)} p99 {Ms(Latency.P99Us)} p99.9 {Ms(Latency.P999Us)} max {Ms(Latency.MaxUs)} (from intended send time)");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  outcomes: {string.Join(", ", Outcomes.Select(kv => $"{kv.Key} {kv.Value}"))}; lost {Lost}, duplicated {Duplicated}, unexpected {Unexpected}");
        if (Profile.StartsWith("surge", StringComparison.Ordinal))
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"  surge: p99 back under {P99TargetMs:0.#} ms {(SurgeRecoverySeconds is { } r ? $"{r:0.#} s after the peak" : "never, by the end of the run")}");
        }
        if (FailoverSummary() is { } failovers) sb.AppendLine("  failovers: " + failovers);
        if (Snapshots is { } snapshots) sb.AppendLine("  snapshots: " + snapshots.Line());
        if (Codes.Count > 0) sb.AppendLine(CultureInfo.InvariantCulture, $"  codes: {string.Join(", ", Codes.Take(6).Select(kv => $"{kv.Key} {kv.Value}"))}");
        sb.Append(CultureInfo.InvariantCulture, $"  generator CPU {GeneratorCpuSeconds:F1} s ({(Completed > 0 ? GeneratorCpuSeconds * 1e6 / Completed : 0):F1} us/tx)");
        if (SwitchCpuSeconds is { } cpu) sb.Append(CultureInfo.InvariantCulture, $", switch CPU {cpu:F1} s ({(Completed > 0 ? cpu * 1e6 / Completed : 0):F1} us/tx)");
        if (SwitchCpuSeconds is { } both && Seconds > 0) sb.Append(CultureInfo.InvariantCulture, $", cores used {(GeneratorCpuSeconds + both) / Seconds:F2}");
        sb.Append(CultureInfo.InvariantCulture, $", max send lag {MaxSendLagMs:F1} ms");
        sb.AppendLine();
        if (Machine is not null) sb.AppendLine("  machine: " + Machine);
        sb.Append(CultureInfo.InvariantCulture, $"  generator allocated {(Completed > 0 ? GeneratorAllocatedBytes / (double)Completed : 0):F0} bytes/tx");
        if (SwitchCpuByThread.Count > 0)
        {
            sb.AppendLine();
            sb.Append("  switch CPU by thread: " + string.Join(", ", SwitchCpuByThread.OrderByDescending(kv => kv.Value).Select(kv =>
                string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value:F1} s ({(Completed > 0 ? kv.Value * 1e6 / Completed : 0):F1} us/tx)"))));
        }
        if (Journal is not null)
        {
            sb.AppendLine();
            sb.Append("  journal: " + Journal);
        }
        if (SwitchHeap is not null)
        {
            sb.AppendLine();
            sb.Append("  switch heap: " + SwitchHeap);
        }
        if (SwitchStalls is not null)
        {
            sb.AppendLine();
            sb.Append(CultureInfo.InvariantCulture, $"  switch stalls: {SwitchStalls.Count} (event=stall records since the switch started, printed as they came)");
        }
        return sb.ToString();
    }

    /// <summary>The switch-overs in a line, or null when there were none.</summary>
    public string? FailoverSummary() => Failovers == 0 ? null : string.Create(CultureInfo.InvariantCulture,
        $"{Failovers} ({TargetMoves} moves between addresses; {SettledByQuery} settled by query, {SentAgain} sent again); " +
        $"time with no success: {(FailoverGapsMs.Count == 0 ? "none finished" : string.Join(", ", FailoverGapsMs.Select(g => $"{g:0} ms")))}; " +
        $"begun by: {string.Join("; ", FailoverCauses)}");

    internal static string Ms(long us) => (us / 1000.0).ToString("F2", CultureInfo.InvariantCulture) + " ms";

    /// <summary>The figures compared by compare: name and value.</summary>
    public IEnumerable<(string Name, double Value)> Figures()
    {
        yield return ("throughput/s", ThroughputPerSecond);
        yield return ("completed", Completed);
        yield return ("sent", Sent);
        yield return ("p50 ms", Latency.P50Us / 1000.0);
        yield return ("p90 ms", Latency.P90Us / 1000.0);
        yield return ("p99 ms", Latency.P99Us / 1000.0);
        yield return ("p99.9 ms", Latency.P999Us / 1000.0);
        yield return ("max ms", Latency.MaxUs / 1000.0);
        if (Snapshots is { } snapshots)
        {
            yield return ("snapshot p99 ms", snapshots.During.P99Us / 1000.0);
            yield return ("snapshot p99.9 ms", snapshots.During.P999Us / 1000.0);
            yield return ("no-snapshot p99 ms", snapshots.Outside.P99Us / 1000.0);
            yield return ("no-snapshot p99.9 ms", snapshots.Outside.P999Us / 1000.0);
        }
        foreach (string o in Enum.GetNames<Outcome>()) yield return (o.ToLowerInvariant(), Outcomes.GetValueOrDefault(o));
        yield return ("lost", Lost);
        yield return ("duplicated", Duplicated);
        yield return ("generator CPU us/tx", Completed > 0 ? GeneratorCpuSeconds * 1e6 / Completed : 0);
        yield return ("generator bytes/tx", Completed > 0 ? GeneratorAllocatedBytes / (double)Completed : 0);
        if (SwitchCpuSeconds is { } cpu) yield return ("switch CPU us/tx", Completed > 0 ? cpu * 1e6 / Completed : 0);
    }

    /// <summary>Two reports side by side: each figure of A and B and the ratio B/A ("-" when A is 0).</summary>
    public static IReadOnlyList<(string Name, double A, double B, double? Ratio)> Compare(Report a, Report b)
    {
        Dictionary<string, double> theirs = b.Figures().ToDictionary(f => f.Name, f => f.Value);
        return a.Figures().Where(f => theirs.ContainsKey(f.Name))
            .Select(f => (f.Name, f.Value, theirs[f.Name], f.Value == 0 ? (double?)null : theirs[f.Name] / f.Value)).ToList();
    }

    public static string CompareText(Report a, string nameA, Report b, string nameB)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"A: {nameA}: {a.Transport} {a.Loop}, {a.Profile}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"B: {nameB}: {b.Transport} {b.Loop}, {b.Profile}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"{"figure",-22}{"A",16}{"B",16}{"B/A",10}");
        foreach ((string name, double va, double vb, double? ratio) in Compare(a, b))
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"{name,-22}{va,16:0.##}{vb,16:0.##}{(ratio is { } r ? r.ToString("0.000", CultureInfo.InvariantCulture) : "-"),10}");
        }
        return sb.ToString();
    }
}
