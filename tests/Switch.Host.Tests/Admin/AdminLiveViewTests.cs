using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Configuration;
using Switch.Host.Tests.EndToEnd;
using static Switch.Host.Tests.Admin.AdminClient;

namespace Switch.Host.Tests.Admin;

/// <summary>The live view over real traffic: WatchStats streams figures, and a bank failing half its payments raises an alert.</summary>
public sealed class AdminLiveViewTests
{
    [Fact]
    public async Task A_bank_failing_far_below_its_baseline_raises_a_success_rate_alert_seen_in_the_API()
    {
        string dir = Path.Combine(Path.GetTempPath(), "switch-admin-test-" + Guid.NewGuid().ToString("N"));
        // One-second windows, so the test drives several quickly; half the payments fail at every simulated bank.
        HostConfig config = AdminClient.Config(dir, new SimulatedBanksConfig { Latency = "0", FailureRate = 0.5 });
        config = config with
        {
            SuccessRateWatch = new SuccessRateWatchConfig { WindowSeconds = 1, WindowsInARow = 2, MinRequestsPerWindow = 5, DefaultBaseline = 0.95, MinHistory = 3 },
            // The breaker is not the subject here: it must not take the bank's endpoints away.
            Switch = config.Switch with { Rules = config.Switch.Rules with { BreakerMinCalls = 1_000_000 } },
        };
        await using RunningSwitch sw = await RunningSwitch.StartAsync(config, dir);
        using var admin = new AdminClient(sw);
        try
        {
            int sent = 0;
            await WaitUntilAsync(async () =>
            {
                // Keep paying until the alert shows: about 20 payments per window on a slow machine or a fast one.
                for (int i = 0; i < 5; i++, sent++)
                {
                    await sw.PayAsync(RunningSwitch.Payment($"ALERT-{sent}", 100, account: $"62229999{sent:D8}"));
                }
                await Task.Delay(50);
                return (await admin.CallAsync(AdminMethods.ListAlerts, new ListAlertsRequest(), ViewerKey)).Alerts.Any(a => a.Bank == "102" && a.Active);
            }, "an active success-rate alert for bank 102", timeoutMs: 60_000);

            Alert alert = (await admin.CallAsync(AdminMethods.ListAlerts, new ListAlertsRequest(), ViewerKey)).Alerts.First(a => a.Bank == "102" && a.Active);
            Assert.Equal("SUCCESS_RATE_LOW", alert.Kind);
            Assert.Equal(0.95, alert.BaselineSuccessRate); // cold start: the configured default
            Assert.True(alert.ActualSuccessRate < 0.95 * 0.9, $"actual {alert.ActualSuccessRate}");
            Assert.True(alert.WindowsBelow >= 2);
            Assert.True(alert.SinceUnixMs > 0 && alert.ClearedUnixMs == 0);
            Assert.Contains("102", alert.Message);

            // The failures are in the statistics too.
            StatsReply stats = await admin.CallAsync(AdminMethods.GetStats, new StatsRequest { Bank = "102" }, ViewerKey);
            WindowStats fifteen = stats.Banks[0].Windows.Single(w => w.WindowSeconds == 900);
            Assert.Equal(fifteen.Requests, fifteen.Succeeded + fifteen.Failed + fifteen.TimedOut);
            Assert.True(fifteen.Failed > 0 && fifteen.Succeeded > 0);
            Assert.Equal((double)fifteen.Succeeded / fifteen.Requests, fifteen.SuccessRate, 9);
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    [Fact]
    public async Task WatchStats_streams_the_figures_at_the_interval_asked_and_refuses_a_bad_one()
    {
        await using RunningSwitch sw = await AdminClient.StartAsync();
        using var admin = new AdminClient(sw);
        await admin.PayManyAsync("WATCH", 30, bank: "308");

        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using ServerStreamingCall<StatsReply> watch = admin.Grpc.ServerStreaming(AdminMethods.WatchStats, new StatsRequest { Bank = "308", IntervalMs = 250 },
            new CallOptions { Headers = new Metadata().Add(AdminMethods.OperatorKeyHeader, ViewerKey), CancellationToken = cancel.Token });
        StatsReply first = (await watch.ResponseStream.ReadAsync(cancel.Token))!;
        StatsReply second = (await watch.ResponseStream.ReadAsync(cancel.Token))!;
        Assert.True(second.AtUnixMs >= first.AtUnixMs);
        BankStats cmb = Assert.Single(second.Banks);
        Assert.Equal("308", cmb.Bank);
        Assert.Equal([10, 60, 900], cmb.Windows.Select(w => w.WindowSeconds));
        Assert.Equal(30, cmb.Windows[2].Requests);
        Assert.Equal(["CMB-DC1", "CMB-DC2"], cmb.Endpoints.Select(e => e.Name));
        Assert.Equal(30, cmb.Endpoints.Sum(e => e.Windows[2].Requests));
        cancel.Cancel();

        using var bad = admin.Grpc.ServerStreaming(AdminMethods.WatchStats, new StatsRequest { IntervalMs = 10 }, As(ViewerKey));
        RpcException e = await Assert.ThrowsAsync<RpcException>(async () => await bad.ResponseStream.ReadAsync());
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("interval_ms", e.Status.Detail);
        using var anonymous = admin.Grpc.ServerStreaming(AdminMethods.WatchStats, new StatsRequest(), As(null));
        Assert.Equal(StatusCode.Unauthenticated, (await Assert.ThrowsAsync<RpcException>(async () => await anonymous.ResponseStream.ReadAsync())).StatusCode);
    }

    [Fact]
    public async Task GetHistory_gives_each_second_of_the_last_15_minutes_per_bank_and_endpoint_over_both_APIs()
    {
        await using RunningSwitch sw = await AdminClient.StartAsync();
        using var admin = new AdminClient(sw);
        await admin.PayManyAsync("HIST", 40, bank: "308");
        // The payments' seconds are complete once the clock has moved past them.
        await Task.Delay(1_100);

        HistoryReply all = await admin.CallAsync(AdminMethods.GetHistory, new HistoryRequest(), ViewerKey);
        Assert.Equal(900, all.Seconds);
        long nowSecond = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Assert.InRange(all.FromUnixSecond + all.Seconds, nowSecond - 30, nowSecond); // ends with the last complete second (a slow machine may take a while to answer)
        BankHistory cmb = all.Banks.Single(b => b.Bank == "308");
        Assert.Equal(900, cmb.Total.Requests.Count);
        Assert.Equal(40, cmb.Total.Requests.Sum());
        Assert.Equal(40, cmb.Total.Succeeded.Sum());
        Assert.Equal(0, cmb.Total.Failed.Sum() + cmb.Total.TimedOut.Sum());
        Assert.Equal(["CMB-DC1", "CMB-DC2"], cmb.Endpoints.Select(e => e.Endpoint));
        for (int i = 0; i < 900; i++) Assert.Equal(cmb.Total.Requests[i], cmb.Endpoints.Sum(e => e.Requests[i]));
        // Every second that answered has a p99; the others none.
        for (int i = 0; i < 900; i++) Assert.Equal(cmb.Total.Succeeded[i] > 0, cmb.Total.P99LatencyUs[i] > 0);
        Assert.All(all.Banks.Where(b => b.Bank != "308"), b => Assert.Equal(0, b.Total.Requests.Sum()));

        // The JSON API (what the dashboard reads): one bank, the last seconds only.
        (int status, string body, _) = await admin.PostJsonAsync("GetHistory", "{\"bank\":\"308\",\"seconds\":30}", ViewerKey);
        Assert.Equal(200, status);
        HistoryReply recent = Google.Protobuf.JsonParser.Default.Parse<HistoryReply>(body);
        Assert.Equal(30, recent.Seconds);
        Assert.Equal("308", Assert.Single(recent.Banks).Bank);
        Assert.Equal(30, recent.Banks[0].Total.Requests.Count);

        (status, body, _) = await admin.PostJsonAsync("GetHistory", "{\"seconds\":901}", ViewerKey);
        Assert.Equal(400, status);
        Assert.Contains("seconds: 1 to 900", body);
        (status, _, _) = await admin.PostJsonAsync("GetHistory", "{}", null);
        Assert.Equal(401, status);
    }
}
