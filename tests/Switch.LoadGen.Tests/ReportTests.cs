using Switch.Telemetry;

namespace Switch.LoadGen.Tests;

public sealed class ReportTests
{
    private static Report Sample(long scaleUs, long completed)
    {
        var total = new LatencyHistogram();
        var byBank = new[] { new LatencyHistogram(), new LatencyHistogram() };
        var counts = new long[4, 2, ResultRecorder.OutcomeCount];
        for (int i = 0; i < completed; i++)
        {
            long us = scaleUs + i % 100 * scaleUs / 10;
            total.Record(us);
            byBank[i % 2].Record(us);
            counts[(int)Kind.Payment, i % 2, i % 10 == 0 ? (int)Outcome.Failed : (int)Outcome.Succeeded]++;
        }
        var options = new RunOptions
        {
            Target = new Uri("http://127.0.0.1:7001"),
            Profile = new ConstantProfile(1000, 2),
            Workload = new WorkloadOptions { Banks = ["102", "308"] },
        };
        var run = new RunOutcome(new DateTime(2026, 11, 11, 0, 0, 0, DateTimeKind.Utc), 2.0, completed + 1,
            new ResultRecorder.Totals(total, byBank, counts, 0), 1, 0, 0, new Dictionary<string, long> { ["REJECTED DAILY_LIMIT_EXCEEDED"] = 3 },
            [new SecondPoint(1, completed / 2, completed / 2, scaleUs, scaleUs * 2, scaleUs * 3), new SecondPoint(2, completed / 2 + 1, completed / 2, scaleUs, scaleUs * 2, scaleUs * 3)],
            1.5, 0.8);
        return Report.Build(options, run, 1.2, [new Report.EndpointLine("102", "ICBC-DC1", 10, 9, 1, 0, 100, 900)], "test");
    }

    [Fact]
    public void A_report_round_trips_through_json()
    {
        Report r = Sample(1_000, 2_000);
        Assert.Equal(1_000, r.ThroughputPerSecond); // 2,000 completed over 2 s
        Assert.Equal(1_800, r.Outcomes["Succeeded"]);
        Assert.Equal(200, r.Outcomes["Failed"]);
        Assert.Equal(1_000, r.Banks[1].Completed);
        string json = r.ToJson();
        Report back = Report.FromJson(json, "r.json");
        Assert.Equal(json, back.ToJson());
        Assert.Equal(r.Latency, back.Latency);
        Assert.Equal(r.Series, back.Series);
        Assert.Equal(r.Banks[0].Latency, back.Banks[0].Latency);
        Assert.Equal(1, back.Lost);
        Assert.Throws<InvalidDataException>(() => Report.FromJson("{\"version\": 99}", "x.json"));
        Assert.Throws<InvalidDataException>(() => Report.FromJson("not json", "x.json"));
    }

    [Fact]
    public void Compare_gives_b_over_a_for_every_figure()
    {
        Report a = Sample(1_000, 2_000), b = Sample(2_000, 4_000);
        var rows = Report.Compare(a, b).ToDictionary(r => r.Name);
        Assert.Equal(2.0, rows["throughput/s"].Ratio!.Value, 6);
        Assert.Equal(2.0, rows["completed"].Ratio!.Value, 6);
        Assert.Equal(b.Latency.P99Us / (double)a.Latency.P99Us, rows["p99 ms"].Ratio!.Value, 6);
        Assert.Null(rows["duplicated"].Ratio); // 0 in A: no ratio
        string text = Report.CompareText(a, "a.json", b, "b.json");
        Assert.Contains("throughput/s", text);
        Assert.Contains("2.000", text);
    }

    [Fact]
    public void The_html_page_is_self_contained_with_its_charts()
    {
        string html = HtmlReport.Render(Sample(1_000, 2_000));
        Assert.Contains("<svg", html);
        Assert.Contains("<polyline", html);
        Assert.Contains("ICBC-DC1", html);
        Assert.DoesNotContain("<script src", html);
        Assert.DoesNotContain("<link", html);
        Assert.DoesNotContain("https://", html);
    }
}

public sealed class SurgeRecoveryTests
{
    private static SecondPoint P(int second, long p99Us) => new(second, 100, 100, p99Us / 2, p99Us, p99Us);

    [Fact]
    public void Recovery_counts_from_the_end_of_the_peak_until_p99_stays_under_the_target()
    {
        // The peak ends at 10 s; p99 is over 20 ms in seconds 11..13, under from second 14 (the point at 14 covers 13..14 s).
        SecondPoint[] series = [P(9, 90_000), P(10, 80_000), P(11, 60_000), P(12, 30_000), P(13, 25_000), P(14, 10_000), P(15, 9_000)];
        Assert.Equal(3, Report.RecoverySeconds(series, 10, 20));
        // Back over the target later: recovery starts again.
        SecondPoint[] relapse = [.. series, P(16, 50_000), P(17, 5_000)];
        Assert.Equal(6, Report.RecoverySeconds(relapse, 10, 20));
        Assert.Null(Report.RecoverySeconds([P(11, 50_000), P(12, 40_000)], 10, 20));
        Assert.Equal(0, Report.RecoverySeconds([P(11, 5_000)], 10, 20));
    }
}
