using System.Collections.Concurrent;
using System.Diagnostics;
using Google.Protobuf;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Tests.EndToEnd;
using Switch.Host.Tests.Limits;
using Xunit.Abstractions;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;

namespace Switch.Host.Tests.Hostile;

/// <summary>
/// Random and mutated protobuf payloads on every institution RPC of a real host: each call ends with a gRPC
/// status within its bound (never a transport error, never a hang), the host keeps serving, memory stays bounded.
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output)
{
    private const int UnaryCallsPerMethod = 250;
    private const int TransactStreams = 40;
    private const int MessagesPerStream = 8;
    private const int OutcomesCalls = 40;
    private static readonly TimeSpan CallBound = TimeSpan.FromSeconds(20);

    private static readonly string[] UnaryMethods = ["AgreementPayment", "Payout", "Refund", "Query"];

    [Fact]
    public async Task Every_rpc_answers_random_and_mutated_payloads_with_a_status_and_the_host_keeps_serving()
    {
        int seed = Environment.GetEnvironmentVariable("SWITCH_FUZZ_SEED") is { } s ? int.Parse(s) : Random.Shared.Next();
        output.WriteLine($"fuzz seed {seed} (set SWITCH_FUZZ_SEED to replay)");
        await using RunningSwitch running = await RunningSwitch.StartAsync();
        await LimitedGateway.WarmUpAsync(running);
        long workingSetBefore = Process.GetCurrentProcess().WorkingSet64;

        var statuses = new ConcurrentDictionary<string, int>();
        void Count(string rpc, StatusCode code) => statuses.AddOrUpdate($"{rpc} {code}", 1, (_, n) => n + 1);

        // Plans are drawn from one seeded generator up front, so a seed replays the same payloads.
        var random = new Random(seed);
        var plans = new List<(string Rpc, byte[][] Payloads)>();
        foreach (string method in UnaryMethods)
        {
            for (int i = 0; i < UnaryCallsPerMethod; i++) plans.Add((method, [Payload(random, $"FZ-{method[0]}{i}")]));
        }
        for (int i = 0; i < TransactStreams; i++)
        {
            plans.Add(("Transact", Enumerable.Range(0, MessagesPerStream).Select(m => Payload(random, $"FZ-T{i}-{m}")).ToArray()));
        }
        for (int i = 0; i < OutcomesCalls; i++) plans.Add(("Outcomes", [Mutate(random, new OutcomesRequest { AfterFeedNo = random.Next(0, 3) }.ToByteArray())]));

        try
        {
            await Parallel.ForEachAsync(plans, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (plan, _) =>
            {
                StatusCode code = await CallAsync(running.Channel, plan.Rpc, plan.Payloads).WaitAsync(CallBound);
                Count(plan.Rpc, code);
            });
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            Assert.Fail($"fuzz seed {seed}: {e}");
        }

        foreach ((string key, int n) in statuses.OrderBy(p => p.Key)) output.WriteLine($"{key}: {n}");
        Assert.Equal(plans.Count, statuses.Values.Sum());
        Assert.DoesNotContain(statuses.Keys, k => k.EndsWith(" Unknown", StringComparison.Ordinal));

        // The host still serves, and books balance.
        TransferResult after = await running.PayAsync(Payment("FZ-AFTER", 4_321));
        Assert.Equal(TransactionStatus.Succeeded, after.Status);
        Assert.Equal(0, running.Host.Engine.Logic.PositionSumFen());
        long grownBytes = Process.GetCurrentProcess().WorkingSet64 - workingSetBefore;
        output.WriteLine($"working set grew by {grownBytes / 1024} KiB");
        Assert.True(grownBytes < 512L * 1024 * 1024, $"fuzz seed {seed}: working set grew by {grownBytes} bytes");
        string byStatus = string.Join(", ", statuses.GroupBy(p => p.Key[(p.Key.IndexOf(' ') + 1)..])
            .OrderBy(g => g.Key).Select(g => $"{g.Key} {g.Sum(p => p.Value):N0}"));
        Reliability.ReliabilityReport.Record("hostile input", "protobuf fuzz, every institution RPC",
            $"{plans.Count:N0} calls ({UnaryCallsPerMethod * UnaryMethods.Length:N0} unary, {TransactStreams} Transact streams of {MessagesPerStream}, " +
            $"{OutcomesCalls} Outcomes): random bytes, flipped, inserted, deleted, truncated, wrong wire types, 11-byte varints, 4 GiB lengths",
            $"each call ended with a gRPC status ({byStatus}); no crash; host served after; positions sum to 0; working set +{grownBytes / (1024 * 1024)} MiB");
    }

    /// <summary>One call with raw payloads; returns its status (OK when it completed).</summary>
    private static async Task<StatusCode> CallAsync(GrpcChannel channel, string rpc, byte[][] payloads)
    {
        try
        {
            switch (rpc)
            {
                case "Transact":
                {
                    var method = new GrpcMethod<RawBytes, TransferResult>(MethodType.DuplexStreaming, InstitutionMethods.Service, rpc, RawBytes.Parser, TransferResult.Parser);
                    using DuplexStreamingCall<RawBytes, TransferResult> call = channel.DuplexStreaming(method, As(AlipayKey, 15_000));
                    Task<int> reading = Task.Run(async () =>
                    {
                        int n = 0;
                        await foreach (TransferResult _ in call.ResponseStream.ReadAllAsync()) n++;
                        return n;
                    });
                    try
                    {
                        foreach (byte[] p in payloads) await call.RequestStream.WriteAsync(new RawBytes(p));
                        await call.RequestStream.CompleteAsync();
                    }
                    catch (RpcException)
                    {
                        // The server ended the call mid-write (a payload it could not parse): its status is on the read side.
                    }
                    await reading;
                    return StatusCode.OK;
                }
                case "Outcomes":
                {
                    var method = new GrpcMethod<RawBytes, TransferResult>(MethodType.ServerStreaming, InstitutionMethods.Service, rpc, RawBytes.Parser, TransferResult.Parser);
                    // A parseable subscription waits for outcomes forever: its deadline ends it.
                    using ServerStreamingCall<TransferResult> call = channel.ServerStreaming(method, new RawBytes(payloads[0]), As(AlipayKey, 300));
                    await foreach (TransferResult _ in call.ResponseStream.ReadAllAsync()) { }
                    return StatusCode.OK;
                }
                default:
                {
                    var method = new GrpcMethod<RawBytes, TransferResult>(MethodType.Unary, InstitutionMethods.Service, rpc, RawBytes.Parser, TransferResult.Parser);
                    await channel.UnaryAsync(method, new RawBytes(payloads[0]), As(AlipayKey, 10_000));
                    return StatusCode.OK;
                }
            }
        }
        catch (RpcException e)
        {
            return e.StatusCode;
        }
    }

    /// <summary>A valid request, then usually mutated; sometimes just random bytes.</summary>
    private static byte[] Payload(Random random, string orderNo)
    {
        if (random.Next(8) == 0)
        {
            byte[] noise = new byte[random.Next(0, 96)];
            random.NextBytes(noise);
            return noise;
        }
        var request = new TransferRequest
        {
            Kind = (RequestKind)random.Next(0, 6),
            OrderNo = orderNo,
            AmountFen = random.Next(4) == 0 ? random.NextInt64(long.MinValue, long.MaxValue) : random.Next(1, 100_000),
            Currency = "CNY",
            Bank = random.Next(2) == 0 ? "102" : "105100000017",
            Account = $"6222{random.Next(0, 1_000_000):D8}",
            OriginalOrderNo = random.Next(4) == 0 ? "FZ-A0" : "",
            Echo = random.Next(2) == 0 ? "fuzz" : "",
        };
        return random.Next(6) == 0 ? request.ToByteArray() : Mutate(random, request.ToByteArray());
    }

    /// <summary>One of: flip, insert, delete, truncate, wrong wire type, huge varint, huge length prefix.</summary>
    private static byte[] Mutate(Random random, byte[] valid)
    {
        var bytes = new List<byte>(valid);
        int at = bytes.Count == 0 ? 0 : random.Next(bytes.Count);
        switch (random.Next(7))
        {
            case 0 when bytes.Count > 0: bytes[at] ^= (byte)(1 << random.Next(8)); break;
            case 1: bytes.Insert(at, (byte)random.Next(256)); break;
            case 2 when bytes.Count > 0: bytes.RemoveAt(at); break;
            case 3: bytes.RemoveRange(at, bytes.Count - at); break;
            case 4 when bytes.Count > 0: bytes[0] = (byte)((bytes[0] & ~7) | random.Next(3, 8)); break; // wire types 3..7
            case 5: bytes.InsertRange(at, [0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]); break; // an 11-byte varint
            default: bytes.InsertRange(at, [0x12, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]); break; // order_no claims 4 GiB
        }
        return bytes.ToArray();
    }
}
