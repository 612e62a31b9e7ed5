using System.Diagnostics;
using Switch.Contracts.V1;
using Switch.Grpc.Client;
using Switch.Grpc;
using Switch.Grpc.Framing;
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

    /// <summary>The switch's institution API: the first address tried.</summary>
    public required Uri Target { get; init; }
    /// <summary>The same switch's other nodes (its standbys). Given any, a call that finds no primary follows it: to the
    /// address a standby names (x-switch-primary), else the next one; the requests it leaves unsettled are settled by Query
    /// on the primary found (sent again only if it never took them). None: calls fail as they do.</summary>
    public IReadOnlyList<Uri> FailoverTargets { get; init; } = [];
    /// <summary>How long a request looks for the primary before its last error counts as its answer.</summary>
    public int FailoverTimeoutMs { get; init; } = 30_000;
    public Transport Transport { get; init; } = Transport.Stream;
    /// <summary>Open loop when set; else closed loop for ClosedSeconds.</summary>
    public RateProfile? Profile { get; init; }
    public double ClosedSeconds { get; init; } = 10;
    /// <summary>Streams (stream transport) or sending lanes (unary open loop) or callers (unary closed loop).</summary>
    public int Lanes { get; init; } = 4;
    /// <summary>Requests outstanding per stream at most (the switch refuses more than its per-stream cap).</summary>
    public int Window { get; init; } = 4096;
    /// <summary>Stream: requests per Transact message at most (the batch form; 1 sends single messages). What is due (or due
    /// within the timer's millisecond) goes as one message once the lane would wait: a message is never held back to
    /// fill it. Above 1 the stream also reads results in batches of as many.</summary>
    public int Batch { get; init; } = 1;
    /// <summary>Unary open loop: calls in flight at most, over all lanes (a request due beyond it waits, and its wait counts).</summary>
    public int MaxUnaryInFlight { get; init; } = 4096;
    /// <summary>How long after the last send answers may still come before the rest count as lost.</summary>
    public double GraceSeconds { get; init; } = 15;
    public int CallTimeoutMs { get; init; } = 30_000;
    /// <summary>Open-loop capacity bound on the order book; the schedule must fit in it.</summary>
    public long MaxRequests { get; init; } = 100_000_000;
    public WorkloadOptions Workload { get; init; } = new();
    /// <summary>Snapshots taken during the run (run --snapshot-every): latencies are split by them. Null: no split.</summary>
    public SnapshotWindows? SnapshotWindows { get; init; }

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
        if (FailoverTargets.Count >= Targets.MaxAddresses) throw new ArgumentException($"targets: at most {Targets.MaxAddresses - 1} besides the first, got {FailoverTargets.Count}");
        if (FailoverTimeoutMs is < 1 or > 600_000) throw new ArgumentException($"failover timeout: 1 to 600000 ms, got {FailoverTimeoutMs}");
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
    private readonly RunWire _wire;
    private readonly ResultRecorder _recorder;
    private readonly List<SecondPoint> _series = new();
    private readonly FailoverLog _failovers = new();
    private Targets _targets = null!;
    private long _sent;
    private long _settledByQuery;
    private long _sentAgain;
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
        _book = new OrderBook(capacity, preallocate: options.Profile is not null);
        _wire = new RunWire(_book, options.Workload.Banks);
        _recorder = new ResultRecorder(_book, options.Workload.Institutions.Count, options.Workload.Banks.Count, options.SnapshotWindows);
    }

    public ResultRecorder Recorder => _recorder;

    public async Task<RunOutcome> RunAsync(CancellationToken cancel = default)
    {
        using var abort = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        int channelCount = Math.Min(_options.Lanes, 8);
        using var targets = new Targets([_options.Target, .. _options.FailoverTargets], channelCount);
        _targets = targets;
        DateTime startedUtc = DateTime.UtcNow;
        TimeSpan cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        long allocatedBefore = GC.GetTotalAllocatedBytes(precise: false);
        _startTicks = Stopwatch.GetTimestamp();
        long endTicks = _startTicks + (long)((_options.Profile?.DurationSeconds ?? _options.ClosedSeconds) * Stopwatch.Frequency);
        long graceTicks = (long)(_options.GraceSeconds * Stopwatch.Frequency);
        // Not disposed: a call given up on past the grace may still release it.
        var unaryInFlight = new SemaphoreSlim(_options.MaxUnaryInFlight);
        var pendingUnary = new CountdownEvent(1); // The run's own count, taken down once every lane is done.
        Task[] lanes = Enumerable.Range(0, _options.Lanes).Select(lane => Task.Run(() => _options.Transport == Transport.Stream
            ? StreamLaneAsync(lane, endTicks, graceTicks, abort)
            : UnaryLaneAsync(lane, endTicks, unaryInFlight, pendingUnary, abort.Token))).ToArray();
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
        }
        double cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
        long allocatedBytes = GC.GetTotalAllocatedBytes(precise: false) - allocatedBefore;
        ResultRecorder.Totals totals = _recorder.Merge();
        (long lost, long duplicated) = _book.Audit();
        long lastTicks = Math.Max(totals.LastAnswerTicks, _startTicks + 1);
        (int failovers, double[] gapsMs, string[] causes) = _failovers.Snapshot();
        return new RunOutcome(startedUtc, Stopwatch.GetElapsedTime(_startTicks, lastTicks).TotalSeconds, Interlocked.Read(ref _sent), totals,
            lost, duplicated, _recorder.Unexpected, new Dictionary<string, long>(_recorder.Codes), _series.ToArray(),
            Stopwatch.GetElapsedTime(0, _maxSendLagTicks).TotalMilliseconds, cpuSeconds)
        {
            GeneratorAllocatedBytes = allocatedBytes,
            Failovers = failovers, FailoverGapsMs = gapsMs, FailoverCauses = causes, TargetMoves = targets.Moves,
            SettledByQuery = Interlocked.Read(ref _settledByQuery), SentAgain = Interlocked.Read(ref _sentAgain),
        };
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
        return new RequestFactory(_options.Workload, _wire, index, lane, _recorder.Refundable(index), _recorder.Queryable(index));
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
        /// <summary>The last sequence number handed out (-1: none yet); Seq says nothing once the run is over.</summary>
        public long Last { get; private set; } = -1;

        /// <summary>Ticks until the next request is due (0 if due), or -1 at the end of the run.</summary>
        public long Advance()
        {
            if (_times is null)
            {
                long now = Stopwatch.GetTimestamp();
                if (now >= endTicks || (Seq = runner._book.NextSeq()) < 0) return -1;
                Last = Seq;
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
            Last = Seq;
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

    /// <summary>Timers tick in milliseconds: a request due within one is sent now, without a wait (its latency is still
    /// timed from its intended time).</summary>
    private static readonly long EarlyTicks = Stopwatch.Frequency / 1000;

    private static Task Until(long dueTicks, CancellationToken token)
    {
        long waitTicks = dueTicks - Stopwatch.GetTimestamp();
        return waitTicks > EarlyTicks ? Task.Delay(Stopwatch.GetElapsedTime(0, waitTicks), token) : Task.CompletedTask;
    }

    /// <summary>
    /// One lane's Transact streams: normally one for the run. Following a switch-over, a stream the switch broke is
    /// replaced by one to the primary, after what it left unanswered is settled there (<see cref="SettleLaneAsync"/>).
    /// </summary>
    private async Task StreamLaneAsync(int lane, long endTicks, long graceTicks, CancellationTokenSource abort)
    {
        RequestFactory factory = Factory(lane, out InstitutionKey institution);
        var pacer = new Pacer(this, lane, endTicks);
        long sessionFrom = 0; // the lane's requests from here on were sent on the current stream
        while (true)
        {
            TargetGeneration generation;
            try { generation = await _targets.ReadyAsync(abort.Token); }
            catch (OperationCanceledException) { return; }
            (RpcException? broken, bool sendingDone, long servedTicks) = await StreamSessionAsync(lane, generation, factory, pacer, institution, endTicks, graceTicks, abort);
            if (broken is null || !_targets.Follows || FailoverSignal.Of(broken) is not { } signal || abort.IsCancellationRequested) return;
            _progress?.WriteLine($"lane {lane}: {generation.Address} ended the stream ({broken.Status.Detail}); settling its unanswered requests on the primary");
            // The break tells of the node as it was when it last served the stream: a refusal of a stream opened just before
            // the node took office, read after a success there, is old news (taken as news, a CI run counted a second
            // switch-over of 35 ms right after the real one).
            SwitchOverSeen(generation, servedTicks, signal, $"lane {lane}'s stream", broken);
            await SettleLaneAsync(lane, sessionFrom, pacer.Last, institution, abort.Token);
            sessionFrom = pacer.Last + 1;
            if (sendingDone) return;
        }
    }

    /// <summary>One Transact stream until the lane's schedule is sent and answered (or the grace ends), or the stream
    /// breaks: then its status, whether everything was sent, and when the node last served it (the stream's opening, or
    /// its last answer).</summary>
    private async Task<(RpcException? Broken, bool SendingDone, long ServedTicks)> StreamSessionAsync(int lane, TargetGeneration generation, RequestFactory factory,
        Pacer pacer, InstitutionKey institution, long endTicks, long graceTicks, CancellationTokenSource abort)
    {
        using var window = new SemaphoreSlim(_options.Window);
        using var session = CancellationTokenSource.CreateLinkedTokenSource(abort.Token); // a broken stream stops the sending
        CallOptions options = Call(institution, session.Token);
        if (_options.Batch > 1) options.Headers!.Add(TransactBatch.InstitutionBatchMaxHeader, BatchForm.Format(_options.Batch));
        long servedTicks = Stopwatch.GetTimestamp(); // the stream's opening, then each answer's arrival (the reader's alone)
        using DuplexStreamingCall<TransferRequest, TransferResults> call = generation.For(lane).DuplexStreaming(TransferResults.Transact, options);
        var batch = new StreamBatch(call, _options.Batch);
        RpcException? broken = null;
        Task reader = Task.Run(async () =>
        {
            try
            {
                while (await call.ResponseStream.ReadAsync(session.Token) is { } results)
                {
                    long now = Stopwatch.GetTimestamp();
                    servedTicks = now;
                    int count = results.Count;
                    for (int i = 0; i < count; i++) Answered(results.At(i), results.Bytes, generation, now);
                    results.Release();
                    window.Release(count);
                }
            }
            catch (Exception e) when (e is RpcException or IOException && !abort.IsCancellationRequested)
            {
                // The stream broke: what is unanswered counts as lost, or is settled on the primary when following.
                broken = e as RpcException ?? new RpcException(StatusCode.Unavailable, e.Message);
                await session.CancelAsync();
            }
            catch (Exception e) when (e is RpcException or OperationCanceledException or IOException)
            {
                // The grace ran out: what is unanswered counts as lost.
            }
        });
        bool sendingDone = false;
        try
        {
            bool closed = !_options.OpenLoop;
            while (true)
            {
                // Closed loop: a request is due when the window has room, and is timed from then. Open loop: it
                // is due at its intended time, and a full window's wait is part of its latency.
                if (closed) await AcquireAsync(window, batch, session.Token);
                long wait = pacer.Advance();
                if (wait < 0) break;
                if (wait > EarlyTicks)
                {
                    // Only a lane about to sleep flushes: what is due (or due within the timer's slack, sent now anyway)
                    // goes as one message, not one a request (at 45,000/s a lane, 22 µs apart, each got its own frame).
                    await batch.FlushAsync(session.Token);
                    await Until(pacer.IntendedTicks, session.Token);
                }
                if (!closed) await AcquireAsync(window, batch, session.Token);
                await batch.WriteAsync(factory.Build(pacer.Seq, pacer.IntendedTicks), session.Token);
                pacer.NoteSent();
            }
            sendingDone = true;
            await batch.WriteHeldAsync(session.Token);
            await call.RequestStream.CompleteAsync();
        }
        catch (Exception e) when (e is RpcException or OperationCanceledException or IOException or InvalidOperationException)
        {
            if (!session.IsCancellationRequested) _progress?.WriteLine($"lane {lane}: the stream failed while sending: {e.Message}");
        }
        // Open loop: the schedule ends at endTicks. Closed loop: sending ends at endTicks or when the count runs out (now).
        long graceEnd = (_options.OpenLoop ? Math.Max(endTicks, Stopwatch.GetTimestamp()) : Stopwatch.GetTimestamp()) + graceTicks;
        Task done = await Task.WhenAny(reader, Task.Delay(Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), graceEnd)));
        if (done != reader)
        {
            await abort.CancelAsync();
            await reader;
        }
        return (broken, sendingDone, servedTicks);
    }

    /// <summary>A stream's answer: recorded; a success on an address chosen after a switch-over began ends it.</summary>
    private void Answered(in ResultFields result, ReadOnlySpan<byte> message, TargetGeneration generation, long nowTicks)
    {
        _recorder.OnStreamResult(result.OrderNo.In(message), result.Status, result.RejectCode.In(message), nowTicks);
        if (result.Status == TransactionStatus.Succeeded) Succeeded(generation, nowTicks);
    }

    /// <summary>A payment succeeded on <paramref name="generation"/>. The target comes back to it first if the switch-over
    /// had moved past it (<see cref="Targets.Answered"/>): a refusal then seen on the address left is old news.</summary>
    private void Succeeded(TargetGeneration generation, long nowTicks)
    {
        if (_failovers.Ends(generation.Number)) _targets.Answered(generation);
        _failovers.Succeeded(generation.Number, nowTicks);
    }

    /// <summary>Requests settled at once after a stream broke (queries on the primary, each a unary call).</summary>
    public const int SettleConcurrency = 64;

    /// <summary>
    /// After a stream broke in a switch-over: every request the lane sent on it (sequence numbers from..to) that got no
    /// answer is settled on the primary, once each. No answer can come on the broken stream any more.
    /// </summary>
    private async Task SettleLaneAsync(int lane, long from, long to, InstitutionKey institution, CancellationToken abort)
    {
        var unanswered = new List<long>();
        for (long seq = from; seq <= to; seq++)
        {
            if (_book.TryAt(seq, out OrderBook.Entry[] page, out int index) && page[index].Lane == lane && Volatile.Read(ref page[index].Answers) == 0)
            {
                unanswered.Add(seq);
            }
        }
        CallOptions call = Call(institution, abort, _options.CallTimeoutMs);
        try
        {
            await Parallel.ForEachAsync(unanswered, new ParallelOptions { MaxDegreeOfParallelism = SettleConcurrency, CancellationToken = abort },
                async (seq, _) => await SettleAsync(seq, RequestFactory.Rebuild(_options.Workload, _wire, seq), knownNotTaken: false, lane, call, abort));
        }
        catch (OperationCanceledException)
        {
            // Given up on past the grace: what is unsettled counts as lost.
        }
    }

    /// <summary>
    /// A request a switch-over left unsettled, settled on the primary so that it counts once: asked about by Query (its
    /// final outcome is the answer: one still at the bank is asked about again), and sent again only when the primary does not know it (it was never taken). A standby's
    /// NOT_PRIMARY refusal took nothing (<paramref name="knownNotTaken"/>): that one is sent again at once. A query is
    /// simply asked again. Looks for the primary up to FailoverTimeoutMs; then its last error is its answer.
    /// </summary>
    private async Task SettleAsync(long seq, TransferRequest request, bool knownNotTaken, int lane, CallOptions call, CancellationToken abort)
    {
        bool isQuery = request.Kind == RequestKind.Query;
        bool ask = !knownNotTaken && !isQuery;
        long deadline = Stopwatch.GetTimestamp() + _options.FailoverTimeoutMs * Stopwatch.Frequency / 1000;
        while (true)
        {
            TargetGeneration generation;
            try { generation = await _targets.ReadyAsync(abort); }
            catch (OperationCanceledException) { return; }
            long startedTicks = Stopwatch.GetTimestamp();
            RpcException error;
            try
            {
                TransferResult result = ask
                    ? await generation.For(lane).UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = request.OrderNo }, call)
                    : await generation.For(lane).UnaryAsync(MethodOf(request.Kind), request, call);
                if (ask && result.Status == TransactionStatus.Processing && Stopwatch.GetTimestamp() < deadline)
                {
                    await Task.Delay(SettlePollMs, abort); // still at the bank: its outcome, not this, is the answer
                    continue;
                }
                Interlocked.Increment(ref ask ? ref _settledByQuery : ref _sentAgain);
                Answered(seq, result, generation);
                return;
            }
            catch (RpcException e) { error = e; }
            catch (Exception e) when (e is IOException or HttpRequestException or OperationCanceledException) { error = new RpcException(StatusCode.Unavailable, e.Message); }
            if (abort.IsCancellationRequested) return; // given up on past the grace: lost, not answered
            if (ask && error.StatusCode == StatusCode.NotFound && ResultRecorder.RejectCodeOf(error.Status) == OrderNotFound)
            {
                ask = false; // the primary never took it: send it
                continue;
            }
            if (FailoverSignal.Of(error) is { } signal && Stopwatch.GetTimestamp() < deadline)
            {
                SwitchOverSeen(generation, startedTicks, signal, ask ? $"lane {lane}'s settling query" : $"lane {lane}'s settling send", error);
                if (!signal.NotPrimary && !isQuery) ask = true; // a send may have been taken before the node went: ask first
                continue;
            }
            _recorder.OnUnaryResult(seq, null, error, Stopwatch.GetTimestamp());
            return;
        }
    }

    /// <summary>
    /// A call begun at <paramref name="startedTicks"/> on <paramref name="seen"/> found no primary: a switch-over begins (or
    /// goes on) and the address moves. Old news changes nothing: a failure on an address already left, or one whose call
    /// began before a later success there (a call in flight across the moment a standby took office).
    /// </summary>
    private void SwitchOverSeen(TargetGeneration seen, long startedTicks, FailoverSignal signal, string call, RpcException error)
    {
        if (seen.Number < _targets.Current.Number || _failovers.SucceededSince(seen.Number, startedTicks)) return;
        _failovers.Began(seen, _recorder.LastSuccessTicks, call, error);
        _targets.Failed(seen, signal);
    }

    /// <summary>How often an order the primary still has at the bank is asked about again while it is settled.</summary>
    public const int SettlePollMs = 50;

    /// <summary>The switch's reject code for a query about an order it does not know.</summary>
    public const string OrderNotFound = "ORDER_NOT_FOUND";

    private static GrpcMethod<TransferRequest, TransferResult> MethodOf(RequestKind kind) => kind switch
    {
        RequestKind.AgreementPayment => InstitutionMethods.AgreementPayment,
        RequestKind.Payout => InstitutionMethods.Payout,
        RequestKind.Refund => InstitutionMethods.Refund,
        _ => InstitutionMethods.Query,
    };

    /// <summary>A unary answer: recorded; a success on an address chosen after a switch-over began ends it.</summary>
    private void Answered(long seq, TransferResult result, TargetGeneration generation)
    {
        long now = Stopwatch.GetTimestamp();
        _recorder.OnUnaryResult(seq, result, null, now);
        if (result.Status == TransactionStatus.Succeeded) Succeeded(generation, now);
    }

    private static async ValueTask AcquireAsync(SemaphoreSlim window, StreamBatch batch, CancellationToken token)
    {
        if (window.Wait(0)) return;
        await batch.FlushAsync(token); // What is buffered must go before waiting for its answers.
        await window.WaitAsync(token);
    }

    /// <summary>A Transact stream's writes: single messages, or (Batch above 1) requests held in one batch message until
    /// it is full or the lane is about to wait, so nothing due is held back. Encoded by hand from their fields into the
    /// call's buffer (<see cref="TransferRequestFields"/>), from arrays made once per stream.</summary>
    private sealed class StreamBatch(DuplexStreamingCall<TransferRequest, TransferResults> call, int max)
    {
        private readonly TransferFields[] _held = new TransferFields[max];
        private readonly int[] _elementBytes = new int[max];
        private int _count;

        public ValueTask WriteAsync(in TransferFields request, CancellationToken token)
        {
            _held[_count++] = request;
            return _count < max ? default : WriteHeldAsync(token);
        }

        /// <summary>Writes what is held: one request as the single form, more as a batch.</summary>
        public async ValueTask WriteHeldAsync(CancellationToken token)
        {
            int count = _count;
            if (count == 0) return;
            await call.RequestStream.WriteEncodedAsync(
                new BatchFormEncoder<TransferFields, TransferRequestFields>(_held, 0, count, batch: count > 1, _elementBytes), token);
            _count = 0;
        }

        public async ValueTask FlushAsync(CancellationToken token)
        {
            await WriteHeldAsync(token);
            await call.RequestStream.FlushAsync(token);
        }
    }

    private async Task UnaryLaneAsync(int lane, long endTicks, SemaphoreSlim inFlight, CountdownEvent pending, CancellationToken abort)
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
                TransferRequest request = factory.Build(pacer.Seq, pacer.IntendedTicks).ToMessage();
                if (closed)
                {
                    pacer.NoteSent();
                    await CallAsync(pacer.Seq, request, lane, options, abort);
                    continue;
                }
                if (!inFlight.Wait(0)) await inFlight.WaitAsync(abort);
                pending.AddCount();
                pacer.NoteSent();
                _ = CallThenReleaseAsync(pacer.Seq, request, lane, options, inFlight, pending, abort);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task CallThenReleaseAsync(long seq, TransferRequest request, int lane, CallOptions options, SemaphoreSlim inFlight, CountdownEvent pending, CancellationToken abort)
    {
        try
        {
            await CallAsync(seq, request, lane, options, abort);
        }
        finally
        {
            inFlight.Release();
            pending.Signal();
        }
    }

    private async Task CallAsync(long seq, TransferRequest request, int lane, CallOptions options, CancellationToken abort)
    {
        TargetGeneration generation = _targets.Current;
        long startedTicks = Stopwatch.GetTimestamp();
        TransferResult result;
        RpcException error;
        try
        {
            result = await generation.For(lane).UnaryAsync(MethodOf(request.Kind), request, options);
            Answered(seq, result, generation);
            return;
        }
        catch (RpcException e)
        {
            error = e;
        }
        catch (Exception e) when (e is IOException or HttpRequestException or OperationCanceledException)
        {
            error = new RpcException(StatusCode.Unavailable, e.Message);
        }
        if (abort.IsCancellationRequested) return; // Given up on past the grace: lost, not answered.
        if (_targets.Follows && FailoverSignal.Of(error) is { } signal)
        {
            SwitchOverSeen(generation, startedTicks, signal, $"lane {lane}'s unary call", error);
            await SettleAsync(seq, request, knownNotTaken: signal.NotPrimary, lane, options, abort);
            return;
        }
        _recorder.OnUnaryResult(seq, null, error, Stopwatch.GetTimestamp());
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
    long Unexpected, IReadOnlyDictionary<string, long> Codes, IReadOnlyList<SecondPoint> Series, double MaxSendLagMs, double GeneratorCpuSeconds)
{
    /// <summary>Switch-overs the run went through (following several addresses), and each finished one's time with no success.</summary>
    public int Failovers { get; init; }
    public IReadOnlyList<double> FailoverGapsMs { get; init; } = [];
    /// <summary>What began each switch-over: the call (a lane's stream, a unary call, a settling query) and its status.</summary>
    public IReadOnlyList<string> FailoverCauses { get; init; } = [];
    /// <summary>Moves from one address to another (several per switch-over when a standby had not taken office yet).</summary>
    public int TargetMoves { get; init; }
    /// <summary>Requests a switch-over left unsettled whose outcome a Query on the primary gave, and those sent again
    /// (refused by a standby, or unknown to the primary).</summary>
    public long SettledByQuery { get; init; }
    public long SentAgain { get; init; }
    /// <summary>Bytes the generator's process allocated during the run (it shares the cores: its collections count too).</summary>
    public long GeneratorAllocatedBytes { get; init; }
}
