using Switch.Contracts.V1;
using Switch.Engine.Client;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Grpc.Framing;
using EngineOperation = Switch.Engine.Events.BankOperation;
using EngineReply = Switch.Engine.Events.BankReply;

namespace Switch.Host.Banks;

/// <summary>
/// The switch's connection to one bank endpoint: a persistent HTTP/2 channel carrying one Exchange stream.
/// Requests queue here (bounded, pre-allocated structs), and one writer encodes every queued request straight from
/// the queue onto the stream before flushing once; a batch of answers goes into the engine as one claim of its input ring.
/// Answers go back into the engine as events. If the endpoint refuses connections or the stream breaks, the
/// endpoint is marked down in the engine (an event) and probed until it answers; requests lost with the stream
/// time out in the engine and are resolved by query, so nothing is retried blindly here.
/// Batches (bank.proto): the call says the switch reads batched answers; once the endpoint's first answer brings
/// its x-bank-batch-max header, the writer puts whatever the queue holds, up to that many, in one message (it
/// never waits to fill one). An endpoint that declares nothing gets single messages. A malformed answer message
/// (ExchangeBatch.Problem) ends the stream like a broken one, its reason logged.
/// </summary>
public sealed class EndpointLink : IAsyncDisposable
{
    /// <summary>A refused connection fails at once whatever this is; the bound only decides how long a hung endpoint may take.
    /// Generous, so a first probe slowed by start-up work on a busy machine does not mark a healthy endpoint unreachable.</summary>
    private const int MinProbeTimeoutMs = 2_000;
    private readonly EngineClient _engine;
    private readonly Log _log;
    private readonly GrpcChannel _channel;
    private readonly LinkQueue _queue;
    private readonly int _probeIntervalMs;
    private readonly CancellationTokenSource _stop = new();
    private Task _run = Task.CompletedTask;
    private int _started;
    private EndpointState _reported = EndpointState.Up;
    /// <summary>The first observation is always reported: the journal may hold "unreachable" from before a restart.</summary>
    private bool _reportedOnce;
    private long _sent;
    private long _messagesSent;
    private long _answered;
    /// <summary>Requests per message the current stream's endpoint reads (1 until it has declared more).</summary>
    private int _requestBatchMax = 1;
    private long _dropped;

