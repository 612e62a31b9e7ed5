using System.Text.Json;
using System.Text.RegularExpressions;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Configuration;
using Switch.Host.Tests.EndToEnd;
using static Switch.Host.Tests.Admin.AdminClient;

namespace Switch.Host.Tests.Admin;

/// <summary>The operator API against a real switch on loopback: gRPC on the admin gRPC port, JSON and /metrics on the admin HTTP port.</summary>
public sealed class AdminApiTests
{
    private static SetWeightsRequest Weights(string bank, string reason, params int[] weights)
    {
        var request = new SetWeightsRequest { Bank = bank, Reason = reason };
        request.WeightsBps.AddRange(weights);
        return request;
    }

    [Fact]
    public async Task Operators_authenticate_with_their_own_keys_and_a_viewer_may_look_but_not_change()
    {
        await using RunningSwitch sw = await AdminClient.StartAsync();
        using var admin = new AdminClient(sw);

        Assert.Equal(new OperatorInfo { OperatorId = "ops", Role = OperatorRole.Operate }, await admin.CallAsync(AdminMethods.WhoAmI, new WhoAmIRequest(), OpsKey));
        Assert.Equal(new OperatorInfo { OperatorId = "viewer", Role = OperatorRole.Read }, await admin.CallAsync(AdminMethods.WhoAmI, new WhoAmIRequest(), ViewerKey));
        RpcException missing = await FailsAsync(() => admin.CallAsync(AdminMethods.ListBanks, new ListBanksRequest(), key: null), StatusCode.Unauthenticated);
        Assert.Contains(AdminMethods.OperatorKeyHeader, missing.Status.Detail);
        await FailsAsync(() => admin.CallAsync(AdminMethods.ListBanks, new ListBanksRequest(), "wrong-key"), StatusCode.Unauthenticated);
        // An institution's key is not an operator's.
        await FailsAsync(() => admin.CallAsync(AdminMethods.ListBanks, new ListBanksRequest(), RunningSwitch.AlipayKey), StatusCode.Unauthenticated);

        ListBanksReply banks = await admin.CallAsync(AdminMethods.ListBanks, new ListBanksRequest(), ViewerKey);
        Assert.Equal(["102", "103", "105", "308"], banks.Banks.Select(b => b.Bank));
        BankView icbc = banks.Banks[0];
        Assert.Equal("ICBC", icbc.Name);
        Assert.Equal([9500, 500], icbc.Endpoints.Select(e => e.WeightBps));
        Assert.All(icbc.Endpoints, e => Assert.True(e.State == EndpointAdminState.Up && e.Breaker == BreakerState.Closed));
        await admin.WaitAllTakeTrafficAsync("102");

        RpcException denied = await FailsAsync(() => admin.CallAsync(AdminMethods.SetWeights, Weights("102", "viewer tries", 5000, 5000), ViewerKey),
            StatusCode.PermissionDenied);
        Assert.Contains("viewer", denied.Status.Detail);
        await FailsAsync(() => admin.CallAsync(AdminMethods.SetEndpointState,
            new SetEndpointStateRequest { Bank = "102", Endpoint = "ICBC-DC1", State = EndpointAdminState.Down, Reason = "viewer tries" }, ViewerKey),
            StatusCode.PermissionDenied);
        await FailsAsync(() => admin.CallAsync(AdminMethods.CloseBatch, new CloseBatchRequest { Reason = "viewer tries" }, ViewerKey), StatusCode.PermissionDenied);
        Assert.Equal([9500, 500], (await admin.BankAsync("102")).Endpoints.Select(e => e.WeightBps));
        Assert.Empty(await admin.OperatorAuditAsync());

        // The operator API is never on the institutions' port, and the admin port serves no institution methods.
        var onInstitutionPort = await Assert.ThrowsAsync<RpcException>(() =>
            sw.Channel.UnaryAsync(AdminMethods.ListBanks, new ListBanksRequest(), As(OpsKey)));
        Assert.Equal(StatusCode.Unimplemented, onInstitutionPort.StatusCode);
        await FailsAsync(() => sw.Channel.UnaryAsync(AdminMethods.SetWeights, Weights("102", "wrong port", 0, 10000), As(OpsKey)), StatusCode.Unimplemented);
        await FailsAsync(() => admin.Grpc.UnaryAsync(InstitutionMethods.AgreementPayment, RunningSwitch.Payment("X-1", 100), RunningSwitch.As(RunningSwitch.AlipayKey)),
            StatusCode.Unimplemented);
        Assert.NotEqual(sw.Host.InstitutionAddress.Port, sw.Host.AdminGrpcAddress.Port);
        Assert.NotEqual(sw.Host.InstitutionAddress.Port, sw.Host.AdminAddress.Port);
    }

