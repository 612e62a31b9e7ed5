using System.Globalization;

namespace Switch.LoadGen;

/// <summary>
/// The switch's managed heap during a run, from its /metrics: bytes allocated (<c>dotnet_gc_allocated_bytes_total</c>),
/// collections per generation (<c>dotnet_collection_count_total</c>) and GC pause time, read before and after the
/// measured window. Allocation per transaction is what drives the collections, and each one queues every answer behind it.
/// </summary>
public sealed record SwitchHeap(long AllocatedBytes, long Gen0, long Gen1, long Gen2, double PauseSeconds)
{
    /// <summary>Parses the Prometheus text exposition; null when the allocation counter is not in it (an older switch).</summary>
    public static SwitchHeap? Parse(string metrics)
    {
        long allocated = -1, gen0 = 0, gen1 = 0, gen2 = 0;
        double pause = 0;
        foreach (string raw in metrics.Split('\n'))
        {
            string line = raw.Trim();
            if (line.StartsWith("dotnet_gc_allocated_bytes_total ", StringComparison.Ordinal)) allocated = (long)Value(line);
            else if (line.StartsWith("dotnet_gc_pause_seconds_total ", StringComparison.Ordinal)) pause = Value(line);
            else if (line.StartsWith("dotnet_collection_count_total{generation=\"0\"}", StringComparison.Ordinal)) gen0 = (long)Value(line);
            else if (line.StartsWith("dotnet_collection_count_total{generation=\"1\"}", StringComparison.Ordinal)) gen1 = (long)Value(line);
            else if (line.StartsWith("dotnet_collection_count_total{generation=\"2\"}", StringComparison.Ordinal)) gen2 = (long)Value(line);
        }
        return allocated < 0 ? null : new SwitchHeap(allocated, gen0, gen1, gen2, pause);
    }

    private static double Value(string line) => double.Parse(line[(line.LastIndexOf(' ') + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture);

    /// <summary>What happened between two readings (all cumulative).</summary>
    public SwitchHeap Since(SwitchHeap before) => new(AllocatedBytes - before.AllocatedBytes, Gen0 - before.Gen0, Gen1 - before.Gen1,
        Gen2 - before.Gen2, PauseSeconds - before.PauseSeconds);

    /// <summary>One line for the report: bytes a transaction, collections by generation, pause time and its share of the run.</summary>
    public string Line(long transactions, double runSeconds) => string.Create(CultureInfo.InvariantCulture,
        $"allocated {AllocatedBytes / (double)Math.Max(1, transactions):F0} bytes/tx ({AllocatedBytes / Math.Max(runSeconds, 1e-9) / (1 << 20):F0} MiB/s), " +
        $"collections gen0 {Gen0} gen1 {Gen1} gen2 {Gen2}, GC pause {PauseSeconds * 1e3:F0} ms ({PauseSeconds * 100 / Math.Max(runSeconds, 1e-9):F2}% of the run)");
}

/// <summary>The switch's operator HTTP /metrics text, read once per point of a run.</summary>
public static class SwitchMetrics
{
    /// <summary>Reads /metrics at <paramref name="operatorHttp"/>; null (and no failure) when it cannot be read.</summary>
    public static async Task<string?> FetchAsync(Uri? operatorHttp)
    {
        if (operatorHttp is null) return null;
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            return await http.GetStringAsync(new Uri(operatorHttp, "/metrics"));
        }
        catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
        {
            return null;
        }
    }
}