    public EndpointLink(EngineClient engine, int bankCode, int endpointIndex, string endpointName, Uri address, int maxQueued,
        int probeIntervalMs, Log log)
    {
        _engine = engine;
        _log = log;
        BankCode = bankCode;
        EndpointIndex = endpointIndex;
        Name = endpointName;
        Address = address;
        _probeIntervalMs = probeIntervalMs;
        _channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions { ConnectTimeout = TimeSpan.FromMilliseconds(Math.Max(probeIntervalMs, MinProbeTimeoutMs)) });
        _queue = new LinkQueue(maxQueued);
    }

    /// <summary>Connects and keeps the stream up from now on (a standby's links start when it takes office: until then
    /// the primary speaks to the banks). Once.</summary>
    public void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) != 0 || _stop.IsCancellationRequested) throw new InvalidOperationException($"endpoint link {Name}: started twice, or after its stop");
        _run = Task.Run(RunAsync);
    }

    public int BankCode { get; }
    public int EndpointIndex { get; }
    public string Name { get; }
    public Uri Address { get; }
    public long Sent => Interlocked.Read(ref _sent);
    /// <summary>Exchange messages written: fewer than Sent once the endpoint takes batches.</summary>
    public long MessagesSent => Interlocked.Read(ref _messagesSent);
    /// <summary>The batch the endpoint declared on the current stream (1: single messages).</summary>
    public int RequestBatchMax => Volatile.Read(ref _requestBatchMax);
    public long Answered => Interlocked.Read(ref _answered);
    /// <summary>Requests not sent because the queue was full or the endpoint down: the engine resolves them by query.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);
    public bool IsUp => _reported == EndpointState.Up;
    /// <summary>True once this link has told the engine what it found (until then the engine holds the state it started
    /// or recovered with, which a probe may yet contradict).</summary>
    public bool HasReported => Volatile.Read(ref _reportedOnce);
    /// <summary>Requests waiting in the queue to be written to the endpoint's stream (the output backlog).</summary>
    public int Queued => _queue.Count;

    /// <summary>From the engine's output thread: never blocks. The request keeps exactly the deadline the logic decided
    /// (from its event stamps, however late this leaves): the bank must not execute past it, and the logic takes a
    /// "no record" answer as final only once it has passed. The writer is not woken here: the caller calls
    /// <see cref="WakeWriter"/> once it has queued what it has.</summary>
    public void Enqueue(in OutputEvent request)
    {
        if (!_queue.TryEnqueue(request))
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    /// <summary>The queue (tests play its writer).</summary>
    internal LinkQueue Queue => _queue;

    /// <summary>Wakes the writer if it waits and requests are queued. Any thread.</summary>
    public void WakeWriter() => _queue.WakeWriter();

    /// <summary>The connector's mark, on its one dispatching thread: this link is in its list to wake at the batch's end.</summary>
    internal bool WakeListed;

    private async Task RunAsync()
    {
        CancellationToken stop = _stop.Token;
        while (!stop.IsCancellationRequested)
        {
            if (await ProbeAsync(stop) is { } failure)
            {
                Report(EndpointState.Down, failure);
                await DelayAsync(_probeIntervalMs, stop);
                continue;
            }
            Report(EndpointState.Up, "probe answered");
            try
            {
                await ExchangeAsync(stop);
            }
            catch (Exception) when (stop.IsCancellationRequested)
            {
                return; // shutting down: the stream was cancelled on purpose
            }
            catch (Exception e) when (e is RpcException or HttpRequestException or IOException or OperationCanceledException)
            {
                Report(EndpointState.Down, $"stream ended: {e.Message}");
                await DelayAsync(_probeIntervalMs, stop);
            }
        }
    }

    /// <summary>A query for transaction 0: any answer means the endpoint is reachable and serving. Null when it
    /// answered, else why not.</summary>
    private async Task<string?> ProbeAsync(CancellationToken stop)
    {
        try
        {
            await _channel.UnaryAsync(BankEndpointMethods.Query,
                new BankRequest { TransactionId = 0, Operation = Contracts.V1.BankOperation.Query, BankCode = BankCode },
                new CallOptions { Timeout = TimeSpan.FromMilliseconds(Math.Max(_probeIntervalMs, MinProbeTimeoutMs)), CancellationToken = stop });
            return null;
        }
        catch (RpcException e) when (e.StatusCode is not (StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Cancelled))
        {
            return null; // it answered, even if it disliked the probe
        }
        catch (Exception e) when (e is RpcException or HttpRequestException or IOException or OperationCanceledException)
        {
            return $"probe failed: {e.Message}";
        }
    }

    private async Task ExchangeAsync(CancellationToken stop)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stop);
        Volatile.Write(ref _requestBatchMax, 1); // Until this stream's endpoint says otherwise.
        using DuplexStreamingCall<BankRequest, BankAnswers> call = _channel.DuplexStreaming(BankAnswers.Exchange,
            new CallOptions { CancellationToken = linked.Token, Headers = SwitchDeclaration });
        Task reader = ReadAnswersAsync(call, linked.Token);
        // The reader ending (the stream broke) or the stop wakes a writer waiting for requests, so it is noticed at once.
        _ = reader.ContinueWith(static (_, queue) => ((LinkQueue)queue!).Arrived.Wake(), _queue, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        using CancellationTokenRegistration wakeOnStop = linked.Token.UnsafeRegister(static queue => ((LinkQueue)queue!).Arrived.Wake(), _queue);
        int[] elementBytes = new int[ExchangeBatch.MaxElements];
        try
        {
            bool unflushed = false;
            while (!reader.IsCompleted)
            {
                linked.Token.ThrowIfCancellationRequested();
                // What is queued now, up to the endpoint's batch, in one message, encoded from the queue's slots in place.
                int batchMax = Volatile.Read(ref _requestBatchMax);
                int count = _queue.Peek(batchMax, out QueuedRequest[] slots, out int start);
                if (count == 0)
                {
                    if (unflushed)
                    {
                        await call.RequestStream.FlushAsync(linked.Token); // Once per burst: the queue ran dry.
                        unflushed = false;
                        continue; // More may have come while flushing.
                    }
                    await _queue.Arrived.WaitAsync();
                    continue;
                }
                try
                {
                    await call.RequestStream.WriteEncodedAsync(new BatchFormEncoder<QueuedRequest, BankRequestFields>(slots, start, count, batchMax > 1, elementBytes), linked.Token);
                }
                finally
                {
                    _queue.Release(count); // Written, or lost with the stream (the engine resolves those by query).
                }
                unflushed = true;
                Interlocked.Add(ref _sent, count);
                Interlocked.Increment(ref _messagesSent);
            }
        }
        finally
        {
            linked.Cancel();
            try { await reader; } catch (Exception) when (stop.IsCancellationRequested || linked.IsCancellationRequested) { }
        }
        await reader; // surfaces why the stream ended
    }

    /// <summary>The switch's side of the batch handshake, sent on every Exchange call.</summary>
    private static readonly Metadata SwitchDeclaration =
        new Metadata().Add(ExchangeBatch.SwitchBatchMaxHeader, ExchangeBatch.Format(ExchangeBatch.MaxElements));

    private async Task ReadAnswersAsync(DuplexStreamingCall<BankRequest, BankAnswers> call, CancellationToken cancel)
    {
        bool first = true;
        while (await call.ResponseStream.ReadAsync(cancel) is { } answers)
        {
            try
            {
                if (first)
                {
                    first = false;
                    LearnBatch((await call.GetResponseHeadersAsync()).GetValue(ExchangeBatch.BankBatchMaxHeader));
                }
                if (answers.Problem(ExchangeBatch.MaxElements) is { } malformed)
                {
                    throw new IOException($"bank endpoint {Name} sent a malformed answer message: {malformed.Status.Detail}");
                }
                Interlocked.Add(ref _answered, answers.Count);
                PublishResults(answers);
            }
            finally
            {
                answers.Release();
            }
        }
        throw new IOException($"bank endpoint {Name} ended its stream");
    }

    /// <summary>The endpoint's declaration (its response headers come with its first answer); one that is not 1 to
    /// ExchangeBatch.MaxElements is logged and the stream stays with single messages.</summary>
    private void LearnBatch(string? declared)
    {
        if (ExchangeBatch.ParseDeclared(declared) is { } max)
        {
            Volatile.Write(ref _requestBatchMax, max);
            return;
        }
        _log.Warn("bank_batch_header_ignored", $"{ExchangeBatch.BankBatchMaxHeader} must be 1 to {ExchangeBatch.MaxElements}; single messages are sent",
            ("bank", BankCode.ToString("D3")), ("endpoint", Name), ("value", declared));
    }

    /// <summary>The engine did not take an input: busy, refused by its fill, or fenced (a cluster's primary that lost its
    /// lease takes nothing more while its links close; the next primary asks the banks).</summary>
    private static bool NotTaken(Exception e) => e is EngineBusyException or InputFillException or Engine.Replication.ReplicationRefusedException;

    /// <summary>An answer message's results into the engine: one claim of the input ring for the whole batch (back-pressure:
    /// waits, bounded, while the ring is full).</summary>
    private void PublishResults(BankAnswers answers)
    {
        int count = answers.Count;
        var fill = new ResultsFill(answers);
        int published;
        Exception? refusal;
        try
        {
            published = _engine.PublishBatch(ref fill, count, out refusal);
        }
        catch (InputFillException e)
        {
            published = count; // The others went in; the one that could not be written is resolved by the engine's query.
            refusal = e;
        }
        if (refusal is not null)
        {
            // Not taken: those transactions stay unresolved, and the engine's follow-up query asks the bank again.
            _log.Warn("bank_result_dropped", refusal.Message, ("bank", BankCode.ToString("D3")), ("endpoint", Name),
                ("transaction_id", answers.At(Math.Min(published, count - 1)).TransactionId), ("results", count - published));
        }
    }

    /// <summary>Tells the engine of a change in reachability (only changes, and the first observation: the journal is
    /// not a heartbeat log). The engine keeps it apart from the operator's admin state, so an operator's Down
    /// survives a reconnect; it audits only real changes.</summary>
    private void Report(EndpointState state, string why)
    {
        if ((state == _reported && _reportedOnce) || _engine.Engine.Fault is not null)
        {
            return;
        }
        _reported = state;
        _reportedOnce = true;
        if (state == EndpointState.Up)
        {
            _log.Info("endpoint_reachable", why, ("bank", BankCode.ToString("D3")), ("endpoint", Name), ("address", Address));
        }
        else
        {
            _log.Warn("endpoint_unreachable", why, ("bank", BankCode.ToString("D3")), ("endpoint", Name), ("address", Address));
        }
        var fill = new ReachabilityFill(BankCode.ToString("D3"), EndpointIndex, state == EndpointState.Up);
        try
        {
            _engine.Publish(ref fill);
        }
        catch (Exception e) when (NotTaken(e))
        {
            _reportedOnce = false; // not told: the next probe reports again
            _log.Warn("reachability_dropped", e.Message, ("bank", BankCode.ToString("D3")), ("endpoint", Name));
        }
    }

    /// <summary>The results of one answer message: the single form, or each element of the batch form.</summary>
    private readonly struct ResultsFill(BankAnswers answers) : IInputBatchFill
    {
        public void Fill(ref InputEvent e, int index)
        {
            ref readonly BankAnswers.Answer answer = ref answers.At(index);
            e.PrepareBankResult(answer.TransactionId, (EngineOperation)(int)answer.Operation, (EngineReply)(int)answer.Reply, answer.Reason.In(answers.Bytes));
        }
    }

    private readonly struct ReachabilityFill(string bank, int endpointIndex, bool reachable) : IInputFill
    {
        public void Fill(ref InputEvent e, long correlationId) => e.PrepareEndpointReachability(bank, endpointIndex, reachable,
            "connector", reachable ? "probe answered" : "probe failed or stream ended");
    }

    private static async Task DelayAsync(int ms, CancellationToken stop)
    {
        try { await Task.Delay(ms, stop); } catch (OperationCanceledException) { }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try { await _run; } catch (OperationCanceledException) { }
        _channel.Dispose();
        _stop.Dispose();
        if (Sent > 0)
        {
            _log.Info("endpoint_link_closed", "requests sent in that many Exchange messages", ("bank", BankCode.ToString("D3")), ("endpoint", Name),
                ("sent", Sent), ("messages", MessagesSent), ("answered", Answered), ("dropped", Dropped));
        }
    }
}
