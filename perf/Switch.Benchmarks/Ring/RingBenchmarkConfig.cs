using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Switch.Benchmarks.Ring;

/// <summary>Adds the median and the throughput it implies (one operation is one event).</summary>
public sealed class RingBenchmarkConfig : ManualConfig
{
    public RingBenchmarkConfig()
    {
        AddColumn(StatisticColumn.Median, new EventsPerSecondColumn());
    }
}

/// <summary>Events per second from the median time per operation (per event).</summary>
public sealed class EventsPerSecondColumn : IColumn
{
    public string Id => nameof(EventsPerSecondColumn);
    public string ColumnName => "Events/s (median)";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "Events per second implied by the median time per event";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
    {
        double? medianNanoseconds = summary[benchmarkCase]?.ResultStatistics?.Median;
        return medianNanoseconds is > 0 ? $"{1e9 / medianNanoseconds.Value / 1e6:F1} M" : "n/a";
    }

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
}
