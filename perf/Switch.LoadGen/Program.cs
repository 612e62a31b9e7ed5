using System.CommandLine;
using Switch.Contracts.V1;
using System.Globalization;
using Switch.LoadGen;

// The load testers' harness.
//   run      starts the built switch on loopback (fresh data directory, free port), runs a profile, stops it (SIGTERM)
//   load     runs a profile against a switch already running
//   compare  prints two JSON reports side by side with ratios
return await Cli.Build().Parse(args).InvokeAsync();

internal static class Cli
{
    private static readonly Option<string> TransportOption = new("--transport") { Description = "stream (Transact streams) or unary", DefaultValueFactory = _ => "stream" };
    private static readonly Option<string> LoopOption = new("--loop") { Description = "open (a rate profile, timed from each intended send time) or closed (a fixed number in flight)", DefaultValueFactory = _ => "open" };
    private static readonly Option<string> ProfileOption = new("--profile") { Description = "open loop: constant, ramp, step or surge", DefaultValueFactory = _ => "constant" };
    private static readonly Option<double> RateOption = new("--rate") { Description = "constant: requests per second", DefaultValueFactory = _ => 1000 };
    private static readonly Option<double> BaseRateOption = new("--base-rate") { Description = "surge: the base rate per second", DefaultValueFactory = _ => 1000 };
    private static readonly Option<double> FactorOption = new("--factor") { Description = "surge: the peak as a multiple of the base", DefaultValueFactory = _ => 10 };
    private static readonly Option<string> RiseOption = new("--rise") { Description = "surge: base to peak within this", DefaultValueFactory = _ => "2s" };
    private static readonly Option<string> FallOption = new("--fall") { Description = "surge: peak back to base within this", DefaultValueFactory = _ => "2s" };
    private static readonly Option<double> FromOption = new("--from") { Description = "ramp: start rate per second", DefaultValueFactory = _ => 100 };
    private static readonly Option<double> ToOption = new("--to") { Description = "ramp: end rate per second", DefaultValueFactory = _ => 5000 };
    private static readonly Option<string?> StepsOption = new("--steps") { Description = "step: RATE:DURATION,... e.g. 1000:5s,5000:10s" };
    private static readonly Option<string> DurationOption = new("--duration") { Description = "run length (constant, ramp, surge, closed loop), e.g. 30s, 2m", DefaultValueFactory = _ => "10s" };
    private static readonly Option<int> StreamsOption = new("--streams") { Description = "stream: Transact streams (spread over the institutions)", DefaultValueFactory = _ => 4 };
    private static readonly Option<int> WindowOption = new("--window") { Description = "stream: requests outstanding per stream at most", DefaultValueFactory = _ => 4096 };
    private static readonly Option<int> BatchOption = new("--batch") { Description = "stream: requests per Transact message at most (the batch form; results read in batches too); 1 sends single messages", DefaultValueFactory = _ => 1 };
    private static readonly Option<int> ConcurrencyOption = new("--concurrency") { Description = "unary: callers (closed loop) or calls in flight at most (open loop)", DefaultValueFactory = _ => 64 };
    private static readonly Option<int> LanesOption = new("--lanes") { Description = "unary open loop: sending lanes (spread over the institutions)", DefaultValueFactory = _ => 3 };
    private static readonly Option<string?> InstitutionsOption = new("--institutions") { Description = "CODE=API_KEY,... (default the three demo institutions)" };
    private static readonly Option<string> BanksOption = new("--banks") { Description = "bank codes to spread payments and payouts over", DefaultValueFactory = _ => "102,103,105,308" };
    private static readonly Option<string> MixOption = new("--mix") { Description = "relative weights, e.g. payment=70,payout=15,refund=5,query=10", DefaultValueFactory = _ => "payment=70,payout=15,refund=5,query=10" };
    private static readonly Option<int> AccountsOption = new("--accounts") { Description = "distinct accounts per bank (seeded)", DefaultValueFactory = _ => WorkloadOptions.DefaultAccountPool };
    private static readonly Option<long> MinAmountOption = new("--min-amount-fen") { DefaultValueFactory = _ => 100 };
    private static readonly Option<long> MaxAmountOption = new("--max-amount-fen") { DefaultValueFactory = _ => 50_000 };
    private static readonly Option<int> SeedOption = new("--seed") { DefaultValueFactory = _ => 1 };
    private static readonly Option<string> GraceOption = new("--grace") { Description = "after the last send, how long answers may still come before the rest count as lost", DefaultValueFactory = _ => "15s" };
    private static readonly Option<string> OutOption = new("--out") { Description = "directory for the JSON and HTML reports", DefaultValueFactory = _ => Path.Combine(Path.GetTempPath(), "switch-loadgen-reports") };
    private static readonly Option<string?> NameOption = new("--name") { Description = "report file name stem (default: transport, profile and time)" };
    private static readonly Option<string> WarmupOption = new("--warmup") { Description = "an unmeasured run at the opening rate first (the JIT dominates short runs on 2 cores)", DefaultValueFactory = _ => "3s" };
    private static readonly Option<long> WarmTableOption = new("--warm") { Description = "transactions sent first on closed-loop streams, as fast as the switch takes them, not measured: e.g. 1100000 fills its table (2^20) so the run measures a full one", DefaultValueFactory = _ => 0 };
    private static readonly Option<double> P99TargetOption = new("--p99-target-ms") { Description = "surge: the p99 the recovery after the peak is judged against", DefaultValueFactory = _ => 20 };
    private static readonly Option<string> OperatorKeyOption = new("--operator-key") { Description = "operator key for the admin API's per-endpoint figures", DefaultValueFactory = _ => EndpointStatsSource.DefaultOperatorKey };

