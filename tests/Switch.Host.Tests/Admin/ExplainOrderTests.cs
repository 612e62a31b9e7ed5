using Switch.BankSim;
using Switch.Contracts.V1;
using Switch.Engine.Hashing;
using Switch.Grpc;
using Switch.Host.Admin;
using Switch.Host.Configuration;
using Switch.Host.Tests.EndToEnd;

namespace Switch.Host.Tests.Admin;

/// <summary>
/// Routing explained over real sockets: bank 102's two endpoints are two bank simulators, so the endpoint a payment
/// reached is what a simulator's ledger holds. Every explanation comes from a replay of the journal on disk; it must
/// name what the operators did (weights, an endpoint down, a breaker open), the draw that picked the endpoint the bank
/// saw the request on, the limit that refused a payment, and give the same answer after a restart.
/// </summary>
public sealed class ExplainOrderTests : WithDataDirectory
{
    private const string IcbcKey = "icbc-explain-key";
    private const string AbcKey = "abc-explain-key";
    private const string TenpayOpsKey = "tenpay-explain-key";
    private const string AlipayOpsKey = "alipay-explain-key";

    private static HostConfig Config(string data, BankSimulatorServer dc1, BankSimulatorServer dc2)
    {
        HostConfig config = RunningSwitch.TestConfig(data, rules: r => r with
        {
            BatchCloseTimes = [],
            // A breaker opens after 4 calls half failed, and stays open for the test.
            BreakerMinCalls = 4,
            BreakerErrorRatePct = 50,
            BreakerOpenMs = 600_000,
        });
        config = RunningSwitch.WithBankAt(config, 102, dc1.Address, dc2.Address);
        OperatorConfig Scoped(string id, string key, OperatorScope scope) =>
            new() { Id = id, KeyHash = ApiKeyHash.Of(key), Role = OperatorConfig.RoleRead, Scope = scope };
        return config with
        {
            Operators =
            [
                .. config.Operators,
                Scoped("icbc", IcbcKey, new OperatorScope { Bank = "102" }),
                Scoped("abc", AbcKey, new OperatorScope { Bank = "103" }),
                Scoped("tenpay", TenpayOpsKey, new OperatorScope { Institution = "TENPAY" }),
                Scoped("alipay", AlipayOpsKey, new OperatorScope { Institution = "ALIPAY" }),
            ],
        };
    }

    private static BankSimulatorOptions Sim(int seed) => new()
    {
        Latency = new LatencyModel.Uniform(1, 3), FailureRate = 0, Seed = seed, BankCodes = [102],
    };

