using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Ring;

namespace Switch.Engine.Client;

/// <summary>
/// The one way into the engine for adapters: claims a slot, fills it, publishes it, and routes the engine's answers
/// back to whoever waits for them (<see cref="Answers"/>: institution calls, operator commands, clearing closes).
/// <para>Publish is guaranteed once a slot is claimed: the multi-producer ring never passes an unpublished slot, so a
/// fill that throws would stall the engine for good. Such a slot is published as <see cref="EventKind.Void"/>
/// (never journaled, never applied) and the caller gets <see cref="InputFillException"/>.</para>
/// <para>Full ring, one policy for every producer: retry with a short spin, then 1 ms pauses (awaited by async callers), for at most
/// <see cref="FullRingWaitMs"/>, then <see cref="EngineBusyException"/> (ENGINE_BUSY). A full ring is either a short
/// stall behind the journal's fsync, which the wait absorbs, or an engine that cannot keep up, where waiting longer only
/// piles up callers and their memory: they are told at once to back off. Never failing at once (an fsync's stall would
/// refuse a burst) and never waiting without bound (a stuck disk would hang every caller with no error).</para>
/// </summary>
public sealed class EngineClient
{
    /// <summary>How long a producer waits for a free slot before ENGINE_BUSY: several fsyncs of a busy disk, and well
    /// within a client's usual deadline.</summary>
    public const int DefaultFullRingWaitMs = 1_000;
    public const int MaxFullRingWaitMs = 10_000;

    private readonly SwitchEngine _engine;
    private readonly UnaryAnswerPool _unaryAnswers;