    public static RootCommand Build()
    {
        var root = new RootCommand("Switch load harness: open- and closed-loop load over the institution API, every result checked, reports in JSON and HTML.");
        Option[] load = [TransportOption, LoopOption, ProfileOption, RateOption, BaseRateOption, FactorOption, RiseOption, FallOption, FromOption, ToOption,
            StepsOption, DurationOption, StreamsOption, WindowOption, BatchOption, ConcurrencyOption, LanesOption, InstitutionsOption, BanksOption, MixOption,
            AccountsOption, MinAmountOption, MaxAmountOption, SeedOption, GraceOption, WarmupOption, WarmTableOption, P99TargetOption, OutOption, NameOption, OperatorKeyOption];

        var bankLatency = new Option<string>("--bank-latency") { Description = "the simulated banks' latency: 0, fixed:MS, uniform:MIN-MAX, lognormal:MEDIAN,SIGMA", DefaultValueFactory = _ => "0" };
        var bankFailure = new Option<double>("--bank-failure-rate") { Description = "the simulated banks' failure rate (0..1)", DefaultValueFactory = _ => 0 };
        var config = new Option<string?>("--config") { Description = "a switch configuration file to use instead of the generated one" };
        var keep = new Option<bool>("--keep-data") { Description = "keep the switch's temporary data directory" };
        var snapshotEvery = new Option<string>("--snapshot-every") { Description = "while the run is measured, a snapshot asked of the switch (its operator API) this long after the last one, e.g. 5s; 0: none", DefaultValueFactory = _ => "0" };
        var stallMs = new Option<int?>("--stall-ms") { Description = "the switch's stall watchdog threshold (stallReportMs; 0: off); default: the switch's" };
        var run = new Command("run", "Start the switch (the built Switch.Host) on loopback with a fresh journal, run a profile against it, stop it, report.");
        foreach (Option o in load.Concat([bankLatency, bankFailure, config, keep, snapshotEvery, stallMs])) run.Options.Add(o);
        run.SetAction((p, cancel) => Guarded(async () =>
        {
            RunOptions placeholder = Options(p, new Uri("http://127.0.0.1:1")); // Refuses bad options before a switch is started.
            double snapshotEverySeconds = Durations.ParseSeconds(p.GetValue(snapshotEvery)!, "--snapshot-every");
            var setup = new SwitchSetup { BankLatency = p.GetValue(bankLatency)!, BankFailureRate = p.GetValue(bankFailure), ConfigFile = p.GetValue(config), KeepData = p.GetValue(keep),
                StallReportMs = p.GetValue(stallMs) };
            if (!(setup.BankFailureRate is >= 0 and <= 1)) throw new ArgumentException($"--bank-failure-rate: 0 to 1, got {setup.BankFailureRate}");
            Console.WriteLine("starting the switch ...");
            await using SwitchProcess process = await SwitchProcess.StartAsync(setup, TextWriter.Null);
            Console.WriteLine($"switch: pid {process.Id}, institution API {process.InstitutionAddress}, admin API {process.AdminAddress?.ToString() ?? "(none announced)"}, data {process.DataDirectory}");
            SnapshotWindows? windows = snapshotEverySeconds > 0 ? new SnapshotWindows() : null;
            RunOptions options = placeholder with { Target = process.InstitutionAddress! };
            await Readiness.WaitForBanksAsync(options.Target, options.Workload, Console.Out);
            long warmed = await Readiness.WarmTableAsync(options, WarmCount(p), Console.Out);
            await Readiness.WarmUpAsync(options, Durations.ParseSeconds(p.GetValue(WarmupOption)!, "--warmup"), Console.Out);
            string operatorKey = p.GetValue(OperatorKeyOption)!;
            EndpointStatsSource.Snapshot before = await EndpointStatsSource.FetchAsync(process.AdminAddress, operatorKey);
            string? metricsBefore = await SwitchMetrics.FetchAsync(process.OperatorHttpAddress);
            JournalCommits? commitsBefore = metricsBefore is null ? null : JournalCommits.Parse(metricsBefore);
            SwitchHeap? heapBefore = metricsBefore is null ? null : SwitchHeap.Parse(metricsBefore);
            double? cpuBefore = process.CpuSeconds();
            MachineTimes? machineBefore = MachineTimes.Read();
            Dictionary<string, double> threadsBefore = process.CpuSecondsByThread();
            using var stopSnapshots = new CancellationTokenSource();
            Task<List<TakeSnapshotReply>> snapshots = snapshotEverySeconds > 0
                ? SnapshotTaker.RunAsync(process.AdminAddress ?? throw new InvalidOperationException("--snapshot-every: the switch announced no operator API"),
                    operatorKey, snapshotEverySeconds, windows!, Console.Out, stopSnapshots.Token)
                : Task.FromResult(new List<TakeSnapshotReply>());
            RunOutcome outcome = await new LoadRunner(options with { SnapshotWindows = windows }, Console.Out).RunAsync(cancel);
            await stopSnapshots.CancelAsync();
            List<TakeSnapshotReply> taken = await snapshots;
            if (snapshotEverySeconds > 0)
            {
                Console.WriteLine($"snapshots during the run: {taken.Count}; logic paused (µs): {string.Join(", ", taken.Select(t => t.PauseUs))}; " +
                    $"written in (ms): {string.Join(", ", taken.Select(t => t.WriteMs))}; archive checkpoint / views ready at (ms): " +
                    $"{string.Join(", ", taken.Select(t => $"{t.ArchiveCheckpointMs}/{t.ViewsMs}"))}; paced (ms): {string.Join(", ", taken.Select(t => t.PacedMs))}; " +
                    $"pages copied aside: {string.Join(", ", taken.Select(t => t.PagesCopiedAside))} (allocated: {string.Join(", ", taken.Select(t => t.AsideAllocatedPages))}); MiB: {string.Join(", ", taken.Select(t => t.Bytes >> 20))}; archive fold-over MiB: {string.Join(", ", taken.Select(t => t.ArchiveFoldOverBytes >> 20))}");
            }
            // Every snapshot the switch took (asked for or its own schedule, e.g. every 10 M events): one that fell inside
            // the run explains a second of high latency, so the record is shown whatever asked for it.
            foreach (string record in process.SnapshotRecords()) Console.WriteLine("  switch: " + record);
            double? cpu = process.CpuSeconds() - cpuBefore;
            MachineTimes? machineAfter = MachineTimes.Read();
            // Threads that ended during the run take their time with them: a group can only be read as at least this.
            Dictionary<string, double> byThread = process.CpuSecondsByThread()
                .Select(kv => (kv.Key, Seconds: Math.Round(kv.Value - threadsBefore.GetValueOrDefault(kv.Key), 2)))
                .Where(x => x.Seconds > 0).ToDictionary(x => x.Key, x => x.Seconds);
            string? metricsAfter = await SwitchMetrics.FetchAsync(process.OperatorHttpAddress);
            JournalCommits? commitsAfter = metricsAfter is null ? null : JournalCommits.Parse(metricsAfter);
            SwitchHeap? heapAfter = metricsAfter is null ? null : SwitchHeap.Parse(metricsAfter);
            var (lines, source) = EndpointStatsSource.Between(before, await EndpointStatsSource.FetchAsync(process.AdminAddress, operatorKey), process.AdminAddress, outcome.Seconds);
            int exit = await process.StopAsync();
            Console.WriteLine($"switch stopped (exit code {exit})");
            return Write(p, Report.Build(options, outcome, cpu, lines, source, p.GetValue(P99TargetOption)) with
            {
                SwitchCpuByThread = byThread, WarmTransactions = warmed, SwitchStalls = process.StallRecords(),
                Machine = MachineTimes.Between(machineBefore, machineAfter),
                Journal = commitsBefore is not null && commitsAfter is not null ? commitsAfter.Since(commitsBefore).Line(outcome.Seconds) : null,
                SwitchHeap = heapBefore is not null && heapAfter is not null ? heapAfter.Since(heapBefore).Line(outcome.Totals.Latency.Count, outcome.Seconds) : null,
                Snapshots = windows is null ? null : Report.SnapshotSplit.From(windows, outcome.Totals, System.Diagnostics.Stopwatch.GetTimestamp()),
            });
        }));
        root.Subcommands.Add(run);

        var target = new Option<string>("--target")
        {
            Description = "the switch's institution API, e.g. http://127.0.0.1:7001; a primary and its standbys comma-separated to follow the primary across a switch-over",
            Required = true,
        };
        var failoverTimeout = new Option<string>("--failover-timeout") { Description = "following several targets: how long a request looks for the primary", DefaultValueFactory = _ => "30s" };
        var admin = new Option<string?>("--admin") { Description = "the switch's operator API, for the per-endpoint split" };
        var loadCommand = new Command("load", "Run a profile against a switch already running.");
        foreach (Option o in load.Concat([target, failoverTimeout, admin])) loadCommand.Options.Add(o);
        loadCommand.SetAction((p, cancel) => Guarded(async () =>
        {
            IReadOnlyList<Uri> targets = ParseTargets(p.GetValue(target)!);
            RunOptions options = Options(p, targets[0]) with
            {
                FailoverTargets = targets.Skip(1).ToArray(),
                FailoverTimeoutMs = (int)(Durations.ParseSeconds(p.GetValue(failoverTimeout)!, "--failover-timeout") * 1000),
            };
            options.Validate();
            long warmed = await Readiness.WarmTableAsync(options, WarmCount(p), Console.Out);
            await Readiness.WarmUpAsync(options, Durations.ParseSeconds(p.GetValue(WarmupOption)!, "--warmup"), Console.Out);
            Uri? adminUri = p.GetValue(admin) is { } a ? new Uri(a) : null;
            string operatorKey = p.GetValue(OperatorKeyOption)!;
            EndpointStatsSource.Snapshot before = await EndpointStatsSource.FetchAsync(adminUri, operatorKey);
            MachineTimes? machineBefore = MachineTimes.Read();
            RunOutcome outcome = await new LoadRunner(options, Console.Out).RunAsync(cancel);
            MachineTimes? machineAfter = MachineTimes.Read();
            var (lines, source) = EndpointStatsSource.Between(before, await EndpointStatsSource.FetchAsync(adminUri, operatorKey), adminUri, outcome.Seconds);
            return Write(p, Report.Build(options, outcome, null, lines, source, p.GetValue(P99TargetOption)) with
            {
                WarmTransactions = warmed,
                Machine = MachineTimes.Between(machineBefore, machineAfter),
            });
        }));
        root.Subcommands.Add(loadCommand);

        var a = new Argument<string>("A.json");
        var b = new Argument<string>("B.json");
        var compare = new Command("compare", "Print two reports side by side with the ratio B/A.") { a, b };
        compare.SetAction((p, _) => Guarded(async () =>
        {
            string fa = p.GetValue(a)!, fb = p.GetValue(b)!;
            Report ra = Report.FromJson(await File.ReadAllTextAsync(fa), fa), rb = Report.FromJson(await File.ReadAllTextAsync(fb), fb);
            Console.Write(Report.CompareText(ra, fa, rb, fb));
            return 0;
        }));
        root.Subcommands.Add(compare);
        return root;
    }

