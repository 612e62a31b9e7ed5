using System.Diagnostics;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Framing;
using Switch.Grpc.Server;

namespace Switch.BankSim;

/// <summary>
/// One Exchange stream, the volume path. A reader admits requests into a bounded priority queue keyed by the
/// time each answer becomes due; one writer executes everything due, writes the answers and flushes once per
/// batch, then sleeps until the next due time or a new arrival. One timed wait per batch, not a timer per
/// message. When the queue is full the reader stops reading, so HTTP/2 flow control pushes back on the switch.
/// Batches (bank.proto): the session declares the batch it reads in the x-bank-batch-max response header, takes a
/// batch whole (one timestamp, one enqueue) or refuses it whole, and answers in batches when the switch declared
/// it reads them (x-switch-batch-max), each pass's due answers in as few messages as that allows.
/// A request due on arrival (no latency, or answered at once: invalid, busy) skips the priority queue: it goes to a
/// first-in-first-out ring the writer empties first, in arrival order. At the design peak with no bank latency every
/// request was due on arrival, and the heap's sift up and down were 0.8% of the switch's profile.
/// The reader wakes the writer inline (<see cref="WakeSignal"/>): the writer's pass for the answers the reader just
/// admitted runs on the reader's thread, and the reader reads on when the writer waits again. Woken through a
/// semaphore, the writer's pass was a work item of its own, a pool thread woken for each message read.
/// </summary>
internal sealed class ExchangeSession
{
    /// <summary>The due-on-arrival ring's size: a whole batch of the largest the switch sends. Past it, requests due on
    /// arrival wait in the priority queue instead (due at once all the same).</summary>
    private const int DueNowSlots = ExchangeBatch.MaxElements;

    /// <summary>Answers per flush at most: under a flood the peer still sees regular flushes.</summary>
    private const int MaxBatch = 4096;

    private readonly SimulatedBank _bank;
    private readonly PriorityQueue<Pending, long> _queue; // Priority: due time in Stopwatch ticks.
    private readonly Pending[] _dueNow;                    // Under _gate: a ring of the requests due on arrival, in arrival order.
    private int _dueNowHead, _dueNowCount;                 // Under _gate. _queue.Count + _dueNowCount never exceeds _maxPending.
    private readonly Lock _gate = new();
    private readonly int _maxPending;                      // The queue's bound: the reader stops reading at it.
    private readonly SemaphoreSlim _spaceFreed = new(0, 1); // Released once by the writer for a reader waiting for room.
    private bool _readerWaitsForRoom;                      // Under _gate: set by the reader as it waits, cleared by the writer's release.
    private readonly WakeSignal _wake = new(continueInline: true); // The writer's pass runs on the thread that wakes it.
    private int _wakeRequested;                            // 1 while a wake is pending: at most one Wake per writer pass.
    private volatile bool _readerDone;
    private long _plannedWakeTicks = long.MinValue;        // Under _gate: when the writer will look next (MinValue: it is busy and will rescan).
    private readonly int _requestBatchMax;                 // What this endpoint reads per message (1: the single form).
    private readonly int _answerBatchMax;                  // What the switch reads per message (1: the single form).
    private RpcException? _refusal;                        // A malformed message: the stream ends with it once answers due are written.

    /// <summary>A request waiting to be executed, or an answer decided on arrival (Ready: invalid, busy). Flat fields, held
    /// in the queue's pre-sized array: nothing allocated per request while it waits.</summary>
    private readonly record struct Pending(BankRequestFields Request, BankAnswer? Ready);

    private ExchangeSession(SimulatedBank bank, int requestBatchMax, int answerBatchMax)
    {
        _bank = bank;
        _requestBatchMax = requestBatchMax;
        _answerBatchMax = answerBatchMax;
        int maxPending = bank.Options.MaxPendingPerStream;
        _queue = new PriorityQueue<Pending, long>(maxPending);
        _dueNow = new Pending[Math.Min(maxPending, DueNowSlots)];
        _maxPending = maxPending;
    }

    public static async ValueTask RunAsync(SimulatedBank bank, ServerRequestStream<BankRequests> requests,
        ServerResponseStream<BankResponse> responses, ServerCallContext context)
    {
        int requestBatchMax = bank.Options.DeclaredBatchMax;
        // The switch's declaration; one the bank cannot read is taken as none (answers go singly).
        int answerBatchMax = requestBatchMax <= 1 ? 1
            : Math.Min(ExchangeBatch.ParseDeclared(context.RequestHeaders.GetValue(ExchangeBatch.SwitchBatchMaxHeader)) ?? 1, MaxBatch);
        if (requestBatchMax > 1) context.ResponseHeaders.Add(ExchangeBatch.BankBatchMaxHeader, ExchangeBatch.Format(requestBatchMax));
        var session = new ExchangeSession(bank, requestBatchMax, answerBatchMax);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, bank.Stopping);
        try
        {
            // Either loop failing ends the other: a dead writer must not leave the reader admitting work.
            await Task.WhenAll(Guard(session.ReadLoopAsync(requests, cts.Token), cts),
                Guard(session.WriteLoopAsync(responses, cts.Token), cts)).ConfigureAwait(false);
            if (session._refusal is { } refusal) throw refusal;
        }
        catch (OperationCanceledException) when (bank.Stopping.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
        {
            throw new RpcException(StatusCode.Unavailable, "The bank simulator is shutting down.");
        }
        finally
        {
            int left;
            lock (session._gate) left = session.PendingCount;
            if (left > 0) bank.Ledger.CountAbandoned(left); // Never executed: the switch's query will find nothing.
        }
    }

