using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
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
/// Broken framing and content types over raw HTTP/2, many streams at once, a reader that never reads and a
/// writer that stalls mid-frame: the right status for each, and the host stays responsive to everyone else.
/// </summary>
public sealed class WireAbuseTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private RunningSwitch _switch = null!;

    public async Task InitializeAsync()
    {
        _switch = await RunningSwitch.StartAsync();
        await LimitedGateway.WarmUpAsync(_switch);
    }

    public async Task DisposeAsync() => await _switch.DisposeAsync();

    private static byte[] Framed(ReadOnlySpan<byte> message, byte flags = 0, uint? declaredLength = null)
    {
        byte[] frame = new byte[5 + message.Length];
        frame[0] = flags;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), declaredLength ?? (uint)message.Length);
        message.CopyTo(frame.AsSpan(5));
        return frame;
    }

    private static HttpClient RawClient() => new(new SocketsHttpHandler { UseProxy = false })
    {
        DefaultRequestVersion = HttpVersion.Version20,
        DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        Timeout = Bound,
    };

    private HttpRequestMessage Raw(HttpContent content, string contentType = "application/grpc", string method = "AgreementPayment")
    {
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_switch.Host.InstitutionAddress, $"/{InstitutionMethods.Service}/{method}"))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        request.Headers.TryAddWithoutValidation("te", "trailers");
        request.Headers.TryAddWithoutValidation(InstitutionMethods.ApiKeyHeader, AlipayKey);
        return request;
    }

    private static string? GrpcStatusOf(HttpResponseMessage response) =>
        response.TrailingHeaders.TryGetValues("grpc-status", out var t) ? t.Single()
        : response.Headers.TryGetValues("grpc-status", out var h) ? h.Single() : null;

    private async Task<(HttpStatusCode Http, string? Grpc)> SendRawAsync(byte[] body, string contentType = "application/grpc")
    {
        using HttpClient http = RawClient();
        using HttpResponseMessage response = await http.SendAsync(Raw(new ByteArrayContent(body), contentType), HttpCompletionOption.ResponseContentRead).WaitAsync(Bound);
        return (response.StatusCode, GrpcStatusOf(response));
    }

    [Fact]
    public async Task Broken_framing_gets_the_grpc_layers_status_and_changes_nothing()
    {
        byte[] valid = Payment("RAW-1", 100).ToByteArray();
        long transactions = _switch.Host.Engine.Logic.Transactions.LastId;

        // Compressed flag without grpc-encoding: INTERNAL (13), as the gRPC spec asks.
        Assert.Equal((HttpStatusCode.OK, "13"), await SendRawAsync(Framed(valid, flags: 1)));
        // A length prefix of 4 GiB: over the 16 KiB institution limit, RESOURCE_EXHAUSTED (8) before any body is read.
        Assert.Equal((HttpStatusCode.OK, "8"), await SendRawAsync(Framed(valid, declaredLength: uint.MaxValue)));
        // A body shorter than its prefix, then end of stream: INTERNAL (13).
        Assert.Equal((HttpStatusCode.OK, "13"), await SendRawAsync(Framed(valid, declaredLength: (uint)valid.Length + 50)));
        // A half frame header: INTERNAL (13).
        Assert.Equal((HttpStatusCode.OK, "13"), await SendRawAsync([0, 0, 0]));
        // Trailing garbage after a whole unary request, or a second message: INTERNAL (13), not executed.
        Assert.Equal((HttpStatusCode.OK, "13"), await SendRawAsync([.. Framed(valid), 0xDE, 0xAD]));
        Assert.Equal((HttpStatusCode.OK, "13"), await SendRawAsync([.. Framed(valid), .. Framed(valid)]));
        // Wrong content types: HTTP 415, no gRPC status.
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, (await SendRawAsync(Framed(valid), "application/json")).Http);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, (await SendRawAsync(Framed(valid), "text/plain")).Http);

        Assert.Equal(transactions, _switch.Host.Engine.Logic.Transactions.LastId);
        await AssertOrderIsNew("RAW-1");
    }

    [Fact]
    public async Task Many_concurrent_streams_beyond_the_per_connection_limit_all_complete()
    {
        // 300 calls at once on one channel (the server allows 100 streams per connection): every one is answered.
        const int calls = 300;
        long transactions = _switch.Host.Engine.Logic.Transactions.LastId;
        TransferResult[] results = await Task.WhenAll(Enumerable.Range(0, calls)
            .Select(i => _switch.PayAsync(Payment($"MANY-{i}", 100 + i, account: $"M{i}")))).WaitAsync(Bound);
        Assert.All(results, r => Assert.Equal(TransactionStatus.Succeeded, r.Status));
        Assert.Equal(transactions + calls, _switch.Host.Engine.Logic.Transactions.LastId);
    }

    [Fact]
    public async Task A_reader_that_never_reads_outcomes_and_a_writer_stalled_mid_frame_do_not_stall_anyone_else()
    {
        long workingSetBefore = Process.GetCurrentProcess().WorkingSet64;

        // The slow reader: subscribes to its outcomes from the start and never reads.
        using var stuckChannel = GrpcChannel.ForAddress(_switch.Host.InstitutionAddress);
        using ServerStreamingCall<TransferResult> stuck = stuckChannel.ServerStreaming(InstitutionMethods.Outcomes, new OutcomesRequest(),
            As(AlipayKey) with { Timeout = null });

        // The slow writer: a frame header promising 100 bytes, 3 of them, then nothing.
        using HttpClient raw = RawClient();
        var stall = new StalledContent(Framed(new byte[3], declaredLength: 100));
        Task<HttpResponseMessage> stalled = raw.SendAsync(Raw(stall), HttpCompletionOption.ResponseHeadersRead);
        await stall.Sent.WaitAsync(Bound);

        // Meanwhile the same institution makes many outcomes (the stuck feed falls behind), and a Transact stream flows.
        const int count = 3_000;
        using DuplexStreamingCall<TransferRequest, TransferResult> call = _switch.Channel.DuplexStreaming(InstitutionMethods.Transact, As(AlipayKey, 60_000));
        Task<int> reading = Task.Run(async () =>
        {
            int n = 0;
            await foreach (TransferResult r in call.ResponseStream.ReadAllAsync())
            {
                Assert.Equal(TransactionStatus.Succeeded, r.Status);
                n++;
            }
            return n;
        });
        for (int i = 0; i < count; i++)
        {
            TransferRequest r = Payment($"SLOW-{i}", 100 + i, account: $"S{i}");
            r.Kind = RequestKind.AgreementPayment;
            await call.RequestStream.WriteAsync(r);
        }
        await call.RequestStream.CompleteAsync();
        Assert.Equal(count, await reading.WaitAsync(TimeSpan.FromSeconds(60)));

        // Another institution is served promptly throughout.
        TransferResult other = await _switch.PayAsync(Payment("SLOW-T", 100), TenpayKey).WaitAsync(Bound);
        Assert.Equal(TransactionStatus.Succeeded, other.Status);

        long grownBytes = Process.GetCurrentProcess().WorkingSet64 - workingSetBefore;
        output.WriteLine($"working set grew by {grownBytes / 1024} KiB with a stuck reader and a stalled writer");
        Assert.True(grownBytes < 512L * 1024 * 1024, $"working set grew by {grownBytes} bytes");

        // The stalled writer's call is still open: the server waits for its bytes and executes nothing.
        Assert.False(stalled.IsCompleted, "the stalled call ended while its frame was incomplete");
        stall.Release();
        using (HttpResponseMessage ended = await stalled.WaitAsync(Bound))
        {
            await ended.Content.ReadAsByteArrayAsync().WaitAsync(Bound);
            Assert.Equal("13", GrpcStatusOf(ended)); // the body ended inside a frame
        }
        stuck.Dispose();
    }

    private async Task AssertOrderIsNew(string orderNo)
    {
        TransferResult good = await _switch.PayAsync(Payment(orderNo, 100));
        Assert.Equal(TransactionStatus.Succeeded, good.Status);
        Assert.False(good.Duplicate);
    }

    /// <summary>Request content that sends its bytes, then holds the stream open until released.</summary>
    private sealed class StalledContent(byte[] prefix) : HttpContent
    {
        private readonly TaskCompletionSource _sent = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Task Sent => _sent.Task;
        public void Release() => _release.TrySetResult();

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync(prefix);
            await stream.FlushAsync();
            _sent.TrySetResult();
            await _release.Task.WaitAsync(Bound);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
