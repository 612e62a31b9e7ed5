using System.Globalization;
using Switch.BankSim;
using Switch.Contracts.V1;
using Switch.Host.Tests.Reliability;
using EngineBreaker = Switch.Engine.Events.BreakerState;
using static Switch.Host.Tests.Faults.FaultyBankRig;

namespace Switch.Host.Tests.Faults;

/// <summary>
/// One bank endpoint misbehaving in each of the ways real ones do, under steady traffic to two banks: ICBC's DC1
/// is slow, refuses connections, answers system errors, never answers, or flaps, while ICBC-DC2 and the second bank
/// (ABC) stay healthy. In each, ABC's payments all succeed during the fault, every ICBC payment becomes final,
/// positions sum to zero, both banks' books agree with the switch, and nothing goes to DC1 while the switch has it out.
/// </summary>
public sealed class BankFaultScenarioTests
{
    /// <summary>Payments to ICBC answered while healthy before the fault starts, and after each step of it.</summary>
    private const int Warm = 30;
    private const int During = 60;
    /// <summary>A distant data centre's round trip, well within the deadline.</summary>
    private static readonly LatencyModel FarAway = new LatencyModel.Uniform(100, 300);

    [Fact]
    public async Task A_slow_endpoint_times_out_unknown_then_final_and_the_breaker_moves_its_share_to_the_other_endpoint()
    {
        await using FaultyBankRig rig = await FaultyBankRig.StartAsync();
        Traffic traffic = Traffic.Start(rig.Switch);
        await traffic.WaitForMoreAsync(FaultyBank, Warm);
        int latencyMs = 3 * BankTimeoutMs;
        rig.FaultyDc1.Reconfigure(o => o with { Latency = new LatencyModel.Fixed(latencyMs) });
        await WaitUntilAsync(() => rig.CountAudit("BREAKER_OPEN") >= 1, "DC1's breaker opens on its timeouts");
        await traffic.WaitForMoreAsync(FaultyBank, During);
        IReadOnlyList<Traffic.Sent> sent = await traffic.StopAsync();

        Settled settled = await rig.SettleAndCheckAsync(sent);
        Assert.True(settled.Unknown > 0, "no payment was unknown at DC1's deadline");
        Assert.True(settled.DispatchedWhileOut > 0, "no payment was made while DC1's breaker was open");
        Record(rig, traffic, "slow endpoint (latency past the deadline)",
            $"ICBC-DC1 turned to a fixed {latencyMs:N0} ms latency (deadline {BankTimeoutMs:N0} ms) under load", sent, settled);
    }

    [Fact]
    public async Task An_endpoint_refusing_connections_is_marked_unreachable_its_traffic_moves_and_nothing_is_lost()
    {
        await using FaultyBankRig rig = await FaultyBankRig.StartAsync();
        rig.FaultyDc1.Reconfigure(o => o with { Latency = FarAway }); // so that it holds work when it goes
        Traffic traffic = Traffic.Start(rig.Switch);
        await traffic.WaitForMoreAsync(FaultyBank, Warm);
        await rig.StopFaultyAsync(); // its port now refuses connections; what it held is lost with it
        await WaitUntilAsync(() => !rig.Endpoints()[0].Reachable, "DC1 marked unreachable");
        await traffic.WaitForMoreAsync(FaultyBank, During);
        await rig.RestartFaultyAsync();
        await WaitUntilAsync(() => rig.Endpoints()[0] is { Reachable: true, Breaker: EngineBreaker.Closed }, "DC1 back in rotation");
        await traffic.WaitForMoreAsync(FaultyBank, During);
        IReadOnlyList<Traffic.Sent> sent = await traffic.StopAsync();

        Settled settled = await rig.SettleAndCheckAsync(sent);
        Assert.True(settled.Unknown > 0, "DC1 held no payment when it went away");
        Assert.True(settled.DispatchedWhileOut > 0, "no payment was made while DC1 was unreachable");
        long back = rig.FaultyAudit().Last(e => e.Kind == "REACHABILITY" && e.Reachable).AtUnixUs;
        Assert.Contains(settled.Transactions, t => t.DispatchedUs > back && t.EndpointIndex == 0); // its share came back
        Record(rig, traffic, "endpoint refusing connections",
            "ICBC-DC1 (100 to 300 ms away) stopped under load, its port refusing connections, then started again on it", sent, settled);
    }

