using System.Diagnostics;
using Switch.Contracts.V1;
using Switch.Grpc.Client;
using Switch.Grpc;
using Switch.Telemetry;

namespace Switch.LoadGen;

public enum Transport { Stream, Unary }

/// <summary>How a run is driven. Open loop: a rate profile, each request sent at (and timed from) its intended
/// time. Closed loop: a fixed number of requests in flight for a duration.</summary>
public sealed record RunOptions
{
    public const int MaxLanes = 1024;
    public const int MaxWindow = 1 << 16;
    public const int MaxInFlight = 1 << 20;

    public required Uri Target { get; init; }
    public Transport Transport { get; init; } = Transport.Stream;
    /// <summary>Open loop when set; else closed loop for ClosedSeconds.</summary>
    public RateProfile? Profile { get; init; }
    public double ClosedSeconds { get; init; } = 10;
    /// <summary>Streams (stream transport) or sending lanes (unary open loop) or callers (unary closed loop).</summary>
    public int Lanes { get; init; } = 4;
    /// <summary>Requests outstanding per stream at most (the switch refuses more than its per-stream cap).</summary>
    public int Window { get; init; } = 4096;
    /// <summary>Stream: requests per Transact message at most (the batch form; 1 sends single messages). What is due goes
    /// at once: a message is never held back to fill it. Above 1 the stream also reads results in batches of as many.</summary>
    public int Batch { get; init; } = 1;
    /// <summary>Unary open loop: calls in flight at most, over all lanes (a request due beyond it waits, and its wait counts).</summary>
    public int MaxUnaryInFlight { get; init; } = 4096;
    /// <summary>How long after the last send answers may still come before the rest count as lost.</summary>
    public double GraceSeconds { get; init; } = 15;
    public int CallTimeoutMs { get; init; } = 30_000;
    /// <summary>Open-loop capacity bound on the order book; the schedule must fit in it.</summary>
    public long MaxRequests { get; init; } = 100_000_000;
    public WorkloadOptions Workload { get; init; } = new();

    public bool OpenLoop => Profile is not null;

    public void Validate()
    {
        Workload.Validate();
        if (Lanes is < 1 or > MaxLanes) throw new ArgumentException($"lanes: 1 to {MaxLanes}, got {Lanes}");
        if (Window is < 1 or > MaxWindow) throw new ArgumentException($"window: 1 to {MaxWindow}, got {Window}");
        if (Batch is < 1 or > TransactBatch.MaxElements) throw new ArgumentException($"batch: 1 to {TransactBatch.MaxElements}, got {Batch}");
        if (MaxUnaryInFlight is < 1 or > MaxInFlight) throw new ArgumentException($"max-in-flight: 1 to {MaxInFlight}, got {MaxUnaryInFlight}");
        if (!(GraceSeconds is >= 0 and <= 600)) throw new ArgumentException($"grace: 0 to 600 s, got {GraceSeconds}");
        if (CallTimeoutMs is < 1 or > 600_000) throw new ArgumentException($"call timeout: 1 to 600000 ms, got {CallTimeoutMs}");
        if (MaxRequests is < 1 or > OrderBook.MaxCapacity) throw new ArgumentException($"max requests: 1 to {OrderBook.MaxCapacity}, got {MaxRequests}");
        if (!OpenLoop && !(ClosedSeconds is > 0 and <= RateProfile.MaxDurationSeconds)) throw new ArgumentException($"duration: over 0 up to {RateProfile.MaxDurationSeconds} s, got {ClosedSeconds}");
    }
}

/// <summary>One second of the run as the progress line showed it.</summary>
public sealed record SecondPoint(int Second, long Sent, long Completed, long P50Us, long P99Us, long MaxUs);

