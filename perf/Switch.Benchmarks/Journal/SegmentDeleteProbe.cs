using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Switch.Journal;

namespace Switch.Benchmarks.Journal;

/// <summary>
/// What a retirement's deletion costs the journal's commits, as the slowest commit while it runs (a tail, which a
/// BenchmarkDotNet mean would hide: hence a probe of its own). Four 256 MiB segment files (a retirement at the design
/// peak frees about that many), written and durable, are deleted on another thread, at once (<c>unlink</c>, as before)
/// or through <see cref="FileReclaimer"/>, while this thread makes a commit-sized write (4 KiB, O_DIRECT and O_SYNC,
/// as the journal's device makes them) every millisecond on the same file system, from 0.5 s before the deletion to
/// 2 s after. On ext4 mounted with <c>discard</c> an unlink trims the freed extents in the file system's commit that
/// the writes wait for. The two ways alternate, round by round. Run on the disk the switch's data goes to (TMPDIR).
/// Run: dotnet run -c Release --project perf/Switch.Benchmarks -- segment-delete [rounds, 1 to 100; default 4]
/// </summary>
public static class SegmentDeleteProbe
{
    private const int Segments = 4;
    private const long SegmentBytes = 256L << 20;
    private const int ChunkBytes = 1 << 20;
    private const int BeforeMs = 500;
    private const int AfterMs = 2000;
    private const int MaxRounds = 100;

    public static int Run(string[] args)
    {
        int rounds = 4;
        if (args.Length > 0 && (!int.TryParse(args[0], out rounds) || rounds is < 1 or > MaxRounds))
        {
            Console.Error.WriteLine($"segment-delete: rounds is 1 to {MaxRounds}, got '{args[0]}'");
            return 2;
        }
        string directory = Path.Combine(Path.GetTempPath(), "switch-bench-delete-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        using var reclaimer = new FileReclaimer("bench-reclaim");
        try
        {
            Console.WriteLine($"{Segments} x {SegmentBytes >> 20} MiB deleted on another thread; 4 KiB O_DIRECT+O_SYNC writes 1 ms apart, {BeforeMs} ms before to {AfterMs} ms after; in {directory}");
            for (int round = 1; round <= rounds; round++)
            {
                foreach (bool paced in new[] { false, true })
                {
                    string[] segments = Fill(directory);
                    Result r = Measure(directory, segments, paced, reclaimer);
                    if (!reclaimer.WaitIdle(TimeSpan.FromMinutes(1))) throw new TimeoutException("the reclaimer did not finish within a minute");
                    Console.WriteLine($"round {round} {(paced ? "reclaimer" : "unlink   ")}: deletion call {r.DeleteMs,6:F1} ms | writes before: p50 {r.BeforeP50Ms:F2} max {r.BeforeMaxMs,5:F1} ms | from the deletion: p50 {r.AfterP50Ms:F2} p99 {r.AfterP99Ms,5:F1} max {r.AfterMaxMs,5:F1} ms, over 20 ms: {r.AfterOver20}");
                }
            }
            return 0;
        }
        finally
        {
            reclaimer.WaitIdle(TimeSpan.FromMinutes(1));
            Directory.Delete(directory, recursive: true);
        }
    }

    private readonly record struct Result(double DeleteMs, double BeforeP50Ms, double BeforeMaxMs, double AfterP50Ms, double AfterP99Ms, double AfterMaxMs, int AfterOver20);

    private static string[] Fill(string directory)
    {
        byte[] chunk = new byte[ChunkBytes];
        Random.Shared.NextBytes(chunk);
        var segments = new string[Segments];
        for (int i = 0; i < Segments; i++)
        {
            segments[i] = Path.Combine(directory, $"log.{i}");
            using SafeFileHandle file = File.OpenHandle(segments[i], FileMode.Create, FileAccess.Write);
            for (long at = 0; at < SegmentBytes; at += ChunkBytes) RandomAccess.Write(file, chunk, at);
            RandomAccess.FlushToDisk(file);
        }
        return segments;
    }

    private static unsafe Result Measure(string directory, string[] segments, bool paced, FileReclaimer reclaimer)
    {
        byte* page = (byte*)NativeMemory.AlignedAlloc(DirectFile.AlignBytes, DirectFile.AlignBytes);
        try
        {
            new Span<byte>(page, DirectFile.AlignBytes).Fill(0x5A);
            var data = new ReadOnlySpan<byte>(page, DirectFile.AlignBytes);
            using SafeFileHandle log = DirectFile.Open(Path.Combine(directory, "commits"), truncate: true, sync: true, out _);
            var before = new List<double>();
            var after = new List<double>();
            double deleteMs = 0;
            Thread? deleter = null;
            long offset = 0;
            long started = Stopwatch.GetTimestamp();
            while (true)
            {
                double atMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                if (atMs >= BeforeMs + AfterMs) break;
                if (deleter is null && atMs >= BeforeMs)
                {
                    deleter = new Thread(() =>
                    {
                        long t = Stopwatch.GetTimestamp();
                        foreach (string segment in segments)
                        {
                            if (paced) reclaimer.Delete(segment);
                            else File.Delete(segment);
                        }
                        deleteMs = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
                    }) { Name = "bench-delete" };
                    deleter.Start();
                }
                long w = Stopwatch.GetTimestamp();
                RandomAccess.Write(log, data, offset);
                offset += DirectFile.AlignBytes;
                (deleter is null ? before : after).Add(Stopwatch.GetElapsedTime(w).TotalMilliseconds);
                Thread.Sleep(1);
            }
            deleter!.Join();
            before.Sort();
            after.Sort();
            return new Result(deleteMs, before[before.Count / 2], before[^1], after[after.Count / 2], after[(int)(after.Count * 0.99)], after[^1],
                after.Count(ms => ms > 20));
        }
        finally
        {
            NativeMemory.AlignedFree(page);
        }
    }
}