    /// <param name="answers">The router the engine's output handler routes answers with (made before the engine runs);
    /// a new one if null.</param>
    public EngineClient(SwitchEngine engine, AnswerRouter? answers = null, int fullRingWaitMs = DefaultFullRingWaitMs)
    {
        Answers = answers ?? new AnswerRouter();
        _unaryAnswers = new UnaryAnswerPool(Answers);
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentOutOfRangeException.ThrowIfLessThan(fullRingWaitMs, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(fullRingWaitMs, MaxFullRingWaitMs);
        _engine = engine;
        FullRingWaitMs = fullRingWaitMs;
    }

    public int FullRingWaitMs { get; }

    public SwitchEngine Engine => _engine;

    /// <summary>Matches the engine's answers to the callers waiting for them, by correlation id.</summary>
    public AnswerRouter Answers { get; }

    /// <summary>Claims a slot (see the full-ring policy), fills it and publishes it: always, once claimed.</summary>
    /// <exception cref="EngineBusyException">The ring stayed full for <see cref="FullRingWaitMs"/>; nothing was published.</exception>
    /// <exception cref="EngineStoppedException">The engine stopped on a fault; nothing was published.</exception>
    /// <exception cref="InputFillException">The fill threw: a void slot was published, nothing applied.</exception>
    public void Publish<TFill>(ref TFill fill, long correlationId = 0) where TFill : struct, IInputFill
    {
        if (!TryClaim(out long sequence))
        {
            long deadlineMs = Environment.TickCount64 + FullRingWaitMs;
            var spin = new SpinWait();
            while (!TryClaimBefore(deadlineMs, out sequence)) spin.SpinOnce(sleep1Threshold: 20);
        }
        FillAndPublish(sequence, ref fill, correlationId);
    }

    /// <summary><see cref="Publish"/> for async callers: the same policy, its pauses awaited rather than slept.</summary>
    public ValueTask PublishAsync<TFill>(TFill fill, long correlationId, CancellationToken cancellation) where TFill : struct, IInputFill
    {
        if (!TryClaim(out long sequence)) return PublishWhenFreeAsync(fill, correlationId, cancellation);
        FillAndPublish(sequence, ref fill, correlationId);
        return default;
    }

    private async ValueTask PublishWhenFreeAsync<TFill>(TFill fill, long correlationId, CancellationToken cancellation) where TFill : struct, IInputFill
    {
        long deadlineMs = Environment.TickCount64 + FullRingWaitMs;
        long sequence;
        while (!TryClaimBefore(deadlineMs, out sequence)) await Task.Delay(1, cancellation);
        FillAndPublish(sequence, ref fill, correlationId);
    }

    /// <summary>One look for a free slot. An engine with a fault takes nothing more, even in the instant before its
    /// ring is halted; a halted ring is the engine stopped too.</summary>
    private bool TryClaim(out long sequence) => TryClaim(1, out sequence);

    /// <summary>One look for <paramref name="count"/> consecutive free slots (the highest in <paramref name="high"/>), under
    /// the same rules as a single one.</summary>
    private bool TryClaim(int count, out long high)
    {
        if (_engine.Fault is { } fault) throw new EngineStoppedException(fault);
        try
        {
            return _engine.TryClaim(count, out high);
        }
        catch (RingHaltedException halted)
        {
            throw new EngineStoppedException(_engine.Fault ?? halted);
        }
    }

    /// <summary>One look for a free slot; throws once the engine stopped or the wait is over.</summary>
    private bool TryClaimBefore(long deadlineMs, out long sequence)
    {
        int one = 1;
        return TryClaimUpToBefore(deadlineMs, ref one, out sequence);
    }

    /// <summary><see cref="TryClaimUpTo"/>; throws once the engine stopped or the wait is over.</summary>
    private bool TryClaimUpToBefore(long deadlineMs, ref int count, out long high)
    {
        if (TryClaimUpTo(ref count, out high)) return true;
        if (Environment.TickCount64 >= deadlineMs) throw new EngineBusyException(FullRingWaitMs);
        return false;
    }

    private void FillAndPublish<TFill>(long sequence, ref TFill fill, long correlationId) where TFill : struct, IInputFill
    {
        InputFillException? failed = null;
        try
        {
            failed = FillSlot(ref _engine.SlotUnreset(sequence), ref fill, correlationId, typeof(TFill));
        }
        finally
        {
            _engine.Publish(sequence);
        }
        if (failed is not null) throw failed;
    }

    /// <summary>Fills one claimed slot; a fill that throws or leaves no input leaves the slot void and says why (the slot is
    /// published either way: see the type's summary).</summary>
    /// <param name="fillType">The caller's fill type, named in the error.</param>
    private static InputFillException? FillSlot<TFill>(ref InputEvent slot, ref TFill fill, long correlationId, Type fillType) where TFill : struct, IInputFill
    {
        try
        {
            fill.Fill(ref slot, correlationId);
            if (slot.Kind is EventKind.None or EventKind.Genesis or EventKind.Void or EventKind.Nudge)
            {
                throw new InvalidOperationException($"the fill left kind {slot.Kind}, not an input (use a Prepare method)");
            }
            return null;
        }
        catch (Exception e)
        {
            slot.PrepareVoid();
            return new InputFillException(fillType.Name, e);
        }
    }

    /// <summary>Slots one batch claims at most: a large batch goes in several claims, so one producer never holds a
    /// large part of the ring unpublished while the others wait.</summary>
    public const int MaxBatchClaim = 1_024;

    /// <summary>
    /// Publishes <paramref name="count"/> inputs that nobody awaits (bank results, say), <paramref name="fill"/> writing input
    /// i into its slot: one claim, one clock read and one publish per up to
    /// <see cref="MaxBatchClaim"/> inputs instead of one per input. The same full-ring policy as <see cref="Publish"/>.
    /// </summary>
    /// <returns>How many were published; fewer than <paramref name="count"/> only when the ring stayed full or the engine
    /// stopped part way (<paramref name="refusal"/> says why, and nothing from that input on was published).</returns>
    /// <exception cref="InputFillException">A fill threw: its slot went out void, the others as filled.</exception>
    public int PublishBatch<TFill>(ref TFill fill, int count, out Exception? refusal) where TFill : struct, IInputBatchFill
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var byIndex = new ByIndex<TFill>(fill);
        InputFillException? failed = null;
        int published = 0;
        refusal = null;
        while (published < count)
        {
            int n = Math.Min(count - published, ClaimMax);
            long high;
            try
            {
                high = ClaimRange(ref n);
            }
            catch (Exception e) when (e is EngineBusyException or EngineStoppedException or Replication.ReplicationRefusedException)
            {
                refusal = e;
                break;
            }
            InputFillException? fault = FillAndPublishRange(ref byIndex, high - n + 1, high, published, voidAfterFailure: false);
            failed ??= fault; // every range filled and published: a failure voids its own slot only
            published += n;
        }
        if (failed is not null) throw failed;
        return published;
    }