    [Fact]
    public async Task An_endpoint_answering_system_errors_trips_its_breaker_which_half_opens_and_closes_when_it_heals()
    {
        await using FaultyBankRig rig = await FaultyBankRig.StartAsync();
        Traffic traffic = Traffic.Start(rig.Switch);
        await traffic.WaitForMoreAsync(FaultyBank, Warm);
        rig.FaultyDc1.Reconfigure(o => o with { SystemErrorRate = 1.0 });
        await WaitUntilAsync(() => rig.CountAudit("BREAKER_OPEN") >= 1, "DC1's breaker opens on its system errors");
        await WaitUntilAsync(() => rig.CountAudit("BREAKER_OPEN") >= 2, "a failed probe while half-open opens it again");
        rig.FaultyDc1.Reconfigure(o => o with { SystemErrorRate = 0 }); // heals, connections untouched
        await WaitUntilAsync(() => rig.CountAudit("BREAKER_CLOSED") >= 1, "DC1's breaker closes after good probes");
        await traffic.WaitForMoreAsync(FaultyBank, During);
        IReadOnlyList<Traffic.Sent> sent = await traffic.StopAsync();

        Settled settled = await rig.SettleAndCheckAsync(sent);
        int systemErrors = sent.Count(s => s.Answer!.Status == TransactionStatus.Failed && s.Answer.BankReason == BankReasons.SystemError);
        Assert.True(systemErrors > 0, "no payment failed with SYSTEM_ERROR");
        // Each one the bank's own failure (one answered after the deadline is resolved by the query instead); none executed.
        Assert.InRange(systemErrors, 1, rig.FaultyBooks.Counts.SystemErrors);
        Assert.True(settled.DispatchedWhileOut > 0, "no payment was made while DC1's breaker was open");
        var breaker = rig.FaultyAudit().Where(e => e.Kind.StartsWith("BREAKER_", StringComparison.Ordinal)).Select(e => e.Kind).ToList();
        Assert.Equal("BREAKER_OPEN", breaker[0]);
        int closed = breaker.IndexOf("BREAKER_CLOSED");
        Assert.Equal("BREAKER_HALF_OPEN", breaker[closed - 1]); // closed only from half-open
        long closedAt = rig.FaultyAudit().First(e => e.Kind == "BREAKER_CLOSED").AtUnixUs;
        Assert.Contains(settled.Transactions, t => t.DispatchedUs > closedAt && t.EndpointIndex == 0); // its share came back
        Record(rig, traffic, "endpoint answering system errors",
            $"ICBC-DC1 answered every new payment FAILED/SYSTEM_ERROR ({systemErrors} of them) under load, then healed", sent, settled,
            $"breaker {string.Join(" → ", breaker.Select(k => k["BREAKER_".Length..].ToLowerInvariant()))}");
    }