    [Fact]
    public async Task Explanations_name_the_weights_the_draw_the_exclusions_and_the_limit_and_survive_a_restart()
    {
        await using BankSimulatorServer dc1 = await BankSimulatorServer.StartAsync(Sim(1));
        await using BankSimulatorServer dc2 = await BankSimulatorServer.StartAsync(Sim(2));
        BankSimulatorServer[] sims = [dc1, dc2];
        HostConfig config = Config(Data, dc1, dc2);
        var explained = new Dictionary<string, ExplainReply>();

        await using (RunningSwitch sw = await RunningSwitch.StartAsync(config, Data))
        {
            using var admin = new AdminClient(sw);
            await admin.WaitAllTakeTrafficAsync("102");
            await SetWeightsAsync(admin, 7_000, 3_000);

            // 70/30: each payment's explanation names the weights and the draw, and its endpoint is the simulator that saw it.
            var seenAt = new int[2];
            for (int i = 0; i < 12; i++)
            {
                string order = $"EX-W-{i}";
                TransferResult paid = await sw.PayAsync(RunningSwitch.Payment(order, 1_000 + i, account: $"62220102{i:D8}"));
                Assert.Equal(TransactionStatus.Succeeded, paid.Status);
                ExplainReply reply = await ExplainAsync(admin, order);
                OrderDecision d = Assert.Single(reply.Decisions);
                Assert.Equal(("ADMITTED", paid.TransactionId, "102"), (d.Outcome, d.TransactionId, d.Bank));
                Assert.Equal([7_000, 3_000], d.Endpoints.Select(e => e.WeightBps));
                Assert.All(d.Endpoints, e => Assert.Equal("", e.Excluded));
                DrawStep draw = Assert.Single(d.Draws);
                Assert.Equal(paid.TransactionId, d.HashedTransactionId);
                Assert.Equal(StableHash.Mix((ulong)paid.TransactionId).ToString("x16"), draw.Hash);
                Assert.Equal(10_000, draw.LiveWeightBps);
                Assert.Equal((long)(StableHash.Mix((ulong)paid.TransactionId) % 10_000), draw.PointBps);
                Assert.Equal([("ICBC-DC1", 0L, 7_000L), ("ICBC-DC2", 7_000L, 10_000L)], draw.Ranges.Select(r => (r.Endpoint, r.FromBps, r.ToBps)));
                int chosen = draw.PointBps < 7_000 ? 0 : 1;
                Assert.Equal(d.Endpoints[chosen].Name, draw.LandedOn);
                Assert.Equal(d.Endpoints[chosen].Name, d.Endpoint);
                Assert.True(d.Endpoints[chosen].Chosen);
                // The bank saw it where the explanation says, and only there.
                Assert.True(sims[chosen].Ledger.TryGet(paid.TransactionId, out _), $"{order}: not at {d.Endpoint}");
                Assert.False(sims[1 - chosen].Ledger.TryGet(paid.TransactionId, out _), $"{order}: also at the other endpoint");
                Assert.Contains(d.Because, b => b.StartsWith("weights of bank 102: ICBC-DC1 7000, ICBC-DC2 3000"));
                Assert.Contains(d.Because, b => b.Contains($"= {draw.PointBps} in {d.Endpoint}'s range"));
                seenAt[chosen]++;
                explained[order] = reply;
            }
            Assert.True(seenAt[0] > 0 && seenAt[1] > 0, $"the 12 draws went {seenAt[0]}/{seenAt[1]}: both endpoints should be seen");

            // An operator takes DC2 down: its exclusion is named, DC1 takes the whole draw.
            await SetStateAsync(admin, "ICBC-DC2", EndpointAdminState.Down);
            OrderDecision down = await PayAndExplainAsync(sw, admin, "EX-DOWN", explained);
            Assert.Equal("DOWN", down.Endpoints[1].Excluded);
            Assert.Equal(("ADMITTED", "ICBC-DC1", 7_000L), (down.Outcome, down.Endpoint, down.Draws[0].LiveWeightBps));
            Assert.Contains("ICBC-DC2 excluded: DOWN", down.Because);
            await SetStateAsync(admin, "ICBC-DC2", EndpointAdminState.Draining);
            OrderDecision draining = await PayAndExplainAsync(sw, admin, "EX-DRAIN", explained);
            Assert.Equal(("DRAINING", "ICBC-DC1"), (draining.Endpoints[1].Excluded, draining.Endpoint));
            await SetStateAsync(admin, "ICBC-DC2", EndpointAdminState.Up);

            // DC2 fails every call until its breaker opens (all traffic there meanwhile), then 70/30 again.
            dc2.Reconfigure(o => o with { SystemErrorRate = 1.0 });
            await SetWeightsAsync(admin, 0, 10_000);
            for (int i = 0; (await admin.BankAsync("102")).Endpoints[1].Breaker != BreakerState.Open; i++)
            {
                Assert.True(i < 40, "the breaker of ICBC-DC2 did not open");
                await sw.PayAsync(RunningSwitch.Payment($"EX-TRIP-{i}", 500, account: $"62229999{i:D8}"));
            }
            // With DC2's breaker open and DC1 at weight 0, nothing is in the draw: refused, and the reason named.
            OrderDecision none = await PayAndExplainAsync(sw, admin, "EX-NONE", explained);
            Assert.Equal(("REFUSED", "BANK_UNAVAILABLE", "bank"), (none.Outcome, none.RejectCode, none.RejectField));
            Assert.Equal(("NO_WEIGHT", "BREAKER_OPEN"), (none.Endpoints[0].Excluded, none.Endpoints[1].Excluded));
            Assert.Equal(0, none.Draws[0].LiveWeightBps);
            Assert.Contains("ICBC-DC2 BREAKER_OPEN", none.RefusedBy);
            await SetWeightsAsync(admin, 7_000, 3_000);
            OrderDecision open = await PayAndExplainAsync(sw, admin, "EX-OPEN", explained);
            Assert.Equal(("BREAKER_OPEN", "OPEN"), (open.Endpoints[1].Excluded, open.Endpoints[1].Breaker));
            Assert.Equal(("ADMITTED", "ICBC-DC1", 7_000L), (open.Outcome, open.Endpoint, open.Draws[0].LiveWeightBps));
            Assert.True(open.Endpoints[1].BreakerOpenUntilUnixUs > open.AtUnixUs);

            // The daily account limit (bank 102: 2,000,000 fen a day per account) refuses the second payment: named with its figures.
            Assert.Equal(TransactionStatus.Succeeded, (await sw.PayAsync(RunningSwitch.Payment("EX-LIM-1", 1_500_000, account: "6222010277770001"))).Status);
            RpcException refused = await Assert.ThrowsAsync<RpcException>(() => sw.PayAsync(RunningSwitch.Payment("EX-LIM-2", 600_000, account: "6222010277770001")));
            Assert.StartsWith("DAILY_LIMIT_EXCEEDED", refused.Status.Detail);
            ExplainReply limit = await ExplainAsync(admin, "EX-LIM-2");
            explained["EX-LIM-2"] = limit;
            OrderDecision lim = Assert.Single(limit.Decisions);
            Assert.Equal(("REFUSED", "DAILY_LIMIT_EXCEEDED", "amount_fen", 0L), (lim.Outcome, lim.RejectCode, lim.RejectField, lim.TransactionId));
            Assert.Equal("daily account limit at bank 102: 1500000 used today + amount 600000 = 2100000 > limit 2000000", lim.RefusedBy);
            Assert.StartsWith("DAILY_LIMIT_EXCEEDED: amount_fen", lim.RejectMessage);

            // Refused, then admitted under the same order number: both decisions, the admission last.
            Assert.Equal(TransactionStatus.Succeeded, (await sw.PayAsync(RunningSwitch.Payment("EX-LIM-2", 400_000, account: "6222010277770001"))).Status);
            ExplainReply retried = await ExplainAsync(admin, "EX-LIM-2");
            Assert.Equal(["REFUSED", "ADMITTED"], retried.Decisions.Select(d => d.Outcome));
            Assert.Equal(2, retried.DecisionsSeen);
            Assert.True(retried.JournalRecordsScanned > 0 && retried.EventsReplayed > 0);
            explained["EX-LIM-2"] = retried;

            // Unknown order, malformed requests, scopes; the JSON API answers the same.
            RpcException missing = await AdminClient.FailsAsync(() => ExplainAsync(admin, "EX-NO-SUCH"), StatusCode.NotFound);
            Assert.Contains("EX-NO-SUCH", missing.Status.Detail);
            await AdminClient.FailsAsync(() => admin.CallAsync(AdminMethods.ExplainOrder, new ExplainRequest { OrderNo = "EX-W-0" }, AdminClient.ViewerKey), StatusCode.InvalidArgument);
            await AdminClient.FailsAsync(() => admin.CallAsync(AdminMethods.ExplainOrder, new ExplainRequest { Institution = "NOPE", OrderNo = "EX-W-0" }, AdminClient.ViewerKey), StatusCode.InvalidArgument);
            await AdminClient.FailsAsync(() => ExplainAsync(admin, "EX-W-0", TenpayOpsKey), StatusCode.PermissionDenied);
            RpcException otherBank = await AdminClient.FailsAsync(() => ExplainAsync(admin, "EX-W-0", AbcKey), StatusCode.PermissionDenied);
            Assert.Contains("bank 103", otherBank.Status.Detail);
            Assert.Equal(explained["EX-W-0"].Decisions, (await ExplainAsync(admin, "EX-W-0", IcbcKey)).Decisions);
            ExplainReply own = await admin.CallAsync(AdminMethods.ExplainOrder, new ExplainRequest { OrderNo = "EX-W-0" }, AlipayOpsKey);
            Assert.Equal(explained["EX-W-0"].Decisions, own.Decisions);
            (int status, string body, _) = await admin.PostJsonAsync("ExplainOrder", """{"institution":"ALIPAY","orderNo":"EX-DOWN"}""", AdminClient.ViewerKey);
            Assert.Equal(200, status);
            Assert.Equal(explained["EX-DOWN"].Decisions, Google.Protobuf.JsonParser.Default.Parse<ExplainReply>(body).Decisions);
        }

        // A restart: the same journal, the same explanations.
        await using (RunningSwitch sw = await RunningSwitch.StartAsync(config, Data))
        {
            using var admin = new AdminClient(sw);
            foreach ((string order, ExplainReply before) in explained)
            {
                ExplainReply after = await ExplainAsync(admin, order);
                Assert.Equal(before.Decisions, after.Decisions);
            }
        }
    }

