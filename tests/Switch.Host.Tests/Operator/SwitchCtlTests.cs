using Google.Protobuf;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Operator;
using Switch.Contracts.V1;
using Switch.Host.Tests.EndToEnd;
using static Switch.Host.Tests.Operator.OperatorTestKit;

namespace Switch.Host.Tests.Operator;

/// <summary>One real switch for the class; each test works on its own bank so the order of tests never matters.</summary>
public sealed class OperatorSwitchFixture : IAsyncLifetime
{
    public RunningSwitch Switch { get; private set; } = null!;
    public async Task InitializeAsync() => Switch = await StartSwitchAsync();
    public async Task DisposeAsync() => await Switch.DisposeAsync();
}

/// <summary>switchctl run in-process against a real switch over loopback: what operators type, what they see, the exit codes.</summary>
public sealed class SwitchCtlTests(OperatorSwitchFixture fixture) : IClassFixture<OperatorSwitchFixture>
{
    private RunningSwitch Sw => fixture.Switch;

    [Fact]
    public async Task Help_exits_zero_and_teaches_every_command_with_an_example()
    {
        CtlRun run = await RawAsync(["--help"]);
        Assert.True(run.ExitCode == 0, run.ToString());
        foreach (string command in new[] { "whoami", "banks", "weights", "ramp", "drain", "down", "up", "audit", "stats", "alerts", "batch", "batch close", "batch list", "settlement", "breaks", "report", "explain" })
            Assert.Contains(command, run.Out);
        foreach (string exitCode in new[] { "0 ok", "1 refused", "2 usage", "3 switch unreachable", "4 not allowed" })
            Assert.Contains(exitCode, run.Out);
        Assert.Contains("Example: switchctl weights 102", run.Out);

        CtlRun weightsHelp = await RawAsync(["weights", "--help"]);
        Assert.Equal(0, weightsHelp.ExitCode);
        Assert.Contains("--reason", weightsHelp.Out);
        Assert.Contains("NAME=BPS", weightsHelp.Out);
    }

    [Fact]
    public async Task Bad_arguments_exit_two_before_any_call()
    {
        // Nothing listens at this address: a call would end in exit 3, so exit 2 proves the CLI refused locally.
        string nowhere = ClosedAddress();
        string[][] cases =
        [
            ["weights", "102", "ICBC-DC1=x", "--reason", "r"],
            ["weights", "102", "ICBC-DC1=9500", "ICBC-DC2=500"],                    // no --reason
            ["weights", "102", "ICBC-DC1=12.345%", "--reason", "r"],                 // not whole basis points
            ["weights", "102", "ICBC-DC1=-5", "--reason", "r"],
            ["weights", "102", "ICBC-DC1=5000", "ICBC-DC1=5000", "--reason", "r"],   // the same endpoint twice
            ["weights", "12", "a=10000", "--reason", "r"],                           // not a bank code
            ["ramp", "102", "ICBC-DC1=5000", "ICBC-DC2=5000", "--steps", "5", "--reason", "r"], // no --over
            ["ramp", "102", "ICBC-DC1=5000", "ICBC-DC2=5000", "--steps", "0", "--over", "1m", "--reason", "r"],
            ["ramp", "102", "ICBC-DC1=5000", "ICBC-DC2=5000", "--steps", "5", "--over", "25h", "--reason", "r"],
            ["drain", "102", "--reason", "r"],                                        // no endpoint
            ["stats", "--watch", "--interval", "10ms"],
            ["audit", "--limit", "5000"],
            ["breaks", Path.Combine(Path.GetTempPath(), "no-such-records-" + Guid.NewGuid().ToString("N") + ".csv")],
            ["frobnicate"],
        ];
        foreach (string[] args in cases)
        {
            CtlRun run = await RawAsync(["--admin", nowhere, "--key", OperatorKey, .. args]);
            Assert.True(run.ExitCode == 2, string.Join(' ', args) + "\n" + run);
            Assert.StartsWith("switchctl: usage: ", run.Err);
        }

        // No key at all, and a malformed admin address: usage errors too.
        Assert.Equal(2, (await RawAsync(["--admin", nowhere, "banks"])).ExitCode);
        Assert.Equal(2, (await RawAsync(["--admin", "not a url", "--key", OperatorKey, "banks"])).ExitCode);
    }

