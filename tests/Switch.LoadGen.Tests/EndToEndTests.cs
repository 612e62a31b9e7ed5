namespace Switch.LoadGen.Tests;

/// <summary>The harness against the real switch process (the built Switch.Host, started as the run command does).</summary>
public sealed class EndToEndTests
{
    [Fact]
    public async Task A_short_open_loop_run_against_the_real_switch_loses_and_duplicates_nothing()
    {
        await using SwitchProcess process = await SwitchProcess.StartAsync(new SwitchSetup { BankLatency = "0", BankFailureRate = 0 }, TextWriter.Null);
        Assert.NotNull(process.InstitutionAddress);
        var workload = new WorkloadOptions(); // three institutions, four banks, payments, payouts, refunds, queries
        await Readiness.WaitForBanksAsync(process.InstitutionAddress!, workload, TextWriter.Null);

        // Streams of single messages, streams of batches (the Transact batch form, results read in batches), unary calls.
        foreach ((Transport transport, int batch) in new[] { (Transport.Stream, 1), (Transport.Stream, 32), (Transport.Unary, 1) })
        {
            var options = new RunOptions
            {
                Target = process.InstitutionAddress!,
                Transport = transport,
                Batch = batch,
                Profile = new ConstantProfile(500, 2),
                Lanes = 3,
                Window = 256,
                MaxUnaryInFlight = 256,
                GraceSeconds = 30,
                Workload = workload,
            };
            MachineTimes? machineBefore = MachineTimes.Read();
            RunOutcome run = await new LoadRunner(options, null).RunAsync();
            Report report = Report.Build(options, run, process.CpuSeconds(), [], "none") with
            {
                Machine = MachineTimes.Between(machineBefore, MachineTimes.Read()),
            };
            string what = $"{transport} batch {batch}: {report.Headline()}";
            Assert.True(run.Sent == 1_000, what);
            Assert.True(report.Completed == 1_000, what);
            Assert.True(report.Lost == 0 && report.Duplicated == 0 && report.Unexpected == 0, what);
            // Banks answer at once and never fail: every transfer succeeds, nothing is refused.
            Assert.True(report.Outcomes.Keys.All(k => k == nameof(Outcome.Succeeded)), what);
            Assert.True(report.OutcomesByKind.ContainsKey(nameof(Kind.Payout)) && report.OutcomesByKind.ContainsKey(nameof(Kind.Refund))
                && report.OutcomesByKind.ContainsKey(nameof(Kind.Query)), what);
            Assert.Equal(1_000, report.Banks.Sum(b => b.Completed));
            Assert.Equal(report.ToJson(), Report.FromJson(report.ToJson(), "e2e").ToJson());
            // The machine's share of the run, beside the figures, where Linux tells it.
            if (OperatingSystem.IsLinux()) Assert.Contains("\n  machine: user ", report.Headline());
        }
        if (process.AdminAddress is not null)
        {
            // The split by endpoint, as the switch counted it: every payment, payout and refund went to some endpoint.
            EndpointStatsSource.Snapshot stats = await EndpointStatsSource.FetchAsync(process.AdminAddress, EndpointStatsSource.DefaultOperatorKey);
            Assert.True(stats.Error is null, stats.Error);
            Assert.True(stats.Lines.Sum(l => l.Requests) > 0, string.Join(", ", stats.Lines));
        }
        Assert.Equal(0, await process.StopAsync());
    }
}