    [Fact]
    public async Task An_endpoint_the_connector_cannot_reach_is_named_unreachable()
    {
        await using BankSimulatorServer dc1 = await BankSimulatorServer.StartAsync(Sim(3));
        await using BankSimulatorServer dc2 = await BankSimulatorServer.StartAsync(Sim(4));
        await using RunningSwitch sw = await RunningSwitch.StartAsync(Config(Data, dc1, dc2), Data);
        using var admin = new AdminClient(sw);
        await admin.WaitAllTakeTrafficAsync("102");
        await dc2.DisposeAsync(); // DC2's bank goes away: the connector reports it unreachable (an engine event)
        await AdminClient.WaitUntilAsync(async () => !(await admin.BankAsync("102")).Endpoints[1].Reachable, "ICBC-DC2 unreachable");
        OrderDecision d = await PayAndExplainAsync(sw, admin, "EX-GONE", new Dictionary<string, ExplainReply>());
        Assert.Equal(("UNREACHABLE", false), (d.Endpoints[1].Excluded, d.Endpoints[1].Reachable));
        Assert.Equal(("ADMITTED", "ICBC-DC1", 5_000L), (d.Outcome, d.Endpoint, d.Draws[0].LiveWeightBps));
        Assert.Contains("ICBC-DC2 excluded: UNREACHABLE", d.Because);
    }