    [Fact]
    public async Task An_unreachable_switch_exits_three()
    {
        CtlRun run = await RawAsync(["--admin", ClosedAddress(), "--key", OperatorKey, "banks"]);
        Assert.True(run.ExitCode == 3, run.ToString());
        Assert.StartsWith("switchctl: UNAVAILABLE: banks: ", run.Err);
    }

    [Fact]
    public async Task The_environment_supplies_the_address_and_the_key()
    {
        var environment = new Dictionary<string, string>
        {
            ["SWITCH_ADMIN_URL"] = Sw.Host.AdminGrpcAddress.ToString(), ["SWITCH_OPERATOR_KEY"] = ViewerKey,
        };
        CtlRun run = await RawAsync(["whoami"], environment: environment);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("viewer (read", run.Out);
    }

    [Fact]
    public async Task A_wrong_key_or_a_read_only_operator_changing_something_exits_four_and_changes_nothing()
    {
        int[] before = Weights(await BankAsync(Sw, "105"));

        CtlRun wrong = await CtlAsync(Sw, "not-an-operator-key", "banks");
        Assert.True(wrong.ExitCode == 4, wrong.ToString());
        Assert.StartsWith("switchctl: UNAUTHENTICATED: ", wrong.Err);

        CtlRun viewer = await CtlAsync(Sw, ViewerKey, "weights", "105", "CCB-DC1=5000", "CCB-DC2=5000", "--reason", "viewer tries");
        Assert.True(viewer.ExitCode == 4, viewer.ToString());
        Assert.StartsWith("switchctl: PERMISSION_DENIED: ", viewer.Err);

        // The viewer may look.
        CtlRun look = await CtlAsync(Sw, ViewerKey, "banks", "105");
        Assert.True(look.ExitCode == 0, look.ToString());
        Assert.Equal(before, Weights(await BankAsync(Sw, "105")));
    }

    [Fact]
    public async Task Banks_lists_every_bank_with_its_endpoints_weights_and_states()
    {
        CtlRun run = await CtlAsync(Sw, OperatorKey, "banks");
        Assert.True(run.ExitCode == 0, run.ToString());
        string[] header = run.Out.Split('\n')[0].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["BANK", "ENDPOINT", "WEIGHT%", "STATE", "REACHABLE", "BREAKER", "IN-FLIGHT", "REQ/S", "SUCCESS%", "TIMEOUT%", "P50MS", "P99MS"], header);
        foreach (string endpoint in new[] { "ICBC-DC1", "ICBC-DC2", "ABC-DC1", "CCB-DC2", "CMB-DC1" }) Assert.Contains(endpoint, run.Out);

