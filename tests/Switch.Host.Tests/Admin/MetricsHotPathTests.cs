using Prometheus;
using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Host.Admin;
using Switch.Host.Configuration;

namespace Switch.Host.Tests.Admin;

/// <summary>The output thread's observations (live figures and Prometheus histograms and counters) allocate nothing.</summary>
public sealed class MetricsHotPathTests
{
    [Fact]
    public async Task Recording_requests_answers_rejects_and_outcomes_allocates_nothing()
    {
        SwitchConfig config = HostConfig.EmbeddedDefault().Switch;
        var stats = new LiveStats(config);
        CollectorRegistry registry = Metrics.NewCustomRegistry();
        stats.Attach(new TransactionMetrics(MetricsWriter.Factory(registry), config));
        long nowUs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;

        void Round(long id)
        {
            var request = new OutputEvent
            {
                Kind = OutputKind.BankRequest, TransactionId = id, Attempt = 1, Operation = BankOperation.Debit, BankIndex = 1, EndpointIndex = 0,
                InstitutionIndex = 0, RequestType = RequestType.AgreementPayment, TimestampUs = nowUs + id,
            };
            stats.Record(request);
            if (id % 3 == 0)
            {
                stats.Record(request with { Kind = OutputKind.Answer, Status = TransactionStatus.Unknown, TimestampUs = nowUs + id + 5_000 });
            }
            stats.Record(request with
            {
                Kind = OutputKind.Feed, Status = id % 2 == 0 ? TransactionStatus.Succeeded : TransactionStatus.Failed,
                ReceivedUs = nowUs + id, FinalUs = nowUs + id + 7_000,
            });
            stats.Record(request with { Kind = OutputKind.Answer, Reject = RejectCode.DailyLimitExceeded, BankIndex = -1 });
        }

        // Even with a trace running on the thread.
        using var source = new System.Diagnostics.ActivitySource("switch-test");
        using var listener = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = _ => true,
            Sample = (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.AllDataAndRecorded,
        };
        System.Diagnostics.ActivitySource.AddActivityListener(listener);
        using System.Diagnostics.Activity? trace = source.StartActivity("output");
        Assert.NotNull(trace);

        for (long id = 1; id <= 1_000; id++) Round(id); // warm up: JIT, first buckets
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (long id = 1_001; id <= 51_000; id++) Round(id);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);

        // And it was all counted.
        using var text = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(text);
        var scrape = new PrometheusText(System.Text.Encoding.UTF8.GetString(text.ToArray()));
        Assert.Equal(51_000, scrape.Sum("switch_transactions_total", "outcome=\"rejected\"", "bank=\"none\""));
        Assert.Equal(51_000, scrape.Sum("switch_transaction_duration_seconds_count", "type=\"agreement_payment\""));
        Assert.Equal(51_000, scrape.Sum("switch_bank_duration_seconds_count"));
        Assert.Equal(17_000, scrape.Sum("switch_unknown_to_final_seconds_count"));
        Assert.Equal(51_000, scrape.Sum("switch_rejects_total", "code=\"DAILY_LIMIT_EXCEEDED\""));
    }
}