    /// <summary>
    /// Publishes <paramref name="count"/> inputs of one caller that awaits their answers (a <c>Transact</c> stream's message:
    /// the fill stamps each with the caller's correlation id), <paramref name="fill"/> writing input i into its slot: one
    /// claim, one clock read and one publish per up to <see cref="MaxBatchClaim"/> inputs. The same full-ring policy as
    /// <see cref="PublishAsync"/>, its pauses awaited. Inputs go in order and none after a failure: a fill that throws
    /// voids its slot and the rest of its claim, and nothing further is claimed, as if the inputs were published one by one
    /// and the first failure ended the caller.
    /// </summary>
    /// <exception cref="EngineBusyException">The ring stayed full for <see cref="FullRingWaitMs"/>; the inputs before went in.</exception>
    /// <exception cref="EngineStoppedException">The engine stopped; the inputs before went in.</exception>
    /// <exception cref="InputFillException">A fill threw: its slot and those after it in its claim went out void.</exception>
    public async ValueTask PublishRangeAsync<TFill>(TFill fill, int count, CancellationToken cancellation) where TFill : struct, IInputBatchFill
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var byIndex = new ByIndex<TFill>(fill);
        int published = 0;
        while (published < count)
        {
            int n = Math.Min(count - published, ClaimMax);
            if (!TryClaimUpTo(ref n, out long high))
            {
                long deadlineMs = Environment.TickCount64 + FullRingWaitMs;
                do
                {
                    await Task.Delay(1, cancellation);
                    n = Math.Min(count - published, ClaimMax);
                }
                while (!TryClaimUpToBefore(deadlineMs, ref n, out high));
            }
            InputFillException? failed = FillAndPublishRange(ref byIndex, high - n + 1, high, published, voidAfterFailure: true);
            if (failed is not null) throw failed;
            published += n;
        }
    }

    /// <summary>Slots one claim of a batch takes at most: <see cref="MaxBatchClaim"/>, or a quarter of a small ring.</summary>
    private int ClaimMax => Math.Min(MaxBatchClaim, Math.Max(1, _engine.InputCapacity / 4));

    /// <summary>Fills the claimed slots <paramref name="low"/> to <paramref name="high"/> with inputs from
    /// <paramref name="firstIndex"/> on and publishes them, always. The first failure is returned; with
    /// <paramref name="voidAfterFailure"/> every slot after it goes out void too.</summary>
    private InputFillException? FillAndPublishRange<TFill>(ref ByIndex<TFill> byIndex, long low, long high, int firstIndex, bool voidAfterFailure)
        where TFill : struct, IInputBatchFill
    {
        InputFillException? failed = null;
        try
        {
            for (long s = low; s <= high; s++)
            {
                if (failed is not null && voidAfterFailure)
                {
                    _engine.SlotUnreset(s).PrepareVoid();
                    continue;
                }
                InputFillException? fault = FillSlot(ref _engine.SlotUnreset(s), ref byIndex, firstIndex + (s - low), typeof(TFill));
                failed ??= fault;
            }
        }
        finally
        {
            _engine.Publish(low, high);
        }
        return failed;
    }

    /// <summary>A batch fill seen as a single one whose "correlation id" is the input's index in the batch.</summary>
    private struct ByIndex<TFill>(TFill fill) : IInputFill where TFill : struct, IInputBatchFill
    {
        private TFill _fill = fill;
        public void Fill(ref InputEvent slot, long index) => _fill.Fill(ref slot, (int)index);
    }

    /// <summary>Claims up to <paramref name="count"/> consecutive slots under the full-ring policy (at least one); returns
    /// the highest and sets <paramref name="count"/> to how many. When the ring lacks room for all, it takes half, and so
    /// on down to one: under back-pressure a batch goes in as slots free up, never waiting behind single claims for a
    /// run of free slots they keep taking.</summary>
    private long ClaimRange(ref int count)
    {
        long deadlineMs = 0;
        var spin = new SpinWait();
        int wanted = count;
        while (true)
        {
            count = wanted;
            if (TryClaimUpTo(ref count, out long high)) return high;
            if (deadlineMs == 0) deadlineMs = Environment.TickCount64 + FullRingWaitMs;
            else if (Environment.TickCount64 >= deadlineMs) throw new EngineBusyException(FullRingWaitMs);
            spin.SpinOnce(sleep1Threshold: 20);
        }
    }

    /// <summary>One look for <paramref name="count"/> consecutive free slots, then half as many, down to one; true with
    /// <paramref name="count"/> set to how many were claimed (the highest in <paramref name="high"/>).</summary>
    private bool TryClaimUpTo(ref int count, out long high)
    {
        for (int n = count; n >= 1; n /= 2)
        {
            if (TryClaim(n, out high))
            {
                count = n;
                return true;
            }
        }
        high = 0;
        return false;
    }

    /// <summary>Publishes one input and waits for its answer: register, publish, await, unregister. Allocates nothing on
    /// the way when the ring has room (the wait is a pooled <see cref="UnaryAnswer"/>); await the result exactly once.</summary>
    public ValueTask<OutputEvent> CallAsync<TFill>(TFill fill, CancellationToken cancellation) where TFill : struct, IInputFill
    {
        UnaryAnswer answer = _unaryAnswers.Rent();
        long correlationId = Answers.Register(answer);
        answer.Arm(correlationId, cancellation);
        ValueTask<OutputEvent> wait = answer.Wait;
        ValueTask published;
        try
        {
            published = PublishAsync(fill, correlationId, cancellation);
        }
        catch (Exception e)
        {
            answer.Settle(e); // nothing published: the wait ends with why, and its awaiting recycles the answer
            return wait;
        }
        return published.IsCompletedSuccessfully ? wait : AfterPublishAsync(published, answer, wait);
    }

    /// <summary>The full ring's slow path: the publish is awaited first; if it fails, the wait ends with why.</summary>
    private static async ValueTask<OutputEvent> AfterPublishAsync(ValueTask published, UnaryAnswer answer, ValueTask<OutputEvent> wait)
    {
        try
        {
            await published;
        }
        catch (Exception e)
        {
            answer.Settle(e);
        }
        return await wait;
    }

    /// <summary>Unary answer objects kept for reuse (a figure for tests and metrics).</summary>
    public int RetainedUnaryAnswers => _unaryAnswers.Retained;
}

/// <summary>The input ring stayed full: the caller answers RESOURCE_EXHAUSTED and retries with back-off.</summary>
public sealed class EngineBusyException(int waitedMs)
    : Exception($"ENGINE_BUSY: the switch's input queue stayed full for {waitedMs} ms; retry with back-off");

/// <summary>The engine stopped on a fault and accepts nothing more: the caller answers UNAVAILABLE.</summary>
public sealed class EngineStoppedException(Exception fault)
    : Exception($"ENGINE_STOPPED: the switch engine has stopped ({fault.GetType().Name}: {fault.Message})", fault);

/// <summary>A fill threw after its slot was claimed: the slot went out void, nothing was applied or journaled.</summary>
public sealed class InputFillException(string fill, Exception inner)
    : Exception($"INPUT_FILL_FAILED: {fill}: {inner.GetType().Name}: {inner.Message}; nothing was applied", inner);