    [Fact]
    public async Task An_endpoint_that_never_answers_leaves_its_payments_unknown_at_the_deadline_then_the_query_finds_them_executed()
    {
        await using FaultyBankRig rig = await FaultyBankRig.StartAsync();
        Traffic traffic = Traffic.Start(rig.Switch);
        await traffic.WaitForMoreAsync(FaultyBank, Warm);
        rig.FaultyDc1.Reconfigure(o => o with { NoAnswerRate = 1.0 }); // accepts and executes, never replies
        await WaitUntilAsync(() => rig.CountAudit("BREAKER_OPEN") >= 1, "DC1's breaker opens on its timeouts");
        await traffic.WaitForMoreAsync(FaultyBank, During);
        IReadOnlyList<Traffic.Sent> sent = await traffic.StopAsync();

        Settled settled = await rig.SettleAndCheckAsync(sent);
        int unknownThenSucceeded = sent.Count(s => s.Answer!.Status == TransactionStatus.Unknown
            && settled.Final[s.OrderNo].Status == TransactionStatus.Succeeded);
        Assert.True(unknownThenSucceeded > 0, "no unknown payment was found executed by the query");
        Assert.True(rig.FaultyBooks.Counts.Unanswered >= unknownThenSucceeded);
        Assert.True(settled.DispatchedWhileOut > 0, "no payment was made while DC1's breaker was open");
        Record(rig, traffic, "endpoint that never answers",
            "ICBC-DC1 executed every new payment and never replied, under load", sent, settled,
            $"{unknownThenSucceeded} unknown payments found executed by the query and made succeeded");
    }

    [Fact]
    public async Task A_flapping_endpoint_loses_nothing_executes_nothing_twice_and_traffic_follows_its_reachability()
    {
        const int Flaps = 4;
        await using FaultyBankRig rig = await FaultyBankRig.StartAsync();
        rig.FaultyDc1.Reconfigure(o => o with { Latency = FarAway }); // so that it holds work when it goes
        Traffic traffic = Traffic.Start(rig.Switch);
        for (int i = 0; i < Flaps; i++)
        {
            await traffic.WaitForMoreAsync(FaultyBank, Warm / 2);
            await rig.StopFaultyAsync();
            await WaitUntilAsync(() => !rig.Endpoints()[0].Reachable, $"DC1 marked unreachable (flap {i + 1})");
            await traffic.WaitForMoreAsync(FaultyBank, Warm / 2);
            await rig.RestartFaultyAsync();
            await WaitUntilAsync(() => rig.Endpoints()[0].Reachable, $"DC1 reachable again (flap {i + 1})");
        }
        await traffic.WaitForMoreAsync(FaultyBank, Warm);
        IReadOnlyList<Traffic.Sent> sent = await traffic.StopAsync();

        Settled settled = await rig.SettleAndCheckAsync(sent);
        List<Switch.Contracts.V1.AuditEntry> reachability = rig.FaultyAudit().Where(e => e.Kind == "REACHABILITY").ToList();
        Assert.True(reachability.Count(e => !e.Reachable) >= Flaps, $"{reachability.Count(e => !e.Reachable)} unreachable entries for {Flaps} stops");
        Assert.True(reachability.Count(e => e.Reachable) >= Flaps, $"{reachability.Count(e => e.Reachable)} reachable entries for {Flaps} restarts");
        Assert.True(settled.DispatchedWhileOut > 0, "no payment was made while DC1 was unreachable");
        Record(rig, traffic, "flapping endpoint",
            $"ICBC-DC1 (100 to 300 ms away) stopped and restarted {rig.Restarts} times under load (its books kept, as a bank's are)", sent, settled,
            $"{reachability.Count} reachability changes audited");
    }

    private static void Record(FaultyBankRig rig, Traffic traffic, string scenario, string fault, IReadOnlyList<Traffic.Sent> sent, Settled settled, string? more = null)
    {
        int faulty = sent.Count(s => s.Bank == FaultyBank);
        int healthy = sent.Count(s => s.Bank == HealthyBank);
        string breaker = $"DC1's breaker opened {rig.CountAudit("BREAKER_OPEN")} times";
        ReliabilityReport.Record("bank faults", scenario,
            string.Create(CultureInfo.InvariantCulture,
                $"{fault}; ICBC-DC2 and bank ABC healthy; {faulty:N0} payments to ICBC and {healthy:N0} to ABC in {traffic.Duration.TotalSeconds:F1} s, open loop, real switch host and simulators on loopback"),
            $"{settled.Summary(faulty)}; {breaker}{(more is null ? "" : "; " + more)}; ABC: all {healthy:N0} succeeded during the fault (measured {settled.HealthyLatency})");
    }
}