    private static async Task Guard(Task loop, CancellationTokenSource cts)
    {
        try
        {
            await loop.ConfigureAwait(false);
        }
        catch
        {
            cts.Cancel();
            throw;
        }
    }

    private async Task ReadLoopAsync(ServerRequestStream<BankRequests> requests, CancellationToken token)
    {
        var admitted = new (Pending Pending, long DueTicks)[_requestBatchMax];
        while (await requests.ReadAsync(token).ConfigureAwait(false) is { } message)
        {
            if (message.Problem(_requestBatchMax) is { } refusal)
            {
                message.Release();
                _bank.Ledger.CountInvalid();
                _refusal = refusal; // Nothing of it is taken; what was taken before is still answered.
                break;
            }
            // One message, one timestamp: a batch's requests are due together and answered together.
            long now = Stopwatch.GetTimestamp();
            DateTime nowUtc = DateTime.UtcNow;
            int count = 0;
            if (message.BatchCount == 0)
            {
                if (TryAdmit(message.Single, now, nowUtc, out admitted[0].Pending, out admitted[0].DueTicks)) count = 1;
            }
            else
            {
                foreach (ref readonly BankRequestFields request in message.Batch.AsSpan())
                {
                    if (TryAdmit(request, now, nowUtc, out admitted[count].Pending, out admitted[count].DueTicks)) count++;
                }
            }
            message.Release(); // Its fields are copied into the admitted ones.
            // The message's requests go in under one lock, as many as the bound leaves room for; with none left the reader
            // stops reading (HTTP/2 flow control then pushes back on the switch) until the writer has taken some out.
            // (A counting semaphore here took a lock per request: 6.7% of the switch's profile at the design peak.)
            int queued = 0;
            while (true)
            {
                bool wake = false;
                bool full;
                lock (_gate)
                {
                    int take = Math.Min(count - queued, _maxPending - PendingCount);
                    if (take < 0) throw new InvalidOperationException($"exchange session: {PendingCount} queued, over the bound of {_maxPending}");
                    for (int i = queued; i < queued + take; i++)
                    {
                        ref (Pending Pending, long DueTicks) one = ref admitted[i];
                        if (one.DueTicks <= now && _dueNowCount < _dueNow.Length) EnqueueDueNow(one.Pending);
                        else _queue.Enqueue(one.Pending, one.DueTicks);
                        wake |= one.DueTicks < _plannedWakeTicks; // Only an answer due before the writer's next look needs it awake.
                    }
                    queued += take;
                    full = queued < count;
                    _readerWaitsForRoom = full;
                }
                if (wake) Wake();
                if (!full) break;
                await _spaceFreed.WaitAsync(token).ConfigureAwait(false);
            }
            Array.Clear(admitted, 0, count);
        }
        _readerDone = true;
        Wake();
    }

    /// <summary>Requests waiting, in both queues. Under _gate.</summary>
    private int PendingCount => _queue.Count + _dueNowCount;

    /// <summary>Under _gate, with room in the ring and under the bound (the caller checked both).</summary>
    private void EnqueueDueNow(in Pending pending)
    {
        Debug.Assert(PendingCount < _maxPending && _dueNowCount < _dueNow.Length);
        int tail = _dueNowHead + _dueNowCount;
        if (tail >= _dueNow.Length) tail -= _dueNow.Length;
        _dueNow[tail] = pending;
        _dueNowCount++;
    }

    /// <summary>False when the request is past its deadline on arrival: not executed, not answered.</summary>
    private bool TryAdmit(in BankRequestFields request, long now, DateTime nowUtc, out Pending pending, out long dueTicks)
    {
        dueTicks = now;
        BankOperation operation = request.Operation;
        if (SimulatedBank.Problem(request, operation) is not null)
        {
            _bank.Ledger.CountInvalid();
            pending = new Pending(request, SimulatedBank.Failed(request.TransactionId, operation, BankReasons.InvalidRequest));
            return true;
        }
        if (IsPastDeadline(request, nowUtc))
        {
            _bank.Ledger.CountRefusedLate();
            pending = default;
            return false;
        }
        if (!_bank.TryAdmit(request, operation, now, out long delayTicks, out BankAnswer? busy))
        {
            pending = new Pending(request, busy);
            return true;
        }
        dueTicks = now + delayTicks;
        pending = new Pending(request, null);
        return true;
    }

