using System.Diagnostics;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;

// Whole-path figures on loopback: institution → switch → bank → switch → institution.
//   dotnet run -c Release --project perf/Switch.LoadClient -- unary  http://127.0.0.1:7001 demo-alipay-key 20000 64
//   dotnet run -c Release --project perf/Switch.LoadClient -- stream http://127.0.0.1:7001 demo-alipay-key 200000 4
// Closed loop: unary keeps CONCURRENCY calls in flight; stream runs STREAMS Transact streams, each keeping a
// window of requests outstanding. Prints completed transactions per second and latency percentiles.
// Optional WARMUP: that many transactions first, the same way, not measured. On these 2-core machines a fresh
// host and client spend their first several seconds in the tiered JIT; a short run without warm-up measures that.
if (args.Length is not (5 or 6) || args[0] is not ("unary" or "stream"))
{
    Console.Error.WriteLine("usage: Switch.LoadClient unary|stream URL API_KEY COUNT CONCURRENCY [WARMUP]");
    return 2;
}
string mode = args[0];
var target = new Uri(args[1]);
string apiKey = args[2];
int count = int.Parse(args[3]);
int concurrency = int.Parse(args[4]);
int warmup = args.Length == 6 ? int.Parse(args[5]) : 0;
string runId = Guid.NewGuid().ToString("N")[..8];
long failures = 0;
var headers = new Metadata().Add(InstitutionMethods.ApiKeyHeader, apiKey);
using var channel = GrpcChannel.ForAddress(target);

TransferRequest Request(int i) => new()
{
    Kind = RequestKind.AgreementPayment,
    OrderNo = $"L{runId}-{i}",
    AmountFen = 100 + i % 1000,
    Currency = "CNY",
    Bank = (i % 4) switch { 0 => "102", 1 => "103", 2 => "105", _ => "308" },
    // A fresh payer account per request keeps the per-account daily limit out of the figure.
    Account = $"62{runId}{i:D10}",
};

if (warmup > 0)
{
    await RunAsync(1_000_000_000, warmup, new long[warmup]); // Order numbers apart from the measured ones.
    failures = 0;
}
var latenciesUs = new long[count];
TimeSpan cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
var clock = Stopwatch.StartNew();
count = await RunAsync(0, count, latenciesUs);
double seconds = clock.Elapsed.TotalSeconds;
double clientCpuUs = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMicroseconds;
long[] sorted = latenciesUs[..count];
Array.Sort(sorted);
long P(double q) => sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];
Console.WriteLine($"{mode}: {count} transactions in {seconds:F2} s = {count / seconds:F0} per second; " +
    $"p50 {P(0.50) / 1000.0:F2} ms, p99 {P(0.99) / 1000.0:F2} ms, max {sorted[^1] / 1000.0:F2} ms; not succeeded: {failures}; " +
    $"client CPU {clientCpuUs / count:F1} us per transaction" + (warmup > 0 ? $" (after {warmup} warm-up)" : ""));
return failures == 0 ? 0 : 1;

// Runs COUNT transactions numbered from FIRST; returns how many were run (stream mode rounds down per stream).
async Task<int> RunAsync(int numberFrom, int count, long[] latenciesUs)
{
    int next = -1;
    if (mode == "unary")
    {
        var options = new CallOptions { Headers = headers, Timeout = TimeSpan.FromSeconds(30) };
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                long start = Stopwatch.GetTimestamp();
                try
                {
                    TransferResult r = await channel.UnaryAsync(InstitutionMethods.AgreementPayment, Request(numberFrom + i), options);
                    if (r.Status != TransactionStatus.Succeeded) Interlocked.Increment(ref failures);
                }
                catch (RpcException)
                {
                    Interlocked.Increment(ref failures);
                }
                latenciesUs[i] = (long)Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            }
        })));
    }
    else
    {
        int perStream = count / concurrency;
        const int windowPerStream = 4096;
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(s => Task.Run(async () =>
        {
            int first = s * perStream;
            var sentAt = new long[perStream];
            using var window = new SemaphoreSlim(windowPerStream);
            using DuplexStreamingCall<TransferRequest, TransferResult> call = channel.DuplexStreaming(InstitutionMethods.Transact,
                new CallOptions { Headers = headers, Timeout = TimeSpan.FromMinutes(10) });
            Task reader = Task.Run(async () =>
            {
                await foreach (TransferResult r in call.ResponseStream.ReadAllAsync())
                {
                    int i = int.Parse(r.OrderNo.AsSpan(r.OrderNo.IndexOf('-') + 1)) - numberFrom;
                    latenciesUs[i] = (long)Stopwatch.GetElapsedTime(sentAt[i - first]).TotalMicroseconds;
                    if (r.Status != TransactionStatus.Succeeded) Interlocked.Increment(ref failures);
                    window.Release();
                }
            });
            for (int k = 0; k < perStream; k++)
            {
                if (!window.Wait(0))
                {
                    await call.RequestStream.FlushAsync();
                    await window.WaitAsync();
                }
                sentAt[k] = Stopwatch.GetTimestamp();
                await call.RequestStream.WriteAsync(Request(numberFrom + first + k));
            }
            await call.RequestStream.CompleteAsync();
            await reader;
        })));
        count = perStream * concurrency;
    }
    return count;
}