/// <summary>Runs the load and collects everything the report needs.</summary>
public sealed class LoadRunner
{
    private readonly RunOptions _options;
    private readonly TextWriter? _progress;
    private readonly OrderBook _book;
    private readonly ResultRecorder _recorder;
    private readonly List<SecondPoint> _series = new();
    private long _sent;
    private long _maxSendLagTicks;
    private long _startTicks;

    public LoadRunner(RunOptions options, TextWriter? progress)
    {
        options.Validate();
        _options = options;
        _progress = progress;
        long capacity = options.MaxRequests;
        if (options.Profile is { } profile)
        {
            long planned = profile.CountRequests();
            if (planned > options.MaxRequests) throw new ArgumentException($"the profile holds {planned} requests, over the bound of {options.MaxRequests}");
            capacity = Math.Max(1, planned);
        }
        _book = new OrderBook(capacity);
        _recorder = new ResultRecorder(_book, options.Workload.Institutions.Count, options.Workload.Banks.Count);
    }

    public ResultRecorder Recorder => _recorder;

    public async Task<RunOutcome> RunAsync(CancellationToken cancel = default)
    {
        using var abort = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        int channelCount = Math.Min(_options.Lanes, 8);
        var channels = Enumerable.Range(0, channelCount).Select(_ => GrpcChannel.ForAddress(_options.Target)).ToArray();
        DateTime startedUtc = DateTime.UtcNow;
        TimeSpan cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        _startTicks = Stopwatch.GetTimestamp();
        long endTicks = _startTicks + (long)((_options.Profile?.DurationSeconds ?? _options.ClosedSeconds) * Stopwatch.Frequency);
        long graceTicks = (long)(_options.GraceSeconds * Stopwatch.Frequency);
        // Not disposed: a call given up on past the grace may still release it.
        var unaryInFlight = new SemaphoreSlim(_options.MaxUnaryInFlight);
        var pendingUnary = new CountdownEvent(1); // The run's own count, taken down once every lane is done.
        Task[] lanes = Enumerable.Range(0, _options.Lanes).Select(lane => Task.Run(() =>
        {
            GrpcChannel channel = channels[lane % channelCount];
            return _options.Transport == Transport.Stream
                ? StreamLaneAsync(lane, channel, endTicks, graceTicks, abort)
                : UnaryLaneAsync(lane, channel, endTicks, unaryInFlight, pendingUnary, abort.Token);
        })).ToArray();
        var finished = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task ticker = TickAsync(finished.Task);
        try
        {
            await Task.WhenAll(lanes);
            if (_options.Transport == Transport.Unary)
            {
                pendingUnary.Signal();
                // Every call either answers or times out by its deadline; past the grace the rest are lost.
                bool drained = await Task.Run(() => pendingUnary.Wait(TimeSpan.FromSeconds(_options.GraceSeconds)));
                if (!drained)
                {
                    await abort.CancelAsync();
                    await Task.Run(() => pendingUnary.Wait(TimeSpan.FromSeconds(10)));
                }
            }
        }
        finally
        {
            finished.TrySetResult();
            await ticker;
            foreach (GrpcChannel c in channels) c.Dispose();
        }
        double cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
        ResultRecorder.Totals totals = _recorder.Merge();
        (long lost, long duplicated) = _book.Audit();
        long lastTicks = Math.Max(totals.LastAnswerTicks, _startTicks + 1);
        return new RunOutcome(startedUtc, Stopwatch.GetElapsedTime(_startTicks, lastTicks).TotalSeconds, Interlocked.Read(ref _sent), totals,
            lost, duplicated, _recorder.Unexpected, new Dictionary<string, long>(_recorder.Codes), _series.ToArray(),
            Stopwatch.GetElapsedTime(0, _maxSendLagTicks).TotalMilliseconds, cpuSeconds);
    }

    private static CallOptions Call(InstitutionKey institution, CancellationToken token, int timeoutMs = 0) => new()
    {
        Headers = new Metadata().Add(InstitutionMethods.ApiKeyHeader, institution.ApiKey),
        Timeout = timeoutMs > 0 ? TimeSpan.FromMilliseconds(timeoutMs) : null,
        CancellationToken = token,
    };