    [Fact]
    public async Task A_weight_change_shifts_the_measured_split_and_bad_weights_change_nothing()
    {
        await using RunningSwitch sw = await AdminClient.StartAsync();
        using var admin = new AdminClient(sw);
        var dc1 = sw.Host.Simulators[0]; // bank 102's endpoints, in configuration order
        var dc2 = sw.Host.Simulators[1];

        await admin.WaitAllTakeTrafficAsync("102");
        CommandReply reply = await admin.CallAsync(AdminMethods.SetWeights, Weights("102", "new front-end takes 70%", 3000, 7000));
        Assert.Equal(reply.AuditNo, Assert.Single(await admin.OperatorAuditAsync()).AuditNo);
        Assert.Equal([3000, 7000], reply.Bank.Endpoints.Select(e => e.WeightBps));

        const int count = 3_000;
        await admin.PayManyAsync("SPLIT", count);
        long toDc1 = dc1.ExecutedHere, toDc2 = dc2.ExecutedHere;
        Assert.Equal(count, toDc1 + toDc2);
        double share = (double)toDc2 / count;
        // Stated tolerance: ±5 percentage points of the 70% set, over 3,000 transactions (the pick is a hash of the id).
        Assert.InRange(share, 0.65, 0.75);

        // The live statistics saw the same split.
        StatsReply stats = await admin.CallAsync(AdminMethods.GetStats, new StatsRequest { Bank = "102" }, ViewerKey);
        BankStats bank = Assert.Single(stats.Banks);
        WindowStats fifteen = bank.Windows.Single(w => w.WindowSeconds == 900);
        Assert.Equal(count, fifteen.Requests);
        Assert.Equal(count, fifteen.Succeeded);
        Assert.Equal(1.0, fifteen.SuccessRate);
        Assert.True(fifteen.P99LatencyUs >= fifteen.P50LatencyUs && fifteen.P50LatencyUs > 0);
        Assert.Equal(toDc1, bank.Endpoints.Single(e => e.Name == "ICBC-DC1").Windows.Single(w => w.WindowSeconds == 900).Requests);
        Assert.Equal(toDc2, bank.Endpoints.Single(e => e.Name == "ICBC-DC2").Windows.Single(w => w.WindowSeconds == 900).Requests);
        Assert.Equal(0, bank.InFlight);

        // Bad input: INVALID_ARGUMENT naming the problem, and nothing changes (weights, audit log).
        async Task Refused(SetWeightsRequest request, string expected)
        {
            RpcException e = await FailsAsync(() => admin.CallAsync(AdminMethods.SetWeights, request), StatusCode.InvalidArgument);
            Assert.Contains(expected, e.Status.Detail);
        }
        await Refused(Weights("999", "unknown bank", 5000, 5000), "bank: no bank '999'");
        await Refused(Weights("102", "wrong count", 10000), "has 2 endpoints");
        await Refused(Weights("102", "negative", -1, 10001), "must be 0 to 10000");
        await Refused(Weights("102", "sum", 5000, 4000), "must sum to 10000 basis points, got 9000");
        await Refused(Weights("102", "", 5000, 5000), "reason: required");
        await Refused(Weights("102", new string('x', 65), 5000, 5000), "reason: at most 64 bytes");
        var byName = new SetWeightsRequest { Bank = "102", Reason = "unknown endpoint" };
        byName.ByEndpoint.Add("ICBC-DC1", 5000);
        byName.ByEndpoint.Add("ICBC-DC9", 5000);
        await Refused(byName, "no endpoint 'ICBC-DC9'");
        var ramp = Weights("102", "ramp without time", 5000, 5000);
        ramp.RampSteps = 5;
        await Refused(ramp, "ramp_steps and ramp_duration_ms");
        Assert.Equal([3000, 7000], (await admin.BankAsync("102")).Endpoints.Select(e => e.WeightBps));
        Assert.Single(await admin.OperatorAuditAsync());

        // By name, the other way round.
        var named = new SetWeightsRequest { Bank = "102", Reason = "back to DC1" };
        named.ByEndpoint.Add("ICBC-DC1", 10000);
        named.ByEndpoint.Add("ICBC-DC2", 0);
        long first = reply.AuditNo;
        reply = await admin.CallAsync(AdminMethods.SetWeights, named);
        Assert.True(reply.AuditNo > first);
        Assert.Equal([10000, 0], reply.Bank.Endpoints.Select(e => e.WeightBps));
        Assert.False(reply.Bank.Endpoints[1].TakesTraffic);
        await admin.PayManyAsync("BACK", 200);
        Assert.Equal(toDc2, dc2.ExecutedHere);
        Assert.Equal(toDc1 + 200, dc1.ExecutedHere);
    }

