using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Configuration;
using Switch.Host.Gateway;
using Switch.Host.Tests.EndToEnd;
using Xunit.Abstractions;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;

namespace Switch.Host.Tests.Limits;

/// <summary>
/// An institution that opens connections and streams and never reads its answers: its streams and connections are
/// capped (the caps named in the refusal), the switch's memory stays within what the caps allow, another institution
/// is served meanwhile, and the memory is given back once the connections close. The real host, its limits from the
/// configuration, real sockets.
/// </summary>
[Collection(MeasuresProcessMemory.Name)]
public sealed class UnreadAnswersTests(ITestOutputHelper output)
{
    private const int Streams = 8;
    private const int Connections = 4; // the warm-up's (the test's own channel), two flooding, one more
    private const int PerStream = 8_192; // the host's maxInFlightPerStream
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(180);

    private static GrpcChannel OneConnection(RunningSwitch running) => GrpcChannel.ForAddress(running.Host.InstitutionAddress,
        new GrpcChannelOptions { EnableMultipleHttp2Connections = false, InitialStreamWindowBytes = 65_535 });

    internal static CallOptions Alipay(CancellationToken cancel) => new()
    {
        Headers = new Metadata().Add(InstitutionMethods.ApiKeyHeader, AlipayKey),
        CancellationToken = cancel,
    };

