using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Configuration;
using Switch.Host.Tests.EndToEnd;
using Xunit.Abstractions;
using static Switch.Host.Tests.Admin.AdminClient;

namespace Switch.Host.Tests.Admin;

/// <summary>
/// /metrics read back after real traffic over the sockets: each family moves as the traffic says (histograms by
/// institution, type, bank and endpoint; outcomes, rejects, gRPC statuses, authentication failures; the engine's
/// insides; process figures), and the whole page passes promtool check metrics.
/// </summary>
public sealed class MetricsTests(ITestOutputHelper output)
{
    private const string Alipay = "institution=\"ALIPAY\"";

    [Fact]
    public async Task Every_family_moves_with_the_traffic_and_promtool_finds_nothing_wrong()
    {
        await using RunningSwitch sw = await AdminClient.StartAsync();
        using var admin = new AdminClient(sw);
        await admin.WaitAllTakeTrafficAsync("308");
        PrometheusText before = await PrometheusText.ScrapeAsync(admin.Http);

        // 40 payments to bank 308 on a stream; one refused as a conflicting duplicate; a query for no such order;
        // a wrong institution key; a wrong operator key (gRPC and JSON).
        await admin.PayManyAsync("METRIC", 40, bank: "308");
        TransferRequest conflict = RunningSwitch.Payment("METRIC-0", 99_999, bank: "308", account: "622206" + 0.ToString("D10"));
        RpcException refused = await FailsAsync(() => sw.PayAsync(conflict), StatusCode.AlreadyExists);
        output.WriteLine($"conflicting duplicate: {refused.Status.Detail}");
        await FailsAsync(() => sw.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = "NO-SUCH-ORDER" }, RunningSwitch.As(RunningSwitch.AlipayKey)),
            StatusCode.NotFound);
        await FailsAsync(() => sw.PayAsync(RunningSwitch.Payment("BADKEY-1", 100), "not-a-key"), StatusCode.Unauthenticated);
        await FailsAsync(() => admin.CallAsync(AdminMethods.ListBanks, new ListBanksRequest(), "not-an-operator-key"), StatusCode.Unauthenticated);
        // A method the institution port does not have: refused before any handler runs, counted all the same.
        await FailsAsync(() => sw.Channel.UnaryAsync(AdminMethods.ListBanks, new ListBanksRequest(), RunningSwitch.As(RunningSwitch.AlipayKey)), StatusCode.Unimplemented);
        Assert.Equal(401, (await admin.PostJsonAsync("ListBanks", "{}", "still-not-a-key")).Status);

        // A subscriber to ALIPAY's outcome feed from the start: it had all 40 to read when it first asked.
        using (var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
        {
            using ServerStreamingCall<TransferResult> feed = sw.Channel.ServerStreaming(InstitutionMethods.Outcomes, new OutcomesRequest { AfterFeedNo = 0 },
                RunningSwitch.As(RunningSwitch.AlipayKey) with { Timeout = null, CancellationToken = cancel.Token });
            for (int i = 0; i < 40; i++) Assert.NotNull(await feed.ResponseStream.ReadAsync(cancel.Token));
            cancel.Cancel();
        }

        PrometheusText after = await PrometheusText.ScrapeAsync(admin.Http);
        double Delta(string name, params string[] labels) => after.Sum(name, labels) - before.Sum(name, labels);

        // Outcomes by institution, bank and outcome; rejects by code.
        Assert.Equal(40, Delta("switch_transactions_total", Alipay, "bank=\"308\"", "outcome=\"succeeded\""));
        Assert.Equal(0, Delta("switch_transactions_total", "outcome=\"failed\""));
        Assert.Equal(2, Delta("switch_transactions_total", Alipay, "outcome=\"rejected\""));
        Assert.Equal(1, Delta("switch_rejects_total", "code=\"DUPLICATE_ORDER_CONFLICT\""));
        Assert.Equal(1, Delta("switch_rejects_total", "code=\"ORDER_NOT_FOUND\""));
        Assert.Equal(2, Delta("switch_rejects_total"));

        // Histograms: one observation per final outcome, in every bucket from the one it fell in, +Inf = count.
        string e2e = $"{Alipay},type=\"agreement_payment\"";
        Assert.Equal(40, Delta("switch_transaction_duration_seconds_count", e2e));
        Assert.Equal(40, after[$"switch_transaction_duration_seconds_bucket{{{e2e},le=\"+Inf\"}}"] - before[$"switch_transaction_duration_seconds_bucket{{{e2e},le=\"+Inf\"}}"]);
        Assert.True(Delta("switch_transaction_duration_seconds_sum", e2e) > 0);
        AssertCumulative(after, "switch_transaction_duration_seconds", e2e);
        Assert.Equal(40, Delta("switch_bank_duration_seconds_count", "bank=\"308\""));
        output.WriteLine($"bank sum {Delta("switch_bank_duration_seconds_sum", "bank=\"308\"")}, end-to-end sum {Delta("switch_transaction_duration_seconds_sum", e2e)}");
        Assert.True(Delta("switch_bank_duration_seconds_sum", "bank=\"308\"") <= Delta("switch_transaction_duration_seconds_sum", e2e) + 1e-6);
        AssertCumulative(after, "switch_bank_duration_seconds", "bank=\"308\",endpoint=\"CMB-DC1\"");
        Assert.True(Delta("switch_journal_commit_seconds_count") >= 1);
        Assert.True(Delta("switch_journal_events_committed_total") >= 42);
        AssertCumulative(after, "switch_journal_commit_seconds", null);

        // gRPC statuses per port, authentication failures per port.
        foreach (var kv in after.Values.Where(kv => (kv.Key.StartsWith("switch_grpc_calls_total", StringComparison.Ordinal) && kv.Value > 0) || kv.Key.StartsWith("switch_auth", StringComparison.Ordinal) || kv.Key.StartsWith("switch_rejects_total", StringComparison.Ordinal) && kv.Value > 0)) output.WriteLine($"{kv.Key} {kv.Value}");
        Assert.True(Delta("switch_grpc_calls_total", "port=\"institution\"", "code=\"OK\"") >= 1); // the stream
        Assert.Equal(1, Delta("switch_grpc_calls_total", "port=\"institution\"", "code=\"ALREADY_EXISTS\""));
        Assert.Equal(1, Delta("switch_grpc_calls_total", "port=\"institution\"", "code=\"NOT_FOUND\""));
        Assert.Equal(1, Delta("switch_grpc_calls_total", "port=\"institution\"", "code=\"UNAUTHENTICATED\""));
        Assert.Equal(1, Delta("switch_grpc_calls_total", "port=\"institution\"", "code=\"UNIMPLEMENTED\""));
        Assert.Equal(1, Delta("switch_grpc_calls_total", "port=\"admin\"", "code=\"UNAUTHENTICATED\""));
        Assert.Equal(1, Delta("switch_auth_failures_total", "port=\"institution\""));
        Assert.Equal(2, Delta("switch_auth_failures_total", "port=\"admin\"")); // gRPC and JSON

        // The engine's insides: rings sized and drained, the logic caught up, the feed counted, nothing queued.
        Assert.Equal(sw.Host.Engine.InputCapacity, after["switch_input_ring_slots"]);
        Assert.Equal(sw.Host.Engine.OutputCapacity, after["switch_output_ring_slots"]);
        Assert.InRange(after["switch_input_ring_occupied"], 0, after["switch_input_ring_slots"]);
        Assert.InRange(after["switch_output_ring_occupied"], 0, after["switch_output_ring_slots"]);
        Assert.True(after.Values.ContainsKey("switch_logic_behind_journal_events"));
        Assert.True(Delta("switch_engine_events_applied_total") >= 42);
        Assert.Equal(40, Delta("switch_feed_outcomes_total", Alipay));
        Assert.Equal(40, after[$"switch_feed_subscriber_lag_max{{{Alipay}}}"]);
        Assert.Equal(0, after.Sum("switch_feed_subscriber_lag_max", "institution=\"TENPAY\""));
        Assert.Equal(0, (await PrometheusText.ScrapeAsync(admin.Http))[$"switch_feed_subscriber_lag_max{{{Alipay}}}"]); // since the previous scrape
        Assert.Equal(0, after.Sum("switch_endpoint_queued"));
        Assert.Equal(sw.Host.Engine.ArchiveDiskReads, after["switch_archive_disk_reads_total"]);
        Assert.True(after.Values.ContainsKey("switch_archive_store_lookups_total"));

        // Process, GC and thread pool.
        Assert.True(after["process_cpu_seconds_total"] > 0);
        Assert.True(after["dotnet_total_memory_bytes"] > 0);
        Assert.True(after["dotnet_threadpool_threads"] >= 1);
        Assert.True(Delta("dotnet_threadpool_completed_items_total") > 0);
        Assert.True(after.Values.ContainsKey("dotnet_gc_pause_seconds_total"));
        Assert.True(after.Sum("dotnet_collection_count_total") >= 0 && after.Types["dotnet_collection_count_total"] == "counter");

        output.WriteLine($"series on the page: {after.Values.Count}");
        AssertPromtoolClean(after);
    }

    [Fact]
    public async Task A_transaction_answered_unknown_is_timed_until_its_final_outcome()
    {
        // The bank executes every debit and never answers it: the institution gets UNKNOWN at the deadline, and the
        // switch's query (answered) makes it final.
        string dir = Path.Combine(Path.GetTempPath(), "switch-metrics-test-" + Guid.NewGuid().ToString("N"));
        HostConfig config = RunningSwitch.TestConfig(dir, new SimulatedBanksConfig { Latency = "0", FailureRate = 0, NoAnswerRate = 1.0 },
            rules => rules with { BankTimeoutMs = 300, QueryBackoffInitialMs = 200, BatchCloseTimes = [] });
        await using RunningSwitch sw = await RunningSwitch.StartAsync(config, dir);
        using var admin = new AdminClient(sw);
        await admin.WaitAllTakeTrafficAsync("308");
        PrometheusText before = await PrometheusText.ScrapeAsync(admin.Http);

        const int payments = 3;
        for (int i = 0; i < payments; i++)
        {
            TransferResult result = await sw.PayAsync(RunningSwitch.Payment($"UNKNOWN-{i}", 100, bank: "308", account: $"62220303{i:D8}"));
            Assert.Equal(TransactionStatus.Unknown, result.Status);
        }
        PrometheusText after = before;
        await WaitUntilAsync(async () =>
        {
            after = await PrometheusText.ScrapeAsync(admin.Http);
            return after.Sum("switch_unknown_to_final_seconds_count", "bank=\"308\"") - before.Sum("switch_unknown_to_final_seconds_count", "bank=\"308\"") >= payments;
        }, "the unknown outcomes made final", timeoutMs: 60_000);

        double Delta(string name, params string[] labels) => after.Sum(name, labels) - before.Sum(name, labels);
        Assert.Equal(payments, Delta("switch_transactions_total", Alipay, "bank=\"308\"", "outcome=\"unknown\""));
        Assert.Equal(payments, Delta("switch_transactions_total", Alipay, "bank=\"308\"", "outcome=\"succeeded\""));
        Assert.Equal(payments, Delta("switch_unknown_to_final_seconds_count", "bank=\"308\""));
        Assert.True(Delta("switch_unknown_to_final_seconds_sum", "bank=\"308\"") > 0);
        Assert.Equal(payments, Delta("switch_endpoint_answers_total", "bank=\"308\"", "outcome=\"timed_out\""));
        AssertCumulative(after, "switch_unknown_to_final_seconds", "bank=\"308\"");
        // End to end covers the whole wait: past the bank's deadline.
        Assert.True(Delta("switch_transaction_duration_seconds_sum", Alipay) >= payments * 0.3);
        AssertPromtoolClean(after);
    }

    /// <summary>A histogram's buckets never fall as le rises, and +Inf equals the count.</summary>
    private static void AssertCumulative(PrometheusText scrape, string name, string? labels)
    {
        string prefix = labels is null ? $"{name}_bucket{{le=\"" : $"{name}_bucket{{{labels},le=\"";
        var buckets = scrape.Values.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal))
            .Select(kv => (Le: kv.Key[prefix.Length..^2], kv.Value))
            .Select(b => (Le: b.Le == "+Inf" ? double.PositiveInfinity : double.Parse(b.Le, System.Globalization.CultureInfo.InvariantCulture), b.Value))
            .OrderBy(b => b.Le).ToList();
        Assert.True(buckets.Count >= 2, $"{name}{{{labels}}}: no buckets");
        for (int i = 1; i < buckets.Count; i++) Assert.True(buckets[i].Value >= buckets[i - 1].Value, $"{name}: bucket {buckets[i].Le} below {buckets[i - 1].Le}");
        string count = labels is null ? $"{name}_count" : $"{name}_count{{{labels}}}";
        Assert.Equal(scrape[count], buckets[^1].Value);
    }

    private void AssertPromtoolClean(PrometheusText scrape)
    {
        string? problems = scrape.Promtool();
        if (problems is null)
        {
            // In CI a missing promtool is a broken machine (.ci/run installs the prometheus package), never a pass.
            Assert.True(string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI")), "promtool is not installed (apt-get install prometheus)");
            output.WriteLine("promtool is not on PATH: the lint did not run.");
            return;
        }
        Assert.True(problems.Length == 0, problems);
    }
}