    [Fact]
    public async Task A_ramp_reaches_its_target_in_its_steps_and_the_view_shows_it_running()
    {
        await using RunningSwitch sw = await AdminClient.StartAsync();
        using var admin = new AdminClient(sw);
        SetWeightsRequest request = Weights("103", "ramp DC2 up to 45%", 5500, 4500);
        request.RampSteps = 4;
        request.RampDurationMs = 2_000;
        CommandReply started = await admin.CallAsync(AdminMethods.SetWeights, request);
        Assert.Equal([9500, 500], started.Bank.Endpoints.Select(e => e.WeightBps)); // the first step comes one interval later
        RampView ramp = started.Bank.Ramp;
        Assert.Equal([9500, 500], ramp.FromWeightsBps);
        Assert.Equal([5500, 4500], ramp.TargetWeightsBps);
        Assert.Equal((4, 0, "ops"), (ramp.StepsTotal, ramp.StepsDone, ramp.OperatorId));
        Assert.True(ramp.NextStepUnixMs > 0);

        await WaitUntilAsync(async () => (await admin.BankAsync("103")).Ramp is null, "the ramp done");
        Assert.Equal([5500, 4500], (await admin.BankAsync("103")).Endpoints.Select(e => e.WeightBps));
        List<AuditEntry> entries = (await admin.OperatorAuditAsync()).Where(e => e.Bank == "103").ToList();
        Assert.Equal(["RAMP_STARTED", "RAMP_STEP", "RAMP_STEP", "RAMP_STEP", "RAMP_DONE"], entries.Select(e => e.Kind));
        Assert.Equal([8500, 7500, 6500, 5500], entries.Skip(1).Select(e => e.WeightsBps[0])); // equal steps
        Assert.All(entries, e => Assert.Equal("ramp DC2 up to 45%", e.Reason));
        // The start says where the ramp goes, not only where it starts from; so does each step.
        Assert.Equal([9500, 500], entries[0].WeightsBps);
        Assert.Equal([5500, 4500], entries[0].TargetWeightsBps);
        Assert.All(entries.Skip(1).SkipLast(1), e => Assert.Equal([5500, 4500], e.TargetWeightsBps));
        Assert.Empty(entries[^1].TargetWeightsBps);
    }

    [Fact]
    public async Task Draining_lets_in_flight_work_finish_and_sends_nothing_new()
    {
        await using RunningSwitch sw = await AdminClient.StartAsync(banks: new SimulatedBanksConfig { Latency = "fixed:400", FailureRate = 0 });
        using var admin = new AdminClient(sw);
        var dc1 = sw.Host.Simulators[0];
        var dc2 = sw.Host.Simulators[1];
        await admin.WaitAllTakeTrafficAsync("102");

        Task first = admin.PayManyAsync("INFLIGHT", 100);
        await WaitUntilAsync(async () => (await admin.BankAsync("102")).Endpoints[0].InFlight > 0, "work in flight at ICBC-DC1");
        CommandReply drained = await admin.CallAsync(AdminMethods.SetEndpointState,
            new SetEndpointStateRequest { Bank = "102", Endpoint = "ICBC-DC1", State = EndpointAdminState.Draining, Reason = "maintenance at DC1" });
        Assert.Equal(EndpointAdminState.Draining, drained.Bank.Endpoints[0].State);
        Assert.False(drained.Bank.Endpoints[0].TakesTraffic);
        await first; // every payment succeeded, including those in flight at DC1 when it began draining
        await WaitUntilAsync(async () => (await admin.BankAsync("102")).Endpoints[0].InFlight == 0, "DC1 in-flight work done");
        long atDc1 = dc1.ExecutedHere;
        long atDc2 = dc2.ExecutedHere;
        Assert.Equal(100, atDc1 + atDc2);
        Assert.True(atDc1 > 0);

        await admin.PayManyAsync("AFTER", 60);
        Assert.Equal(atDc1, dc1.ExecutedHere); // nothing new reached the draining endpoint
        Assert.Equal(atDc2 + 60, dc2.ExecutedHere);
    }