    private RequestFactory Factory(int lane, out InstitutionKey institution)
    {
        int index = lane % _options.Workload.Institutions.Count;
        institution = _options.Workload.Institutions[index];
        return new RequestFactory(_options.Workload, _book, index, lane, _recorder.Refundable(index), _recorder.Queryable(index));
    }

    /// <summary>
    /// The lane's next request: open loop, the next schedule index of this lane (every Lanes-th) and its intended
    /// time, after waiting for it; closed loop, the next sequence number, intended now. False when done.
    /// </summary>
    private sealed class Pacer(LoadRunner runner, int lane, long endTicks)
    {
        private readonly IEnumerator<double>? _times = runner._options.Profile?.SendTimes().GetEnumerator();
        private long _index = -1;

        public long Seq { get; private set; }
        public long IntendedTicks { get; private set; }

        /// <summary>Ticks until the next request is due (0 if due), or -1 at the end of the run.</summary>
        public long Advance()
        {
            if (_times is null)
            {
                long now = Stopwatch.GetTimestamp();
                if (now >= endTicks || (Seq = runner._book.NextSeq()) < 0) return -1;
                IntendedTicks = now;
                return 0;
            }
            int lanes = runner._options.Lanes;
            do
            {
                if (!_times.MoveNext()) return -1;
                _index++;
            }
            while (_index % lanes != lane);
            Seq = _index;
            runner._book.NoteIssued(_index);
            IntendedTicks = runner._startTicks + (long)(_times.Current * Stopwatch.Frequency);
            return Math.Max(0, IntendedTicks - Stopwatch.GetTimestamp());
        }

        public void NoteSent()
        {
            Interlocked.Increment(ref runner._sent);
            long lag = Stopwatch.GetTimestamp() - IntendedTicks;
            long seen;
            while (lag > (seen = Volatile.Read(ref runner._maxSendLagTicks)) && Interlocked.CompareExchange(ref runner._maxSendLagTicks, lag, seen) != seen) { }
        }
    }

    private static Task Until(long dueTicks, CancellationToken token)
    {
        // Timers tick in milliseconds: under 1 ms early is close enough, and the send is timed from the intended time anyway.
        long waitTicks = dueTicks - Stopwatch.GetTimestamp();
        return waitTicks > Stopwatch.Frequency / 1000 ? Task.Delay(Stopwatch.GetElapsedTime(0, waitTicks), token) : Task.CompletedTask;
    }

