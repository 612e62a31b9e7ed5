using BenchmarkDotNet.Attributes;
using HdrHistogram;

namespace Switch.Benchmarks.Latency;

/// <summary>
/// The cost of recording one latency: the two hand-made histograms (the load harness's, the live figures' per-second
/// buckets) against HdrHistogram at the precision each needs. One operation is one recorded value; the values are a
/// fixed spread from 1 µs to 20 s, so every bucket range is exercised.
/// Run: dotnet run -c Release --project perf/Switch.Benchmarks -- --filter '*LatencyRecording*'
/// </summary>
[MemoryDiagnoser]
public class LatencyRecordingBenchmarks
{
    private const int Values = 4096;
    private const long HarnessHighestUs = (1L << 36) - 1;
    private const long LiveHighestUs = (1L << 31) - 1;
    private readonly long[] _valuesUs = new long[Values];
    private readonly Switch.LoadGen.LatencyHistogram _harnessOld = new();
    private readonly int[] _liveOld = new int[Switch.Host.Admin.LatencyHistogram.Buckets];
    private readonly LongHistogram _harnessHdr = new(HarnessHighestUs, 3);
    private readonly IntHistogram _liveHdr = new(LiveHighestUs, 1);

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(7);
        for (int i = 0; i < Values; i++) _valuesUs[i] = (long)Math.Exp(random.NextDouble() * Math.Log(20_000_000));
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Values)]
    public void HarnessOld()
    {
        foreach (long v in _valuesUs) _harnessOld.Record(v);
    }

    [Benchmark(OperationsPerInvoke = Values)]
    public void HarnessHdr()
    {
        foreach (long v in _valuesUs) _harnessHdr.RecordValue(v);
    }

    [Benchmark(OperationsPerInvoke = Values)]
    public void LiveOld()
    {
        int[] counts = _liveOld;
        foreach (long v in _valuesUs) counts[Switch.Host.Admin.LatencyHistogram.Index(v)]++;
    }

    [Benchmark(OperationsPerInvoke = Values)]
    public void LiveHdr()
    {
        foreach (long v in _valuesUs) _liveHdr.RecordValue(v);
    }
}