    [Fact]
    public async Task Explanations_beyond_the_limit_are_refused_resource_exhausted_until_a_slot_frees()
    {
        await using RunningSwitch sw = await RunningSwitch.StartAsync(AdminClient.Config(Data), Data);
        await sw.PayAsync(RunningSwitch.Payment("EX-SLOT-1", 1_000));
        var holding = new TaskCompletionSource();
        var release = new TaskCompletionSource();
        // One slot; the first explanation holds it (inside its slot, before its replay) until released.
        var explanations = new OrderExplanations(sw.Host.Engine, sw.Host.Engine.Logic.Config, Path.Combine(Data, "scratch"), 1, Log.Console,
            async cancel =>
            {
                holding.TrySetResult();
                await release.Task.WaitAsync(cancel);
            });
        var viewer = new AuthenticatedOperator("viewer", OperatorRole.Read);
        var request = new ExplainRequest { Institution = "ALIPAY", OrderNo = "EX-SLOT-1" };
        Task<ExplainReply> first = explanations.ExplainAsync(request, viewer, CancellationToken.None);
        await holding.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, explanations.Running);
        RpcException busy = await Assert.ThrowsAsync<RpcException>(() => explanations.ExplainAsync(request, viewer, CancellationToken.None));
        Assert.Equal(StatusCode.ResourceExhausted, busy.StatusCode);
        Assert.Contains("maxConcurrentExplains", busy.Status.Detail);
        release.SetResult();
        Assert.Equal("ADMITTED", Assert.Single((await first).Decisions).Outcome);
        Assert.Equal(0, explanations.Running);
        Assert.Equal("ADMITTED", Assert.Single((await explanations.ExplainAsync(request, viewer, CancellationToken.None)).Decisions).Outcome);
    }

    private static Task<ExplainReply> ExplainAsync(AdminClient admin, string order, string key = AdminClient.ViewerKey) =>
        admin.CallAsync(AdminMethods.ExplainOrder, new ExplainRequest { Institution = "ALIPAY", OrderNo = order }, key);

    private static async Task<OrderDecision> PayAndExplainAsync(RunningSwitch sw, AdminClient admin, string order, Dictionary<string, ExplainReply> explained)
    {
        // A payer account of its own: the daily limit stays out of it.
        try
        {
            await sw.PayAsync(RunningSwitch.Payment(order, 700, account: $"62220103{explained.Count:D8}"));
        }
        catch (RpcException)
        {
            // a refusal: explained below
        }
        ExplainReply reply = await ExplainAsync(admin, order);
        explained[order] = reply;
        return Assert.Single(reply.Decisions);
    }

    private static async Task SetWeightsAsync(AdminClient admin, int dc1Bps, int dc2Bps)
    {
        var request = new SetWeightsRequest { Bank = "102", Reason = "explain test" };
        request.WeightsBps.Add([dc1Bps, dc2Bps]);
        await admin.CallAsync(AdminMethods.SetWeights, request);
    }

    private static Task SetStateAsync(AdminClient admin, string endpoint, EndpointAdminState state) =>
        admin.CallAsync(AdminMethods.SetEndpointState, new SetEndpointStateRequest { Bank = "102", Endpoint = endpoint, State = state, Reason = "explain test" });
}