    [Fact]
    public async Task Every_change_is_in_the_audit_log_the_tail_streams_new_ones_and_all_of_it_survives_a_restart()
    {
        string dir = Path.Combine(Path.GetTempPath(), "switch-admin-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            long startUs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;
            List<AuditEntry> before;
            await using (RunningSwitch sw = await AdminClient.StartAsync(dir))
            {
                using var admin = new AdminClient(sw);
                using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
                using ServerStreamingCall<AuditEntry> tail = admin.Grpc.ServerStreaming(AdminMethods.TailAudit, new AuditRequest(),
                    new CallOptions { Headers = new Metadata().Add(AdminMethods.OperatorKeyHeader, ViewerKey), CancellationToken = cancel.Token });

                await admin.CallAsync(AdminMethods.SetWeights, Weights("103", "cut-over step 1", 5000, 5000));
                await admin.CallAsync(AdminMethods.SetEndpointState,
                    new SetEndpointStateRequest { Bank = "105", Endpoint = "CCB-DC2", State = EndpointAdminState.Down, Reason = "DR drill" });
                var streamed = new List<AuditEntry>();
                while (streamed.Count(e => e.OperatorId == "ops") < 2)
                {
                    streamed.Add((await tail.ResponseStream.ReadAsync(cancel.Token))!);
                }
                Assert.Equal(streamed.Select(e => e.AuditNo).Order(), streamed.Select(e => e.AuditNo)); // in order, no gaps
                Assert.Equal(Enumerable.Range(1, streamed.Count).Select(i => (long)i), streamed.Select(e => e.AuditNo));
                AuditEntry streamed2 = streamed.Last();
                Assert.Equal(["WEIGHTS", "STATE"], streamed.Where(e => e.OperatorId == "ops").Select(e => e.Kind));

                before = await admin.OperatorAuditAsync();
                Assert.Equal(2, before.Count);
                AuditEntry weights = before[0];
                Assert.Equal(("ops", "cut-over step 1", "103", ""), (weights.OperatorId, weights.Reason, weights.Bank, weights.Endpoint));
                Assert.Equal([5000, 5000], weights.WeightsBps);
                Assert.InRange(weights.AtUnixUs, startUs - 5_000_000, startUs + 120_000_000);
                AuditEntry state = before[1];
                Assert.Equal(("ops", "DR drill", "105", "CCB-DC2", EndpointAdminState.Down), (state.OperatorId, state.Reason, state.Bank, state.Endpoint, state.State));
                Assert.True(state.AtUnixUs >= weights.AtUnixUs);
                Assert.Equal(streamed2, state);
                Assert.Equal([state], (await admin.CallAsync(AdminMethods.ListAudit, new AuditRequest { Bank = "105" }, ViewerKey))
                    .Entries.Where(e => e.OperatorId == "ops"));
                Assert.All((await admin.CallAsync(AdminMethods.ListAudit, new AuditRequest { Bank = "105" }, ViewerKey)).Entries, e => Assert.Equal("105", e.Bank));
                Assert.Equal([state], (await admin.CallAsync(AdminMethods.ListAudit, new AuditRequest { AfterAuditNo = weights.AuditNo }, ViewerKey))
                    .Entries.Where(e => e.OperatorId == "ops"));
                await FailsAsync(() => admin.CallAsync(AdminMethods.ListAudit, new AuditRequest { Limit = 1001 }, ViewerKey), StatusCode.InvalidArgument);
                cancel.Cancel();
            }

            await using (RunningSwitch again = await AdminClient.StartAsync(dir))
            {
                using var admin = new AdminClient(again);
                Assert.Equal(before, await admin.OperatorAuditAsync());
                Assert.Equal([5000, 5000], (await admin.BankAsync("103")).Endpoints.Select(e => e.WeightBps));
                BankView ccb = await admin.BankAsync("105");
                Assert.Equal(EndpointAdminState.Down, ccb.Endpoints[1].State);
                Assert.False(ccb.Endpoints[1].TakesTraffic);
                // The next change continues the numbering.
                CommandReply reply = await admin.CallAsync(AdminMethods.SetEndpointState,
                    new SetEndpointStateRequest { Bank = "105", Endpoint = "CCB-DC2", State = EndpointAdminState.Up, Reason = "drill over" });
                Assert.True(reply.AuditNo > before[^1].AuditNo);
                Assert.Equal(reply.AuditNo, (await admin.OperatorAuditAsync()).Last().AuditNo);
            }
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    [Fact]
    public async Task The_JSON_API_takes_the_same_calls_with_the_key_header_and_answers_errors_as_JSON()
    {
        await using RunningSwitch sw = await AdminClient.StartAsync();
        using var admin = new AdminClient(sw);

        var (status, body, type) = await admin.PostJsonAsync("SetWeights",
            """{ "bank": "308", "weightsBps": [2500, 7500], "reason": "JSON cut-over" }""", OpsKey);
        Assert.Equal((200, "application/json"), (status, type));
        using (JsonDocument reply = JsonDocument.Parse(body))
        {
            // int64 as a string, proto JSON
            Assert.Equal(Assert.Single(await admin.OperatorAuditAsync()).AuditNo.ToString(), reply.RootElement.GetProperty("auditNo").GetString());
            JsonElement bank = reply.RootElement.GetProperty("bank");
            Assert.Equal("308", bank.GetProperty("bank").GetString());
            Assert.Equal([2500, 7500], bank.GetProperty("endpoints").EnumerateArray().Select(e => e.GetProperty("weightBps").GetInt32()));
            Assert.Equal("ENDPOINT_ADMIN_STATE_UP", bank.GetProperty("endpoints")[0].GetProperty("state").GetString());
        }
        Assert.Equal([2500, 7500], (await admin.BankAsync("308")).Endpoints.Select(e => e.WeightBps));

        async Task Error(string method, string json, string? key, int httpStatus, string code, string contains)
        {
            var (s, b, t) = await admin.PostJsonAsync(method, json, key);
            Assert.Equal((httpStatus, "application/json"), (s, t));
            using JsonDocument error = JsonDocument.Parse(b);
            Assert.Equal(code, error.RootElement.GetProperty("code").GetString());
            Assert.Contains(contains, error.RootElement.GetProperty("message").GetString());
        }
        await Error("SetWeights", """{ "bank": "308", "weightsBps": [5000, 4000], "reason": "bad sum" }""", OpsKey, 400, "INVALID_ARGUMENT", "must sum to 10000");
        await Error("SetWeights", """{ "bank": "308", "weightsBps": [5000, 5000], "reason": "no key" }""", null, 401, "UNAUTHENTICATED", "x-operator-key");
        await Error("SetWeights", """{ "bank": "308", "weightsBps": [5000, 5000], "reason": "viewer" }""", ViewerKey, 403, "PERMISSION_DENIED", "read role");
        await Error("SetWeights", """{ "bank": 308, "weights": "x" }""", OpsKey, 400, "INVALID_ARGUMENT", "request body");
        await Error("SetWeights", "not json", OpsKey, 400, "INVALID_ARGUMENT", "request body");
        await Error("NoSuchMethod", "{}", OpsKey, 404, "UNIMPLEMENTED", "NoSuchMethod");
        await Error("TailAudit", "{}", OpsKey, 404, "UNIMPLEMENTED", "gRPC only");
        Assert.Equal([2500, 7500], (await admin.BankAsync("308")).Endpoints.Select(e => e.WeightBps));
        Assert.Single(await admin.OperatorAuditAsync());

        var (whoStatus, who, _) = await admin.PostJsonAsync("WhoAmI", "", ViewerKey);
        Assert.Equal(200, whoStatus);
        Assert.Equal("""{ "operatorId": "viewer", "role": "OPERATOR_ROLE_READ" }""", who);
        using HttpResponseMessage get = await admin.Http.GetAsync("/api/v1/ListBanks");
        Assert.Equal(405, (int)get.StatusCode);
        using HttpResponseMessage missing = await admin.Http.GetAsync("/no-such-file.js");
        Assert.Equal(404, (int)missing.StatusCode);

        // The dashboard is embedded and served from the same port: "/" is its index.html, files by name and type.
        using HttpResponseMessage index = await admin.Http.GetAsync("/");
        Assert.Equal(200, (int)index.StatusCode);
        Assert.Equal("text/html", index.Content.Headers.ContentType?.MediaType);
        Assert.Contains("<html", await index.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
        using HttpResponseMessage script = await admin.Http.GetAsync("/dashboard.js");
        Assert.Equal(200, (int)script.StatusCode);
        Assert.Equal("text/javascript", script.Content.Headers.ContentType?.MediaType);
        using HttpResponseMessage traversal = await admin.Http.GetAsync("/../default-config.json");
        Assert.Equal(404, (int)traversal.StatusCode);
    }

    [Fact]
    public async Task Metrics_are_Prometheus_text_with_every_endpoint()
    {
        await using RunningSwitch sw = await AdminClient.StartAsync();
        using var admin = new AdminClient(sw);
        await admin.PayManyAsync("METRICS", 50);

        PrometheusText scrape = await PrometheusText.ScrapeAsync(admin.Http);
        Dictionary<string, string> typed = scrape.Types;
        var samples = scrape.Values.Select(kv => (Name: kv.Key.Split('{')[0], Line: kv.Key, kv.Value)).ToList();
        foreach (string endpoint in new[] { "ICBC-DC1", "ICBC-DC2", "ABC-DC1", "ABC-DC2", "CCB-DC1", "CCB-DC2", "CMB-DC1", "CMB-DC2" })
        {
            Assert.Contains(samples, s => s.Name == "switch_endpoint_weight_bps" && s.Line.Contains($"endpoint=\"{endpoint}\""));
            foreach (string window in new[] { "10s", "1m", "15m" })
            {
                Assert.Contains(samples, s => s.Name == "switch_endpoint_success_ratio" && s.Line.Contains($"endpoint=\"{endpoint}\",window=\"{window}\""));
            }
        }
        double Value(string name, string labels) => samples.Single(s => s.Name == name && s.Line.StartsWith($"{name}{{{labels}}}", StringComparison.Ordinal)).Value;
        Assert.Equal(9500, Value("switch_endpoint_weight_bps", "bank=\"102\",endpoint=\"ICBC-DC1\""));
        Assert.Equal(1, Value("switch_endpoint_state", "bank=\"102\",endpoint=\"ICBC-DC1\",state=\"up\""));
        Assert.Equal(0, Value("switch_endpoint_state", "bank=\"102\",endpoint=\"ICBC-DC1\",state=\"down\""));
        Assert.Equal(1, Value("switch_endpoint_breaker_state", "bank=\"102\",endpoint=\"ICBC-DC1\",state=\"closed\""));
        double sent = Value("switch_endpoint_requests_total", "bank=\"102\",endpoint=\"ICBC-DC1\"") + Value("switch_endpoint_requests_total", "bank=\"102\",endpoint=\"ICBC-DC2\"");
        Assert.Equal(50, sent);
        // The Exchange messages that carried them: one request each at least, batches when the link had several queued.
        double messages = Value("switch_endpoint_messages_total", "bank=\"102\",endpoint=\"ICBC-DC1\"") + Value("switch_endpoint_messages_total", "bank=\"102\",endpoint=\"ICBC-DC2\"");
        Assert.InRange(messages, 1, sent);
        Assert.Equal("counter", typed["switch_endpoint_messages_total"]);
        Assert.Equal(1.0, Value("switch_bank_success_ratio", "bank=\"102\",window=\"15m\""));
        Assert.Equal("counter", typed["switch_engine_events_applied_total"]);
        Assert.True(samples.Single(s => s.Name == "switch_engine_events_applied_total").Value >= 50);
    }
}