    private static async Task<int> Guarded(Func<Task<int>> action)
    {
        try
        {
            return await action();
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException or UriFormatException or InvalidOperationException)
        {
            Console.Error.WriteLine($"loadgen: {e.Message}");
            return 2;
        }
    }

    /// <summary>"--target A[,B...]": one or more http(s) addresses of the same switch (its primary and standbys).</summary>
    internal static IReadOnlyList<Uri> ParseTargets(string text)
    {
        string[] parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length is 0 or > Targets.MaxAddresses)
            throw new ArgumentException($"--target: 1 to {Targets.MaxAddresses} comma-separated addresses, got '{text}'");
        return parts.Select(a => FailoverSignal.ParseAddress(a) ?? throw new ArgumentException($"--target: '{a}' is not an http:// or https:// address")).ToArray();
    }

    internal static long WarmCount(ParseResult p) => p.GetValue(WarmTableOption) is var n and >= 0 and <= OrderBook.MaxCapacity
        ? n : throw new ArgumentException($"--warm: 0 to {OrderBook.MaxCapacity} transactions, got {p.GetValue(WarmTableOption)}");

    internal static RunOptions Options(ParseResult p, Uri target)
    {
        WarmCount(p); // Refused with the other options, before a switch is started.
        double duration = Durations.ParseSeconds(p.GetValue(DurationOption)!, "--duration");
        Transport transport = p.GetValue(TransportOption) switch
        {
            "stream" => Transport.Stream,
            "unary" => Transport.Unary,
            var t => throw new ArgumentException($"--transport: stream or unary, got '{t}'"),
        };
        bool open = p.GetValue(LoopOption) switch
        {
            "open" => true,
            "closed" => false,
            var l => throw new ArgumentException($"--loop: open or closed, got '{l}'"),
        };
        RateProfile? profile = !open ? null : p.GetValue(ProfileOption) switch
        {
            "constant" => new ConstantProfile(p.GetValue(RateOption), duration),
            "ramp" => new RampProfile(p.GetValue(FromOption), p.GetValue(ToOption), duration),
            "step" => StepProfile.Parse(p.GetValue(StepsOption) ?? throw new ArgumentException("--steps: required by the step profile")),
            "surge" => SurgeProfile.Shaped(p.GetValue(BaseRateOption), duration, p.GetValue(FactorOption),
                Durations.ParseSeconds(p.GetValue(RiseOption)!, "--rise"), Durations.ParseSeconds(p.GetValue(FallOption)!, "--fall")),
            var x => throw new ArgumentException($"--profile: constant, ramp, step or surge, got '{x}'"),
        };
        var workload = new WorkloadOptions
        {
            Institutions = p.GetValue(InstitutionsOption) is { } inst ? WorkloadOptions.ParseInstitutions(inst) : WorkloadOptions.DemoInstitutions,
            Banks = p.GetValue(BanksOption)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries),
            MixWeights = WorkloadOptions.ParseMix(p.GetValue(MixOption)!),
            AccountPool = p.GetValue(AccountsOption),
            MinAmountFen = p.GetValue(MinAmountOption),
            MaxAmountFen = p.GetValue(MaxAmountOption),
            Seed = p.GetValue(SeedOption),
        };
        int lanes = transport == Transport.Stream ? p.GetValue(StreamsOption) : open ? p.GetValue(LanesOption) : p.GetValue(ConcurrencyOption);
        var options = new RunOptions
        {
            Target = target,
            Transport = transport,
            Profile = profile,
            ClosedSeconds = duration,
            Lanes = lanes,
            Window = p.GetValue(WindowOption),
            Batch = p.GetValue(BatchOption),
            MaxUnaryInFlight = p.GetValue(ConcurrencyOption),
            GraceSeconds = Durations.ParseSeconds(p.GetValue(GraceOption)!, "--grace"),
            Workload = workload,
        };
        options.Validate();
        return options;
    }

    private static int Write(ParseResult p, Report report)
    {
        string dir = p.GetValue(OutOption)!;
        Directory.CreateDirectory(dir);
        string stem = p.GetValue(NameOption) ?? string.Create(CultureInfo.InvariantCulture,
            $"{report.Transport}-{report.Loop}-{(p.GetValue(LoopOption) == "open" ? p.GetValue(ProfileOption) : "closed")}-{report.StartedUtc:yyyyMMdd-HHmmss}");
        string json = Path.GetFullPath(Path.Combine(dir, stem + ".json"));
        string html = Path.GetFullPath(Path.Combine(dir, stem + ".html"));
        File.WriteAllText(json, report.ToJson());
        File.WriteAllText(html, HtmlReport.Render(report));
        Console.WriteLine();
        Console.WriteLine(report.Headline());
        Console.WriteLine($"  by bank: {string.Join(", ", report.Banks.Select(b => $"{b.Bank} {b.Completed} (p99 {Report.Ms(b.Latency.P99Us)})"))}");
        Console.WriteLine($"  by endpoint: {(report.Endpoints.Count == 0 ? report.EndpointSource : string.Join(", ", report.Endpoints.Select(e => $"{e.Endpoint} {e.Requests}")))}");
        Console.WriteLine($"report: {json}");
        Console.WriteLine($"report: {html}");
        bool clean = report.Lost == 0 && report.Duplicated == 0 && report.Unexpected == 0;
        if (!clean) Console.WriteLine($"FAILED CHECK: lost {report.Lost}, duplicated {report.Duplicated}, unexpected {report.Unexpected}");
        return clean ? 0 : 1;
    }
}
