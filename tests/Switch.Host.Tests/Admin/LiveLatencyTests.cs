using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Host.Admin;
using Switch.Host.Configuration;
using Switch.Telemetry;

namespace Switch.Host.Tests.Admin;

/// <summary>The live figures' latency: each second's histogram of an endpoint, read over a window and second by second.</summary>
public sealed class LiveLatencyTests
{
    [Fact]
    public void Window_and_per_second_percentiles_are_within_the_coarse_precision()
    {
        SwitchConfig config = HostConfig.EmbeddedDefault().Switch;
        var stats = new LiveStats(config);
        long secondUs = 1_763_000_000L * 1_000_000;
        // 1..1000 ms, one transaction each, final in the same second (a bank's timeout is longer than any of them).
        for (long id = 1; id <= 1000; id++)
        {
            long latencyUs = id * 1000;
            stats.Record(new OutputEvent
            {
                Kind = OutputKind.Feed, TransactionId = id, Status = TransactionStatus.Succeeded, BankIndex = 1, EndpointIndex = 0,
                ReceivedUs = secondUs + 500_000 - latencyUs, FinalUs = secondUs + 500_000,
            });
        }
        double precision = LatencyHistogram.RelativePrecision(LatencyPrecision.Coarse);
        WindowFigures window = stats.Window(1, 0, 10, secondUs + 900_000);
        Assert.Equal(1000, window.Succeeded);
        Assert.InRange(window.LatencyPercentileUs(0.5), 500_000 * (1 - precision), 500_000 * (1 + precision));
        Assert.InRange(window.LatencyPercentileUs(0.99), 990_000 * (1 - precision), 990_000 * (1 + precision));
        Assert.Equal(0, stats.Window(1, 1, 10, secondUs + 900_000).LatencyPercentileUs(0.5)); // the other endpoint saw none

        var perSecond = new List<(long P50Us, long Succeeded)>();
        stats.EachSecond(1, -1, LiveStats.SecondOf(secondUs) - 1, 3, (_, f) => perSecond.Add((f.LatencyPercentileUs(0.5), f.Succeeded)));
        Assert.Equal([(0L, 0L), (window.LatencyPercentileUs(0.5), 1000L), (0L, 0L)], perSecond);
    }
}