    private static bool IsPastDeadline(in BankRequestFields request, DateTime nowUtc) =>
        request.DeadlineUnixUs != 0 && SimulatedBank.UnixMicros(nowUtc) >= request.DeadlineUnixUs;

    /// <summary>Runs the writer's pass here if it waits (see the type's summary): never under <see cref="_gate"/>.</summary>
    private void Wake()
    {
        if (Interlocked.Exchange(ref _wakeRequested, 1) == 0) _wake.Wake();
    }

    private async Task WriteLoopAsync(ServerResponseStream<BankResponse> responses, CancellationToken token)
    {
        using WakeSignal wake = _wake; // Its timer goes with the writer.
        // The end of the stream or the bank's stop wakes a waiting writer, which then sees the token and ends.
        using CancellationTokenRegistration wakeOnCancel = token.UnsafeRegister(static s => ((ExchangeSession)s!).Wake(), this);
        var batch = new Pending[MaxBatch];
        // The answers of one message, encoded from their fields (no message objects): up to what the switch reads a message.
        var answers = new BankAnswer[_answerBatchMax];
        var elementBytes = new int[_answerBatchMax];
        while (true)
        {
            // Read "done" before scanning: every enqueue happened before it, so an empty queue now is final.
            bool readerDone = _readerDone;
            Volatile.Write(ref _wakeRequested, 0);
            int count = 0;
            long waitTicks = -1;
            bool roomFreed;
            lock (_gate)
            {
                long now = Stopwatch.GetTimestamp();
                while (count < MaxBatch && _dueNowCount > 0)
                {
                    batch[count++] = _dueNow[_dueNowHead];
                    _dueNow[_dueNowHead] = default;
                    if (++_dueNowHead == _dueNow.Length) _dueNowHead = 0;
                    _dueNowCount--;
                }
                while (count < MaxBatch && _queue.TryPeek(out Pending next, out long due) && due <= now)
                {
                    _queue.Dequeue();
                    batch[count++] = next;
                }
                long nextDue = long.MaxValue;
                if (_dueNowCount > 0) nextDue = now; // More than a batch was due (count is MaxBatch): the writer comes back at once.
                else if (_queue.TryPeek(out _, out long queuedDue)) nextDue = queuedDue;
                if (nextDue != long.MaxValue) waitTicks = nextDue - now;
                _plannedWakeTicks = count > 0 ? long.MinValue : nextDue;
                roomFreed = count > 0 && _readerWaitsForRoom;
                if (roomFreed) _readerWaitsForRoom = false; // One release per wait: the semaphore never exceeds 1.
            }
            if (roomFreed) _spaceFreed.Release();

            if (count > 0)
            {
                int written = 0;
                int held = 0;
                DateTime nowUtc = DateTime.UtcNow;
                for (int i = 0; i < count; i++)
                {
                    BankAnswer? answer = Answer(batch[i], nowUtc);
                    batch[i] = default;
                    if (answer is null) continue;
                    answers[held++] = answer.Value;
                    if (held < answers.Length) continue;
                    await WriteAsync(responses, answers, held, elementBytes, token).ConfigureAwait(false);
                    held = 0;
                    written++;
                }
                if (held > 0)
                {
                    await WriteAsync(responses, answers, held, elementBytes, token).ConfigureAwait(false);
                    written++;
                }
                if (written > 0) await responses.FlushAsync(token).ConfigureAwait(false); // One flush per batch.
                continue; // More may be due already.
            }

            if (waitTicks < 0 && readerDone) return; // Half-closed and every answer written.
            int waitMs = waitTicks < 0 ? Timeout.Infinite : (int)Math.Clamp((waitTicks * 1000 + Stopwatch.Frequency - 1) / Stopwatch.Frequency, 1, int.MaxValue);
            await _wake.WaitAsync(waitMs).ConfigureAwait(false);
            token.ThrowIfCancellationRequested();
        }
    }

    /// <summary>One message: the batch form when the switch reads batches (however many are ready), else a single answer.
    /// Buffered only (the encoder is done with once this completes).</summary>
    private static ValueTask WriteAsync(ServerResponseStream<BankResponse> responses, BankAnswer[] answers, int count, int[] elementBytes,
        CancellationToken token) =>
        responses.WriteEncodedAsync(new BatchFormEncoder<BankAnswer, BankResponseFields>(answers, 0, count, batch: answers.Length > 1, elementBytes), token);

    private BankAnswer? Answer(in Pending pending, DateTime nowUtc)
    {
        if (pending.Ready is { } ready) return ready;
        BankRequestFields request = pending.Request;
        if (IsPastDeadline(request, nowUtc))
        {
            _bank.Ledger.CountRefusedLate(); // Deadlines are sacred: the switch may already have called it failed.
            return null;
        }
        return _bank.Execute(request, request.Operation, nowUtc);
    }
}