    [Fact]
    public async Task An_institution_that_never_reads_is_capped_named_the_others_are_served_and_memory_is_given_back()
    {
        string data = Path.Combine(Path.GetTempPath(), "switch-unread-" + Guid.NewGuid().ToString("N"));
        HostConfig config = TestConfig(data, rules: r => r with { TransactionCapacity = 1 << 18 }) with
        {
            MaxInFlightPerStream = PerStream,
            Limits = GatewayLimits.Default with { MaxStreamsPerInstitution = Streams, MaxConnectionsPerInstitution = Connections },
        };
        await using RunningSwitch running = await RunningSwitch.StartAsync(config, data);
        long warm = await LimitedGateway.WarmUpAsync(running);
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        long baselineHeap = GC.GetGCMemoryInfo().HeapSizeBytes;

        using var flood = new CancellationTokenSource();
        var channels = new[] { OneConnection(running), OneConnection(running) };
        var calls = new List<DuplexStreamingCall<TransferRequest, TransferResult>>();
        var writers = new List<Task>();
        for (int s = 0; s < Streams; s++)
        {
            DuplexStreamingCall<TransferRequest, TransferResult> call = channels[s % 2].DuplexStreaming(InstitutionMethods.Transact, Alipay(flood.Token));
            calls.Add(call);
            int stream = s;
            // More than the stream holds: the writes past it wait on flow control, as a client that never reads would.
            writers.Add(Task.Run(async () =>
            {
                for (int i = 0; i < PerStream + 1_000; i++)
                {
                    var r = Payment($"U{stream}-{i}", 1, account: $"U{stream}");
                    r.Kind = RequestKind.AgreementPayment;
                    await call.RequestStream.WriteAsync(r);
                }
            }));
        }
        // Every stream takes its whole share: the engine answers it all, and none of the answers is read. The
        // transport holds what the client's window and Kestrel's buffer take; the rest waits in the streams' queues.
        InstitutionLimiter limiter = running.Host.Gateway.Limiter;
        DateTime deadline = DateTime.UtcNow + Bound;
        int queued = -1;
        while (true)
        {
            await Task.Delay(1_000);
            int now = limiter.QueuedAnswers(0);
            // Stalled, and full, with every stream open (on a loaded machine a stream may open after the others filled).
            if (now == queued && now >= Streams * PerStream / 2 && limiter.OpenStreams(0) == Streams) break;
            Assert.True(DateTime.UtcNow < deadline, $"{now} answers queued, {limiter.OpenStreams(0)} streams open");
            queued = now;
        }
        Assert.Equal(Streams, limiter.OpenStreams(0));
        Assert.Equal(Connections - 1, limiter.OpenConnections(0));
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        long floodHeap = GC.GetGCMemoryInfo().HeapSizeBytes;

        // One stream more, on a connection of its own (the institution's last): refused, naming the limit. One
        // connection more: refused, naming the limit. (The flooding connections are left alone: their client has
        // stopped reading them.)
        GrpcChannel last = OneConnection(running);
        using (DuplexStreamingCall<TransferRequest, TransferResult> extra = last.DuplexStreaming(InstitutionMethods.Transact, Alipay(flood.Token)))
        {
            RpcException e = await Assert.ThrowsAsync<RpcException>(async () => await extra.ResponseStream.ReadAsync().AsTask().WaitAsync(Bound));
            Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
            Assert.StartsWith($"STREAM_LIMIT: institution ALIPAY has {Streams} streams open (limits.maxStreamsPerInstitution", e.Status.Detail);
        }
        using (GrpcChannel oneTooMany = OneConnection(running))
        {
            RpcException e = await Assert.ThrowsAsync<RpcException>(() =>
                oneTooMany.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = "U0-0" }, Alipay(flood.Token)));
            Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
            Assert.StartsWith($"CONNECTION_LIMIT: institution ALIPAY has {Connections} connections open (limits.maxConnectionsPerInstitution)", e.Status.Detail);
        }
        // Another institution is served meanwhile, on a connection of its own.
        using (GrpcChannel tenpay = OneConnection(running))
        {
            TransferResult paid = await tenpay.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("T-DURING", 100), As(TenpayKey));
            Assert.Equal(TransactionStatus.Succeeded, paid.Status);
        }

        // The flooding connections close: their streams end, their unread answers are dropped, the memory comes back.
        flood.Cancel();
        foreach (var call in calls) call.Dispose();
        foreach (GrpcChannel channel in channels) channel.Dispose();
        last.Dispose();
        await Task.WhenAll(writers.Select(w => w.ContinueWith(_ => { })));
        long afterHeap = long.MaxValue;
        const long mib = 1 << 20;
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            // The places are given back: a new connection and stream of the institution are admitted again.
            using GrpcChannel again = OneConnection(running);
            using var probe = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                using DuplexStreamingCall<TransferRequest, TransferResult> call = again.DuplexStreaming(InstitutionMethods.Transact, Alipay(probe.Token));
                var r = Payment("U-AFTER", 1);
                r.Kind = RequestKind.AgreementPayment;
                await call.RequestStream.WriteAsync(r);
                await call.RequestStream.CompleteAsync();
                TransferResult? result = await call.ResponseStream.ReadAsync();
                Assert.Equal(TransactionStatus.Succeeded, result!.Status);
                break;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.ResourceExhausted && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100); // the server has not seen the flooding connections close yet
            }
        }
        // Every flooding stream ends and drops what it still queued.
        while (limiter.QueuedAnswers(0) != 0 || limiter.OpenStreams(0) != 0 || limiter.OpenConnections(0) > 2) // the test's own and the probe's
        {
            Assert.True(DateTime.UtcNow < deadline,
                $"{limiter.QueuedAnswers(0)} answers queued, {limiter.OpenStreams(0)} streams and {limiter.OpenConnections(0)} connections open");
            await Task.Delay(100);
        }
        // Given back by the switch itself, once the burst of closes is over: nothing here forces a collection. The
        // heap after the last collection (whatever ran it) sheds the dropped answers, which were alive at floodHeap;
        // the executed transactions stay (kept by design). Generous: 64 bytes of each queued answer (about 200 are).
        long mustShed = queued * 64L;
        DateTime givenBack = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while ((afterHeap = GC.GetGCMemoryInfo().HeapSizeBytes) > floodHeap - mustShed && DateTime.UtcNow < givenBack)
        {
            await Task.Delay(500);
        }

        output.WriteLine($"GC heap: baseline {baselineHeap / mib} MiB, {Streams} streams x {PerStream} unread ({queued} queued) {floodHeap / mib} MiB, after close {afterHeap / mib} MiB; " +
            $"working set {Environment.WorkingSet / mib} MiB");
        // Generous: a kilobyte per unread answer the caps allow (about 300 bytes are measured), plus 64 MiB.
        long allowed = (long)Streams * PerStream * 1_024 + 64 * mib;
        Assert.True(floodHeap - baselineHeap < allowed, $"flood took {(floodHeap - baselineHeap) / mib} MiB, allowed {allowed / mib} MiB");
        Assert.True(afterHeap <= floodHeap - mustShed,
            $"60 s after the connections closed the heap is {afterHeap / mib} MiB, with the {queued} answers queued {floodHeap / mib} MiB: " +
            $"{(floodHeap - afterHeap) / mib} MiB given back, {mustShed / mib} MiB wanted");
    }
}

/// <summary>Tests that measure the process's GC heap run alone: other tests' switches would be in the figure.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MeasuresProcessMemory
{
    public const string Name = "measures process memory";
}
