using System.Diagnostics;
using System.Net;
using Switch.Grpc.Client;
using Switch.Grpc.Server;
using Switch.Grpc.Tests.Interop;
using Xunit.Abstractions;

namespace Switch.Grpc.Tests;

/// <summary>
/// Throughput harness, not a test: does nothing unless SWITCH_GRPC_LOAD=1. Asserts only correctness, never time.
/// SWITCH_GRPC_LOAD=1 dotnet test -c Release tests/Switch.Grpc.Tests --filter LoadHarness --logger "console;verbosity=detailed"
/// </summary>
public sealed class LoadHarness(ITestOutputHelper output)
{
    private static bool Enabled => Environment.GetEnvironmentVariable("SWITCH_GRPC_LOAD") == "1";

    /// <summary>Measured window; SWITCH_GRPC_LOAD_SECONDS overrides (longer runs for profiling).</summary>
    private static readonly TimeSpan Duration = TimeSpan.FromSeconds(
        int.TryParse(Environment.GetEnvironmentVariable("SWITCH_GRPC_LOAD_SECONDS"), out int s) && s > 0 ? s : 5);

    /// <summary>Unmeasured run before the window: tiered JIT and PGO settle, so the figure is steady state, not start-up.</summary>
    private static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(2);

    [Fact]
    public async Task Unary_calls_per_second_with_64_callers()
    {
        if (!Enabled) return;
        await using var server = await GrpcServer.StartAsync(new InteropService().Map(new GrpcRouter()), new GrpcEndpointOptions { Address = IPAddress.Loopback });
        using var channel = GrpcChannel.ForAddress(server.Address);
        var request = new EchoRequest { Text = "payment-0001", Payload = Google.Protobuf.ByteString.CopyFrom(new byte[64]) };
        await channel.UnaryAsync(InteropMethods.Unary, request); // Connect outside the window.

        long calls = 0;
        var stopwatch = Stopwatch.StartNew();
        long measuredFrom = 0;
        TimeSpan end = WarmUp + Duration;
        var callers = Enumerable.Range(0, 64).Select(async _ =>
        {
            while (stopwatch.Elapsed < end)
            {
                var reply = await channel.UnaryAsync(InteropMethods.Unary, request);
                Assert.Equal(request.Text, reply.Text);
                Interlocked.Increment(ref calls);
            }
        });
        await Task.Delay(WarmUp);
        measuredFrom = Interlocked.Read(ref calls);
        var window = Stopwatch.StartNew();
        await Task.WhenAll(callers);
        double seconds = window.Elapsed.TotalSeconds;
        calls -= measuredFrom;
        Report($"unary: {calls} calls in {seconds:F2} s = {calls / seconds:F0} calls/s (64 concurrent callers, {request.CalculateSize()}-byte request)");
    }

    [Fact]
    public async Task Bidi_messages_per_second_with_batched_writes()
    {
        if (!Enabled) return;
        await using var server = await GrpcServer.StartAsync(new InteropService().Map(new GrpcRouter()), new GrpcEndpointOptions { Address = IPAddress.Loopback });
        using var channel = GrpcChannel.ForAddress(server.Address);
        var request = new EchoRequest { Text = "payment-0001", Payload = Google.Protobuf.ByteString.CopyFrom(new byte[64]) };

        using var call = channel.DuplexStreaming(InteropMethods.Bidi);
        long sent = 0;
        var stopwatch = Stopwatch.StartNew(); // No warm-up window: a stream is a steady loop after its first batches.
        var writer = Task.Run(async () =>
        {
            while (stopwatch.Elapsed < Duration)
            {
                for (int i = 0; i < 1024; i++) await call.RequestStream.WriteAsync(request); // Buffered; auto-flush at 64 KiB.
                sent += 1024;
            }
            await call.RequestStream.CompleteAsync();
        });
        long received = 0;
        while (await call.ResponseStream.ReadAsync() is not null) received++;
        await writer;
        double seconds = stopwatch.Elapsed.TotalSeconds;
        Assert.Equal(sent, received);
        Report($"bidi: {received} echoed messages in {seconds:F2} s = {received / seconds:F0} msg/s each way (one stream, {request.CalculateSize()}-byte messages)");
    }

    private void Report(string line)
    {
        output.WriteLine(line);
        Console.WriteLine(line);
    }
}
