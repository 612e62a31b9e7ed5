using System.Diagnostics;
using System.Globalization;
using Switch.Contracts.V1;
using Switch.Engine.Events;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host;
using Switch.Host.Configuration;
using Switch.Host.Gateway;

// The outcome feed's read benchmark.
//   Switch.FeedBench [--records N] [--streams 1..3] [--live-rate R] [--keep-data]
// starts a child process running the real switch host on a fresh data directory, whose three institutions' feeds
// this tool fills with N synthetic outcomes each (written as the output thread writes them); then opens one Outcomes
// stream per institution from feed number 0 over loopback and reads until each has N, while the child keeps
// appending R outcomes a second to each feed (the load). Prints the read rate and the child's memory.
return await FeedBench.RunAsync(args);

internal static class FeedBench
{
    private static readonly string[] Keys = ["demo-alipay-key", "demo-tenpay-key", "demo-yeepay-key"];

    public static async Task<int> RunAsync(string[] args)
    {
        try
        {
            if (args.Length > 0 && args[0] == "serve") return await ServeAsync(args[1..]);
            return await ReadAsync(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"feedbench: {e.Message}");
            return 2;
        }
    }

    private static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        if (i < 0) return null;
        if (i + 1 >= args.Length) throw new ArgumentException($"{name}: a value is required");
        return args[i + 1];
    }

    private static long LongOption(string[] args, string name, long fallback, long min, long max)
    {
        string? text = Option(args, name);
        if (text is null) return fallback;
        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long value) || value < min || value > max)
        {
            throw new ArgumentException($"{name}: {min} to {max}, got '{text}'");
        }
        return value;
    }

    /// <summary>The parent: starts the child, reads the three feeds over the wire, reports.</summary>
    private static async Task<int> ReadAsync(string[] args)
    {
        long records = LongOption(args, "--records", 10_000_000, 1, 1_000_000_000);
        long liveRate = LongOption(args, "--live-rate", 10_000, 0, 1_000_000);
        bool keep = args.Contains("--keep-data");
        int streams = (int)LongOption(args, "--streams", Keys.Length, 1, Keys.Length);
        string data = Path.Combine(Path.GetTempPath(), "switch-feedbench-" + Guid.NewGuid().ToString("N"));
        var start = new ProcessStartInfo("dotnet", [typeof(FeedBench).Assembly.Location, "serve", "--data", data, "--records", records.ToString(CultureInfo.InvariantCulture),
            "--live-rate", liveRate.ToString(CultureInfo.InvariantCulture)])
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false,
        };
        using Process child = Process.Start(start) ?? throw new InvalidOperationException("cannot start the serving child");
        try
        {
            Uri? address = null;
            while (await child.StandardOutput.ReadLineAsync() is { } line)
            {
                Console.WriteLine($"  switch: {line}");
                if (line.StartsWith("ready ", StringComparison.Ordinal))
                {
                    address = new Uri(line["ready ".Length..]);
                    break;
                }
            }
            if (address is null) throw new InvalidOperationException("the serving child ended before it was ready");
            long peakWorkingSetMiB = 0, peakHeapMiB = 0, childCpuMs = 0, childCpuAtStartMs = -1;
            Task watching = Task.Run(async () =>
            {
                while (await child.StandardOutput.ReadLineAsync() is { } line)
                {
                    string[] f = line.Split(' ');
                    if (f[0] != "memory") continue;
                    peakWorkingSetMiB = Math.Max(peakWorkingSetMiB, long.Parse(f[1], CultureInfo.InvariantCulture));
                    peakHeapMiB = Math.Max(peakHeapMiB, long.Parse(f[2], CultureInfo.InvariantCulture));
                    childCpuMs = long.Parse(f[3], CultureInfo.InvariantCulture);
                    if (childCpuAtStartMs < 0) childCpuAtStartMs = childCpuMs;
                }
            });

            using var channel = GrpcChannel.ForAddress(address);
            var clock = Stopwatch.StartNew();
            TimeSpan readerCpuAtStart = Process.GetCurrentProcess().TotalProcessorTime;
            double[] seconds = await Task.WhenAll(Keys.Take(streams).Select(key => Task.Run(async () =>
            {
                var options = new CallOptions { Headers = new Metadata().Add(InstitutionMethods.ApiKeyHeader, key) };
                using ServerStreamingCall<TransferResult> call = channel.ServerStreaming(InstitutionMethods.Outcomes, new OutcomesRequest { AfterFeedNo = 0 }, options);
                long expected = 1;
                while (expected <= records && await call.ResponseStream.ReadAsync() is { } o)
                {
                    if (o.FeedNo != expected) throw new InvalidOperationException($"{key}: feed number {o.FeedNo}, expected {expected}");
                    expected++;
                }
                if (expected <= records) throw new InvalidOperationException($"{key}: the stream ended at {expected - 1}");
                return clock.Elapsed.TotalSeconds;
            })));
            double all = seconds.Max();
            double readerCpuMs = (Process.GetCurrentProcess().TotalProcessorTime - readerCpuAtStart).TotalMilliseconds;
            long servingCpuMs = childCpuMs - childCpuAtStartMs;
            Console.WriteLine($"read {records:N0} outcomes from feed number 0 on each of {streams} streams (one per institution), {liveRate:N0}/s appended live to each feed meanwhile");
            for (int i = 0; i < streams; i++) Console.WriteLine($"  stream {i + 1}: {seconds[i]:0.0} s, {records / seconds[i]:N0} outcomes/s");
            Console.WriteLine($"  all: {all:0.0} s, {streams * records / all:N0} outcomes/s together; CPU per outcome read: reader {readerCpuMs * 1000 / (streams * records):0.00} us");
            child.StandardInput.Close(); // the child stops and exits
            await watching;
            Console.WriteLine($"  switch process while serving: {servingCpuMs * 1000.0 / (streams * records):0.00} us CPU per outcome (live appends included, sampled every 250 ms), " +
                $"peak working set {peakWorkingSetMiB} MiB, peak GC heap {peakHeapMiB} MiB " +
                $"(feeds on disk {Keys.Length * records * FeedRecord.Bytes >> 20} MiB)");
            await child.WaitForExitAsync();
            return 0;
        }
        finally
        {
            if (!child.HasExited) child.Kill();
            if (!keep) try { Directory.Delete(data, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>The child: the real switch host, its feeds filled by this tool; appends live and reports memory until stdin closes.</summary>
    private static async Task<int> ServeAsync(string[] args)
    {
        string data = Option(args, "--data") ?? throw new ArgumentException("--data: required");
        long records = LongOption(args, "--records", 10_000_000, 1, 1_000_000_000);
        long liveRate = LongOption(args, "--live-rate", 10_000, 0, 1_000_000);
        HostConfig config = HostConfig.EmbeddedDefault() with { DataDirectory = data, InstitutionPort = 0, AdminPort = 0, AdminGrpcPort = 0 };
        await using SwitchHost host = await SwitchHost.StartAsync(config, new Log(TextWriter.Null, TextWriter.Null));
        // No payments reach this switch: this tool is the feeds' only writer.
        OutcomeFeed[] feeds = Enumerable.Range(0, Keys.Length).Select(host.Feeds.For).ToArray();
        var fill = Stopwatch.StartNew();
        long baseUs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;
        foreach (OutcomeFeed feed in feeds)
        {
            for (long n = 1; n <= records; n++)
            {
                feed.Append(Outcome(n, baseUs));
                if ((n & 4095) == 0) feed.Flush();
            }
            feed.Flush();
        }
        Console.WriteLine($"filled {Keys.Length} feeds with {records:N0} outcomes each in {fill.Elapsed.TotalSeconds:0.0} s");
        Console.WriteLine($"ready {host.InstitutionAddress}");

        using var stop = new CancellationTokenSource();
        Task stdinClosed = Task.Run(async () =>
        {
            while (await Console.In.ReadLineAsync() is not null) { }
            stop.Cancel();
        });
        // The load: every 10 ms, a tenth of a hundredth of the rate appended to each feed; and the process's memory.
        long next = records + 1;
        var tick = Stopwatch.StartNew();
        long appended = 0;
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
        long lastReportMs = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(stop.Token))
            {
                long due = (long)(tick.Elapsed.TotalSeconds * liveRate);
                for (; appended < due; appended++, next++)
                {
                    foreach (OutcomeFeed feed in feeds) feed.Append(Outcome(next, baseUs));
                }
                foreach (OutcomeFeed feed in feeds) feed.Flush();
                if (tick.ElapsedMilliseconds - lastReportMs >= 250)
                {
                    lastReportMs = tick.ElapsedMilliseconds;
                    using Process self = Process.GetCurrentProcess();
                    GCMemoryInfo gc = GC.GetGCMemoryInfo();
                    Console.WriteLine($"memory {self.WorkingSet64 >> 20} {gc.HeapSizeBytes >> 20} {(long)self.TotalProcessorTime.TotalMilliseconds}");
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        await stdinClosed;
        return 0;
    }

    private static ResultFields Outcome(long feedNo, long baseUs)
    {
        var o = new ResultFields
        {
            FeedNo = feedNo,
            TransactionId = feedNo,
            AmountFen = 100 + feedNo % 50_000,
            FeeFen = feedNo % 30,
            ReceivedUs = baseUs + feedNo,
            FinalUs = baseUs + feedNo + 2_000,
            RequestType = RequestType.AgreementPayment,
            Status = Switch.Engine.Events.TransactionStatus.Succeeded,
        };
        Span<byte> order = stackalloc byte[24];
        "ORD-"u8.CopyTo(order);
        feedNo.TryFormat(order[4..], out int digits, "D16", CultureInfo.InvariantCulture);
        o.OrderNo.Set(order[..(4 + digits)]);
        o.Echo.Set("bench"u8);
        return o;
    }
}
