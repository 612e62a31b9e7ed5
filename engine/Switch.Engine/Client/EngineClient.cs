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
    private bool TryClaim(out long sequence)
    {
        if (_engine.Fault is { } fault) throw new EngineStoppedException(fault);
        try
        {
            return _engine.TryClaim(out sequence);
        }
        catch (RingHaltedException halted)
        {
            throw new EngineStoppedException(_engine.Fault ?? halted);
        }
    }

    /// <summary>One look for a free slot; throws once the engine stopped or the wait is over.</summary>
    private bool TryClaimBefore(long deadlineMs, out long sequence)
    {
        if (TryClaim(out sequence)) return true;
        if (Environment.TickCount64 >= deadlineMs) throw new EngineBusyException(FullRingWaitMs);
        return false;
    }

    private void FillAndPublish<TFill>(long sequence, ref TFill fill, long correlationId) where TFill : struct, IInputFill
    {
        ref InputEvent slot = ref _engine.SlotUnreset(sequence);
        bool filled = false;
        try
        {
            fill.Fill(ref slot, correlationId);
            if (slot.Kind is EventKind.None or EventKind.Genesis or EventKind.Void or EventKind.Nudge)
            {
                throw new InvalidOperationException($"the fill left kind {slot.Kind}, not an input (use a Prepare method)");
            }
            filled = true;
        }
        catch (Exception e)
        {
            throw new InputFillException(typeof(TFill).Name, e);
        }
        finally
        {
            if (!filled) slot.PrepareVoid();
            _engine.Publish(sequence);
        }
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