    private async Task StreamLaneAsync(int lane, GrpcChannel channel, long endTicks, long graceTicks, CancellationTokenSource abort)
    {
        RequestFactory factory = Factory(lane, out InstitutionKey institution);
        var pacer = new Pacer(this, lane, endTicks);
        using var window = new SemaphoreSlim(_options.Window);
        CallOptions options = Call(institution, abort.Token);
        if (_options.Batch > 1) options.Headers!.Add(TransactBatch.InstitutionBatchMaxHeader, BatchForm.Format(_options.Batch));
        using DuplexStreamingCall<TransferRequest, TransferResult> call = channel.DuplexStreaming(InstitutionMethods.Transact, options);
        var batch = new StreamBatch(call, _options.Batch);
        Task reader = Task.Run(async () =>
        {
            try
            {
                await foreach (TransferResult r in call.ResponseStream.ReadAllAsync(abort.Token))
                {
                    long now = Stopwatch.GetTimestamp();
                    if (r.Batch.Count == 0)
                    {
                        _recorder.OnStreamResult(r, now);
                        window.Release();
                        continue;
                    }
                    foreach (TransferResult element in r.Batch) _recorder.OnStreamResult(element, now);
                    window.Release(r.Batch.Count);
                }
            }
            catch (Exception e) when (e is RpcException or OperationCanceledException or IOException)
            {
                // The stream broke or the grace ran out: what is unanswered counts as lost.
            }
        });
        try
        {
            bool closed = !_options.OpenLoop;
            while (true)
            {
                // Closed loop: a request is due when the window has room, and is timed from then. Open loop: it
                // is due at its intended time, and a full window's wait is part of its latency.
                if (closed) await AcquireAsync(window, batch, abort.Token);
                long wait = pacer.Advance();
                if (wait < 0) break;
                if (wait > 0)
                {
                    await batch.FlushAsync(abort.Token);
                    await Until(pacer.IntendedTicks, abort.Token);
                }
                if (!closed) await AcquireAsync(window, batch, abort.Token);
                TransferRequest request = factory.Build(pacer.Seq, pacer.IntendedTicks);
                await batch.WriteAsync(request, abort.Token);
                pacer.NoteSent();
            }
            await batch.WriteHeldAsync(abort.Token);
            await call.RequestStream.CompleteAsync();
        }
        catch (Exception e) when (e is RpcException or OperationCanceledException or IOException or InvalidOperationException)
        {
            _progress?.WriteLine($"lane {lane}: the stream failed while sending: {e.Message}");
        }
        // Open loop: the schedule ends at endTicks. Closed loop: sending ends at endTicks or when the count runs out (now).
        long graceEnd = (_options.OpenLoop ? Math.Max(endTicks, Stopwatch.GetTimestamp()) : Stopwatch.GetTimestamp()) + graceTicks;
        Task done = await Task.WhenAny(reader, Task.Delay(Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), graceEnd)));
        if (done != reader)
        {
            await abort.CancelAsync();
            await reader;
        }
    }

    private static async ValueTask AcquireAsync(SemaphoreSlim window, StreamBatch batch, CancellationToken token)
    {
        if (window.Wait(0)) return;
        await batch.FlushAsync(token); // What is buffered must go before waiting for its answers.
        await window.WaitAsync(token);
    }

    /// <summary>A Transact stream's writes: single messages, or (Batch above 1) requests held in one batch message until
    /// it is full or the lane is about to wait, so nothing due is held back.</summary>
    private sealed class StreamBatch(DuplexStreamingCall<TransferRequest, TransferResult> call, int max)
    {
        private readonly TransferRequest _envelope = new();

        public ValueTask WriteAsync(TransferRequest request, CancellationToken token)
        {
            if (max == 1) return call.RequestStream.WriteAsync(request, token);
            _envelope.Batch.Add(request);
            return _envelope.Batch.Count < max ? default : WriteHeldAsync(token);
        }

        /// <summary>Writes what is held (serialized at once: the envelope is reused).</summary>
        public async ValueTask WriteHeldAsync(CancellationToken token)
        {
            int count = _envelope.Batch.Count;
            if (count == 0) return;
            await call.RequestStream.WriteAsync(count == 1 ? _envelope.Batch[0] : _envelope, token);
            _envelope.Batch.Clear();
        }

        public async ValueTask FlushAsync(CancellationToken token)
        {
            await WriteHeldAsync(token);
            await call.RequestStream.FlushAsync(token);
        }
    }

    private async Task UnaryLaneAsync(int lane, GrpcChannel channel, long endTicks, SemaphoreSlim inFlight, CountdownEvent pending, CancellationToken abort)
    {
        RequestFactory factory = Factory(lane, out InstitutionKey institution);
        var pacer = new Pacer(this, lane, endTicks);
        CallOptions options = Call(institution, abort, _options.CallTimeoutMs);
        bool closed = !_options.OpenLoop;
        try
        {
            while (pacer.Advance() is var wait and >= 0)
            {
                if (wait > 0) await Until(pacer.IntendedTicks, abort);
                TransferRequest request = factory.Build(pacer.Seq, pacer.IntendedTicks);
                if (closed)
                {
                    pacer.NoteSent();
                    await CallAsync(pacer.Seq, request, channel, options, abort);
                    continue;
                }
                if (!inFlight.Wait(0)) await inFlight.WaitAsync(abort);
                pending.AddCount();
                pacer.NoteSent();
                _ = CallThenReleaseAsync(pacer.Seq, request, channel, options, inFlight, pending, abort);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task CallThenReleaseAsync(long seq, TransferRequest request, GrpcChannel channel, CallOptions options, SemaphoreSlim inFlight, CountdownEvent pending, CancellationToken abort)
    {
        try
        {
            await CallAsync(seq, request, channel, options, abort);
        }
        finally
        {
            inFlight.Release();
            pending.Signal();
        }
    }

    private async Task CallAsync(long seq, TransferRequest request, GrpcChannel channel, CallOptions options, CancellationToken abort)
    {
        GrpcMethod<TransferRequest, TransferResult> method = request.Kind switch
        {
            RequestKind.AgreementPayment => InstitutionMethods.AgreementPayment,
            RequestKind.Payout => InstitutionMethods.Payout,
            RequestKind.Refund => InstitutionMethods.Refund,
            _ => InstitutionMethods.Query,
        };
        TransferResult result;
        try
        {
            result = await channel.UnaryAsync(method, request, options);
        }
        catch (RpcException e)
        {
            if (abort.IsCancellationRequested) return; // Given up on past the grace: lost, not answered.
            _recorder.OnUnaryResult(seq, null, e, Stopwatch.GetTimestamp());
            return;
        }
        catch (Exception e) when (e is IOException or HttpRequestException or OperationCanceledException)
        {
            if (abort.IsCancellationRequested) return;
            _recorder.OnUnaryResult(seq, null, new RpcException(StatusCode.Unavailable, e.Message), Stopwatch.GetTimestamp());
            return;
        }
        _recorder.OnUnaryResult(seq, result, null, Stopwatch.GetTimestamp());
    }

    /// <summary>Once a second: the progress line and the time series point.</summary>
    private async Task TickAsync(Task finished)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        var interval = new LatencyHistogram();
        long lastSent = 0, lastDone = 0;
        int second = 0;
        while (true)
        {
            if (!finished.IsCompleted) await Task.WhenAny(timer.WaitForNextTickAsync().AsTask(), finished);
            bool last = finished.IsCompleted;
            long[] byOutcome = _recorder.TakeInterval(interval);
            long sent = Interlocked.Read(ref _sent);
            long done = byOutcome.Sum();
            second++;
            _series.Add(new SecondPoint(second, sent - lastSent, done - lastDone, interval.ValueAt(0.5), interval.ValueAt(0.99), interval.Count == 0 ? 0 : interval.MaxUs));
            _progress?.WriteLine(
                $"[{Stopwatch.GetElapsedTime(_startTicks).TotalSeconds,6:F1}s] sent {sent - lastSent,7}/s done {done - lastDone,7}/s | " +
                $"ok {byOutcome[(int)Outcome.Succeeded]} fail {byOutcome[(int)Outcome.Failed]} unknown {byOutcome[(int)Outcome.Unknown]} " +
                $"rejected {byOutcome[(int)Outcome.Rejected]} error {byOutcome[(int)Outcome.RpcError]} | " +
                $"p50 {interval.ValueAt(0.5) / 1000.0:F2} ms p99 {interval.ValueAt(0.99) / 1000.0:F2} ms | in flight {sent - done}");
            lastSent = sent;
            lastDone = done;
            if (last) return;
        }
    }
}

public sealed record RunOutcome(DateTime StartedUtc, double Seconds, long Sent, ResultRecorder.Totals Totals, long Lost, long Duplicated,
    long Unexpected, IReadOnlyDictionary<string, long> Codes, IReadOnlyList<SecondPoint> Series, double MaxSendLagMs, double GeneratorCpuSeconds);