        // --json is the reply itself, in proto JSON, for scripts.
        CtlRun json = await CtlAsync(Sw, OperatorKey, "--json", "banks", "308");
        Assert.True(json.ExitCode == 0, json.ToString());
        ListBanksReply parsed = JsonParser.Default.Parse<ListBanksReply>(json.Out);
        BankView cmb = Assert.Single(parsed.Banks);
        Assert.Equal("308", cmb.Bank);
        Assert.Equal(["CMB-DC1", "CMB-DC2"], cmb.Endpoints.Select(e => e.Name));
        Assert.Equal(10_000, cmb.Endpoints.Sum(e => e.WeightBps));
    }

    [Fact]
    public async Task Weights_change_the_banks_routing_and_banks_shows_it()
    {
        CtlRun set = await CtlAsync(Sw, OperatorKey, "weights", "102", "ICBC-DC1=80%", "ICBC-DC2=2000", "--reason", "cli test: 20% to DC2");
        Assert.True(set.ExitCode == 0, set.ToString());
        Assert.Contains("recorded as audit #", set.Out);
        Assert.Equal(new[] { 8_000, 2_000 }, Weights(await BankAsync(Sw, "102")));

        CtlRun banks = await CtlAsync(Sw, OperatorKey, "banks", "102");
        Assert.True(banks.ExitCode == 0, banks.ToString());
        string dc2 = banks.Out.Split('\n').Single(l => l.Contains("ICBC-DC2"));
        Assert.Equal(["102", "ICBC-DC2", "20"], dc2.Split(' ', StringSplitOptions.RemoveEmptyEntries).Take(3));
    }

    [Fact]
    public async Task Weights_that_do_not_sum_to_ten_thousand_or_name_no_endpoint_are_refused_and_change_nothing()
    {
        int[] before = Weights(await BankAsync(Sw, "103"));

        CtlRun sum = await CtlAsync(Sw, OperatorKey, "weights", "103", "ABC-DC1=5000", "ABC-DC2=4000", "--reason", "bad sum");
        Assert.True(sum.ExitCode == 1, sum.ToString());
        Assert.StartsWith("switchctl: INVALID_ARGUMENT: weights: ", sum.Err);

        CtlRun unknown = await CtlAsync(Sw, OperatorKey, "weights", "103", "ABC-DC1=5000", "ABC-DC9=5000", "--reason", "unknown endpoint");
        Assert.True(unknown.ExitCode == 1, unknown.ToString());
        Assert.Contains("INVALID_ARGUMENT", unknown.Err);

        CtlRun bank = await CtlAsync(Sw, OperatorKey, "drain", "999", "X", "--reason", "no such bank");
        Assert.True(bank.ExitCode == 1, bank.ToString());

        Assert.Equal(before, Weights(await BankAsync(Sw, "103")));
        CtlRun audit = await CtlAsync(Sw, OperatorKey, "audit", "--bank", "103");
        Assert.DoesNotContain("bad sum", audit.Out);
        Assert.DoesNotContain("unknown endpoint", audit.Out);
    }

    [Fact]
    public async Task Drain_then_up_and_the_audit_log_has_both_with_operator_and_reason()
    {
        string reason = "drain test " + Guid.NewGuid().ToString("N")[..8];
        CtlRun drain = await CtlAsync(Sw, OperatorKey, "drain", "105", "CCB-DC2", "--reason", reason);
        Assert.True(drain.ExitCode == 0, drain.ToString());
        Assert.Equal(EndpointAdminState.Draining, (await BankAsync(Sw, "105")).Endpoints.Single(e => e.Name == "CCB-DC2").State);
        CtlRun shown = await CtlAsync(Sw, OperatorKey, "banks", "105");
        Assert.Contains("draining", shown.Out.Split('\n').Single(l => l.Contains("CCB-DC2")));

        CtlRun up = await CtlAsync(Sw, OperatorKey, "up", "105", "CCB-DC2", "--reason", reason + " over");
        Assert.True(up.ExitCode == 0, up.ToString());
        Assert.Equal(EndpointAdminState.Up, (await BankAsync(Sw, "105")).Endpoints.Single(e => e.Name == "CCB-DC2").State);

        CtlRun audit = await CtlAsync(Sw, OperatorKey, "audit", "--bank", "105");
        Assert.True(audit.ExitCode == 0, audit.ToString());
        string[] lines = audit.Out.Split('\n');
        string drained = lines.Single(l => l.Contains($"\"{reason}\""));
        Assert.Contains("  ops  STATE  bank 105 endpoint CCB-DC2  draining", drained);
        string upLine = lines.Single(l => l.Contains($"\"{reason} over\""));
        Assert.Contains("  ops  STATE  bank 105 endpoint CCB-DC2  up", upLine);

        // --json: the entries themselves.
        CtlRun json = await CtlAsync(Sw, OperatorKey, "--json", "audit", "--bank", "105");
        AuditReply entries = JsonParser.Default.Parse<AuditReply>(json.Out);
        AuditEntry entry = entries.Entries.Single(e => e.Reason == reason);
        Assert.Equal("ops", entry.OperatorId);
        Assert.Equal("STATE", entry.Kind);
        Assert.Equal(EndpointAdminState.Draining, entry.State);
    }

    [Fact]
    public async Task A_ramp_reaches_its_target_in_its_steps_and_audit_follow_sees_them()
    {
        CtlRun ramp = await CtlAsync(Sw, OperatorKey, "ramp", "308", "CMB-DC1=50%", "CMB-DC2=50%", "--steps", "2", "--over", "1s", "--reason", "ramp test");
        Assert.True(ramp.ExitCode == 0, ramp.ToString());
        Assert.Contains("ramp of bank 308 started", ramp.Out);

        // Follow the audit log until the ramp is done; stopped on content (as Ctrl-C would), bounded by the run timeout.
        CtlRun follow = await RawAsync(["--admin", Sw.Host.AdminGrpcAddress.ToString(), "--key", OperatorKey, "audit", "--bank", "308", "--follow"],
            (text, cts) => { if (text.Contains("RAMP_DONE")) cts.Cancel(); });
        Assert.True(follow.ExitCode == 0, follow.ToString());
        Assert.Contains("RAMP_STARTED", follow.Out);
        // The start shows where the ramp goes, not only where it starts from.
        Assert.Matches(@"RAMP_STARTED.*CMB-DC1=\d+ CMB-DC2=\d+ -> CMB-DC1=5000 CMB-DC2=5000", follow.Out);
        Assert.Contains("RAMP_DONE", follow.Out);
        Assert.Equal(new[] { 5_000, 5_000 }, Weights(await BankAsync(Sw, "308")));
    }

    [Fact]
    public async Task Whoami_stats_and_alerts_answer()
    {
        CtlRun me = await CtlAsync(Sw, OperatorKey, "whoami");
        Assert.True(me.ExitCode == 0, me.ToString());
        Assert.StartsWith("ops (operate", me.Out);

        await PayAsync(Sw, RunningSwitch.Payment("STATS-1", 1_000));
        CtlRun stats = await CtlAsync(Sw, OperatorKey, "--json", "stats", "102");
        Assert.True(stats.ExitCode == 0, stats.ToString());
        BankStats icbc = Assert.Single(JsonParser.Default.Parse<StatsReply>(stats.Out).Banks);
        Assert.Equal([10, 60, 900], icbc.Windows.Select(w => w.WindowSeconds));
        Assert.True(icbc.Windows.Single(w => w.WindowSeconds == 900).Requests >= 1);

        CtlRun table = await CtlAsync(Sw, OperatorKey, "stats", "102");
        Assert.True(table.ExitCode == 0, table.ToString());
        Assert.Contains("ICBC-DC1", table.Out);

        // --watch prints fresh figures until stopped (here: once two rounds are printed).
        CtlRun watch = await RawAsync(["--admin", Sw.Host.AdminGrpcAddress.ToString(), "--key", OperatorKey, "stats", "102", "--watch", "--interval", "250ms"],
            (text, cts) => { if (text.Split("BANK").Length > 2) cts.Cancel(); });
        Assert.True(watch.ExitCode == 0, watch.ToString());
        Assert.True(watch.Out.Split("BANK").Length > 2, watch.ToString());

        CtlRun alerts = await CtlAsync(Sw, OperatorKey, "alerts");
        Assert.True(alerts.ExitCode == 0, alerts.ToString());
    }
    [Fact]
    public async Task The_real_switchctl_process_changes_weights_and_returns_its_exit_codes()
    {
        CtlRun set = await ProcessAsync("--admin", Sw.Host.AdminGrpcAddress.ToString(), "--key", OperatorKey,
            "weights", "105", "CCB-DC1=60%", "CCB-DC2=40%", "--reason", "switchctl as a process");
        Assert.True(set.ExitCode == 0, set.ToString());
        Assert.Contains("recorded as audit #", set.Out);
        Assert.Equal(new[] { 6_000, 4_000 }, Weights(await BankAsync(Sw, "105")));

        CtlRun usage = await ProcessAsync("--admin", ClosedAddress(), "--key", OperatorKey, "weights", "105", "CCB-DC1=60%");
        Assert.True(usage.ExitCode == 2, usage.ToString());
        CtlRun unreachable = await ProcessAsync("--admin", ClosedAddress(), "--key", OperatorKey, "banks");
        Assert.True(unreachable.ExitCode == 3, unreachable.ToString());
        Assert.StartsWith("switchctl: UNAVAILABLE: ", unreachable.Err);
        CtlRun denied = await ProcessAsync("--admin", Sw.Host.AdminGrpcAddress.ToString(), "--key", ViewerKey, "up", "105", "CCB-DC1", "--reason", "viewer");
        Assert.True(denied.ExitCode == 4, denied.ToString());
    }

    /// <summary>`dotnet switchctl.dll ...` (built beside the tests), with no SWITCH_* variables of the test's own.</summary>
    private static async Task<CtlRun> ProcessAsync(params string[] args)
    {
        string dll = typeof(SwitchCtl).Assembly.Location;
        Assert.True(File.Exists(Path.ChangeExtension(dll, ".runtimeconfig.json")), "switchctl's runtimeconfig beside the tests");
        var start = new System.Diagnostics.ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        start.ArgumentList.Add(dll);
        foreach (string arg in args) start.ArgumentList.Add(arg);
        start.Environment.Remove(SwitchCtl.AdminUrlVariable);
        start.Environment.Remove(SwitchCtl.KeyVariable);
        using var process = System.Diagnostics.Process.Start(start)!;
        try
        {
            Task<string> stdout = process.StandardOutput.ReadToEndAsync();
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMilliseconds(RunTimeoutMs));
            return new CtlRun(process.ExitCode, await stdout, await stderr);
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task Batch_close_list_settlement_and_breaks_over_the_cli()
    {
        // Two payments at bank 103 (only this test pays there), then the operator closes the batch.
        foreach (string order in new[] { "CLR-1", "CLR-2" }) await PayAsync(Sw, RunningSwitch.Payment(order, 10_000, bank: "103"));
        CtlRun close = await CtlAsync(Sw, OperatorKey, "--json", "batch", "close", "--reason", "cli test close");
        Assert.True(close.ExitCode == 0, close.ToString());
        long batchId = JsonParser.Default.Parse<CloseBatchReply>(close.Out).BatchId;
        Assert.True(batchId > 0);

        BatchInfo? info = null;
        Assert.True(await EventuallyAsync(async () =>
        {
            CtlRun list = await CtlAsync(Sw, OperatorKey, "--json", "batch", "list");
            Assert.True(list.ExitCode == 0, list.ToString());
            info = JsonParser.Default.Parse<ListBatchesReply>(list.Out).Batches.SingleOrDefault(b => b.BatchId == batchId);
            return info is { FilesComplete: true };
        }), $"batch {batchId} files complete");
        CtlRun table = await CtlAsync(Sw, OperatorKey, "batch", "list");
        Assert.Contains("complete", table.Out.Split('\n').Single(l => l.StartsWith(batchId + " ", StringComparison.Ordinal)));

        CtlRun settlement = await CtlAsync(Sw, OperatorKey, "settlement", batchId.ToString());
        Assert.True(settlement.ExitCode == 0, settlement.ToString());
        Assert.Contains("sum of net: 0 fen", settlement.Out);
        SettlementReply lines = JsonParser.Default.Parse<SettlementReply>((await CtlAsync(Sw, OperatorKey, "--json", "settlement", batchId.ToString())).Out);
        Assert.Equal(0, lines.Lines.Sum(l => l.NetFen));
        SettlementLine abc = lines.Lines.Single(l => l.ParticipantKind == "BANK" && l.ParticipantId == "103");
        Assert.Equal(-20_000, abc.NetFen); // agreement payments debit the payers at the bank: the bank pays both

        // The bank's own record, as the switch wrote it, has no breaks.
        string recon = Path.Combine(Sw.DataDirectory, "clearing", $"batch-{batchId:D8}", "recon-bank-103.csv");
        CtlRun breaks = await CtlAsync(Sw, OperatorKey, "breaks", recon);
        Assert.True(breaks.ExitCode == 0, breaks.ToString());
        Assert.Contains("no breaks", breaks.Out);
        BreakReportReply report = JsonParser.Default.Parse<BreakReportReply>((await CtlAsync(Sw, OperatorKey, "--json", "breaks", recon)).Out);
        Assert.Equal(2, report.Matched);
        Assert.Empty(report.Breaks);

        // A malformed file is refused with the line named.
        string bad = Path.Combine(Sw.DataDirectory, "not-a-recon-file.csv");
        await File.WriteAllTextAsync(bad, "hello\n");
        CtlRun refused = await CtlAsync(Sw, OperatorKey, "breaks", bad);
        Assert.True(refused.ExitCode == 1, refused.ToString());
        Assert.StartsWith("switchctl: INVALID_ARGUMENT: breaks: line 1", refused.Err);

        // Over several 1 MiB chunks: a bad line early is refused with its number, whenever the switch stops reading.
        string big = Path.Combine(Sw.DataDirectory, "big-records.csv");
        string header = File.ReadLines(recon).First();
        await File.WriteAllTextAsync(big, header + "\n" + string.Concat(Enumerable.Repeat("D,not,a,line\n", 250_000)));
        Assert.True(new FileInfo(big).Length > 3 * SwitchCtl.RecordsChunkBytes);
        CtlRun bigRefused = await CtlAsync(Sw, OperatorKey, "breaks", big);
        Assert.True(bigRefused.ExitCode == 1, bigRefused.ToString());
        Assert.StartsWith("switchctl: INVALID_ARGUMENT: breaks: line 2", bigRefused.Err);

        Assert.Equal(1, (await CtlAsync(Sw, OperatorKey, "settlement", "999999")).ExitCode);
    }

    [Fact]
    public async Task Report_prints_the_member_figures_as_a_table_and_as_csv_equal_to_the_admin_api()
    {
        // Bank 308 is this test's own.
        for (int i = 0; i < 3; i++) await PayAsync(Sw, RunningSwitch.Payment($"CTL-REPORT-{i}", 2_000 + i, bank: "308", account: $"62220308{i:D8}"));
        using var channel = GrpcChannel.ForAddress(Sw.Host.AdminGrpcAddress);
        MemberReportReply reply = null!;
        await Admin.AdminClient.WaitUntilAsync(async () =>
        {
            reply = await channel.UnaryAsync(AdminMethods.GetMemberReport, new MemberReportRequest { Bank = "308" }, AsOperator(ViewerKey));
            return reply.Rows.Sum(r => r.Approvals) == 3;
        }, "three approvals at bank 308 in the report");
        MemberRow row = Assert.Single(reply.Rows);
        Assert.Equal(("ALIPAY", "308", 3L), (row.Institution, row.Bank, row.Requests));

        CtlRun table = await CtlAsync(Sw, ViewerKey, "report", "--bank", "308");
        Assert.True(table.ExitCode == 0, table.ToString());
        Assert.Contains("INSTITUTION", table.Out);
        string line = Assert.Single(table.Out.Split('\n'), l => l.Contains("ALIPAY") && l.Contains("308"));
        Assert.Equal(["ALIPAY", "308", "3", "3"], line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..5]);

        CtlRun csv = await CtlAsync(Sw, ViewerKey, "report", "--bank", "308", "--day", reply.Day, "--csv");
        Assert.True(csv.ExitCode == 0, csv.ToString());
        Assert.Equal(MemberReportCsv.Document(reply.Rows), csv.Out);
        Assert.StartsWith(MemberReportCsv.Header + "\n", csv.Out);

        Assert.Equal(2, (await CtlAsync(Sw, ViewerKey, "report", "--day", "06/12/2026")).ExitCode);
    }


    [Fact]
    public async Task Explain_prints_why_an_order_went_where_it_went_and_equals_the_admin_api()
    {
        // Bank 105 (no other test counts its transactions; a drain there leaves CCB-DC1 up): the explanation names its weights and the endpoint the draw chose.
        await PayAsync(Sw, RunningSwitch.Payment("CTL-EXPLAIN-1", 3_000, bank: "105", account: "6222010500000001"));
        using var channel = GrpcChannel.ForAddress(Sw.Host.AdminGrpcAddress);
        ExplainReply reply = await channel.UnaryAsync(AdminMethods.ExplainOrder,
            new ExplainRequest { Institution = "ALIPAY", OrderNo = "CTL-EXPLAIN-1" }, AsOperator(ViewerKey));
        OrderDecision d = Assert.Single(reply.Decisions);
        Assert.Equal(("ADMITTED", "105"), (d.Outcome, d.Bank));

        CtlRun table = await CtlAsync(Sw, ViewerKey, "explain", "CTL-EXPLAIN-1", "--institution", "ALIPAY");
        Assert.True(table.ExitCode == 0, table.ToString());
        Assert.Contains($"ADMITTED as transaction {d.TransactionId}, sent to {d.Endpoint}", table.Out);
        Assert.Contains("WEIGHT-BPS", table.Out);
        foreach (string line in d.Because) Assert.Contains(line, table.Out);
        string chosen = Assert.Single(table.Out.Split('\n'), l => l.Contains("<=="));
        Assert.StartsWith(d.Endpoint + " ", chosen);

        CtlRun json = await CtlAsync(Sw, ViewerKey, "--json", "explain", "CTL-EXPLAIN-1", "--institution", "ALIPAY");
        Assert.True(json.ExitCode == 0, json.ToString());
        Assert.Equal(reply.Decisions, JsonParser.Default.Parse<ExplainReply>(json.Out).Decisions);

        CtlRun missing = await CtlAsync(Sw, ViewerKey, "explain", "CTL-EXPLAIN-NONE", "--institution", "ALIPAY");
        Assert.True(missing.ExitCode == 1, missing.ToString());
        Assert.StartsWith("switchctl: NOT_FOUND: ", missing.Err);
        Assert.Contains("order CTL-EXPLAIN-NONE of institution ALIPAY", missing.Err);
    }
}
