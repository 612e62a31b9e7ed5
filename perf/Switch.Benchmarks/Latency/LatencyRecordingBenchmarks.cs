using BenchmarkDotNet.Attributes;
using HdrHistogram;
using Switch.Telemetry;

namespace Switch.Benchmarks.Latency;

/// <summary>
/// The cost of recording one latency into the switch's one latency histogram (<see cref="LatencyHistogram"/>, over
/// HdrHistogram) at both its precisions, against bare HdrHistogram (what the wrapper's clamping and exact min, max and
/// sum add). One operation is one recorded value; the values are a fixed spread from 1 µs to 20 s, so every bucket
/// range is exercised. Before the one histogram, the same values cost the load harness's own histogram 13.0 ns
/// (HdrHistogram at 3 digits: 3.8 ns) and the live figures' bucket increment 1.5 ns (HdrHistogram at 1 digit: 3.7 ns),
/// none allocating (median, 2-core machine shared with other builds; git history has that benchmark).
/// Run: dotnet run -c Release --project perf/Switch.Benchmarks -- --filter '*LatencyRecording*'
/// </summary>
[MemoryDiagnoser]
public class LatencyRecordingBenchmarks
{
    private const int Values = 4096;
    private readonly long[] _valuesUs = new long[Values];
    private readonly LatencyHistogram _fine = new(LatencyPrecision.Fine);
    private readonly LatencyHistogram _coarse = new(LatencyPrecision.Coarse);
    private readonly LongHistogram _bareFine = new(LatencyHistogram.HighestTrackableUs, 3);
    private readonly IntHistogram _bareCoarse = new(LatencyHistogram.HighestTrackableUs, 1);

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(7);
        for (int i = 0; i < Values; i++) _valuesUs[i] = (long)Math.Exp(random.NextDouble() * Math.Log(20_000_000));
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Values)]
    public void Fine()
    {
        foreach (long v in _valuesUs) _fine.Record(v);
    }

    [Benchmark(OperationsPerInvoke = Values)]
    public void BareHdrFine()
    {
        foreach (long v in _valuesUs) _bareFine.RecordValue(v);
    }

    [Benchmark(OperationsPerInvoke = Values)]
    public void Coarse()
    {
        foreach (long v in _valuesUs) _coarse.Record(v);
    }

    [Benchmark(OperationsPerInvoke = Values)]
    public void BareHdrCoarse()
    {
        foreach (long v in _valuesUs) _bareCoarse.RecordValue(v);
    }
}
