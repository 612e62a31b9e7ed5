using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Switch.Ring;

/// <summary>
/// The coordination half of a ring (claims, publication, gating, halt), kept apart from the
/// generic slot array so barriers call it directly, with no interface dispatch.
/// </summary>
internal sealed class Sequencer
{
    private readonly int _bufferSize;
    private readonly int _indexMask;
    private readonly int _indexShift;
    private readonly bool _multiProducer;
    private readonly IWaitStrategy _waitStrategy;
    private readonly bool _signalOnPublish;

    // Single producer: the highest published sequence. Many producers: the highest claimed one
    // (claims are a CAS on it); what is published is then in _availableRounds.
    private readonly Sequence _cursor = new();

    // Many producers: the gating minimum last seen, shared so producers rarely scan the consumers.
    private readonly Sequence _gatingCache = new();

    // Single producer: producer-private state, padded away from what consumers read.
    private readonly SingleProducerState _single = new();

    // Many producers: per slot, the round (sequence >> indexShift) last published into it, so a
    // consumer can tell a published slot from a claimed-but-unpublished one without a lock.
    private readonly int[] _availableRounds;

    private Sequence[] _gatingSequences = [];
    private readonly object _gatingLock = new();

    private volatile bool _halted;
    private Exception? _haltReason;

    // Who a consumer's progress must wake: for each wait strategy some barrier behind other consumers sleeps on (the
    // ring's own included), the consumers' sequences such barriers follow. A consumer's progress signals only the
    // strategies that follow it: the journaler's commit wakes the logic, never the journaler itself, and the logic's
    // progress wakes nobody. Copied on write; read without a lock.
    private ProgressWaiter[] _progressWaiters = [];
    private readonly object _progressLock = new();

    internal Sequencer(int bufferSize, IWaitStrategy waitStrategy, bool multiProducer)
    {
        ArgumentNullException.ThrowIfNull(waitStrategy);
        if (bufferSize < 1 || !int.IsPow2(bufferSize))
        {
            throw new ArgumentOutOfRangeException(nameof(bufferSize), bufferSize,
                "The ring size must be a positive power of two (slots are found by masking).");
        }
        _bufferSize = bufferSize;
        _indexMask = bufferSize - 1;
        _indexShift = int.Log2(bufferSize);
        _multiProducer = multiProducer;
        _waitStrategy = waitStrategy;
        _signalOnPublish = waitStrategy.RequiresSignal;
        _availableRounds = multiProducer ? new int[bufferSize] : [];
        // No round is -1, so nothing reads as published before its first publish.
        _availableRounds.AsSpan().Fill(-1);
    }

    internal int BufferSize => _bufferSize;
    internal bool IsMultiProducer => _multiProducer;
    internal IWaitStrategy WaitStrategy => _waitStrategy;

    /// <summary>A barrier that sleeps on <paramref name="strategy"/> follows <paramref name="dependents"/>: their progress must signal it.</summary>
    internal void AddProgressWaiter(IWaitStrategy strategy, Sequence[] dependents)
    {
        if (!strategy.RequiresSignal || dependents.Length == 0)
        {
            return;
        }
        lock (_progressLock)
        {
            ProgressWaiter[] waiters = _progressWaiters;
            int index = Array.FindIndex(waiters, w => ReferenceEquals(w.Strategy, strategy));
            ProgressWaiter[] next = index < 0 ? [.. waiters, new ProgressWaiter(strategy, [])] : [.. waiters];
            if (index < 0) index = next.Length - 1;
            // Sequence keeps reference equality: a consumer followed by two barriers is listed once.
            next[index] = new ProgressWaiter(strategy, [.. next[index].Followed.Union(dependents)]);
            Volatile.Write(ref _progressWaiters, next);
        }
    }

    /// <summary>After <paramref name="progressed"/> moved: wakes the strategies of barriers that follow it, each once.</summary>
    internal void SignalProgress(Sequence progressed)
    {
        foreach (ProgressWaiter waiter in Volatile.Read(ref _progressWaiters))
        {
            if (Array.IndexOf(waiter.Followed, progressed) >= 0)
            {
                waiter.Strategy.Signal();
            }
        }
    }

    /// <summary>Wakes consumers sleeping on the ring's own strategy (after a publish whose signal was deferred).</summary>
    internal void SignalPublished()
    {
        if (_signalOnPublish)
        {
            _waitStrategy.Signal();
        }
    }
    internal long CursorValue => _cursor.Value;
    internal bool IsHalted => _halted;
    internal Exception? HaltReason => Volatile.Read(ref _haltReason);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void ThrowIfHalted()
    {
        if (_halted)
        {
            ThrowHalted();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowHalted() => throw new RingHaltedException(Volatile.Read(ref _haltReason)!);

    internal void Halt(Exception reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        // The first reason wins: it is the cause, later ones are consequences.
        Interlocked.CompareExchange(ref _haltReason, reason, null);
        _halted = true;
        // Sleeping consumers must wake to see it; spinning producers and consumers poll the flag.
        _waitStrategy.Signal();
        foreach (ProgressWaiter waiter in Volatile.Read(ref _progressWaiters))
        {
            waiter.Strategy.Signal();
        }
    }

    // ---- claiming ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CheckClaimSize(int n)
    {
        if ((uint)(n - 1) >= (uint)_bufferSize)
        {
            ThrowClaimSize(n);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowClaimSize(int n) => throw new ArgumentOutOfRangeException(nameof(n), n,
        $"A claim must be for 1 to {_bufferSize} (the ring size) slots.");

    internal long Next(int n)
    {
        CheckClaimSize(n);
        ThrowIfHalted();
        return _multiProducer ? NextMulti(n) : NextSingle(n);
    }

    internal bool TryNext(int n, out long highSequence)
    {
        CheckClaimSize(n);
        ThrowIfHalted();
        return _multiProducer ? TryNextMulti(n, out highSequence) : TryNextSingle(n, out highSequence);
    }

    private long NextSingle(int n)
    {
        SingleProducerState state = _single;
        long current = state.ClaimedSequence;
        long high = current + n;
        // The slot we are about to take was last used by sequence (high - size): every gating
        // consumer must be past it.
        long wrapPoint = high - _bufferSize;
        long cachedGatingMinimum = state.CachedGatingMinimum;
        if (wrapPoint > cachedGatingMinimum || cachedGatingMinimum > current)
        {
            long gatingMinimum;
            SpinWait spinner = default;
            bool signalled = false;
            while (wrapPoint > (gatingMinimum = GatingMinimum(current)))
            {
                // The consumers we wait for may sleep on a publish whose signal was deferred: wake them once.
                if (!signalled)
                {
                    SignalPublished();
                    signalled = true;
                }
                // Back pressure: the ring never grows; wait for the slowest consumer, or a halt.
                ThrowIfHalted();
                spinner.SpinOnce(sleep1Threshold: -1);
            }
            // A faulting consumer halts the ring before it moves its sequence, so a producer the
            // move released must still see the halt.
            ThrowIfHalted();
            state.CachedGatingMinimum = gatingMinimum;
        }
        state.ClaimedSequence = high;
        return high;
    }

    private bool TryNextSingle(int n, out long highSequence)
    {
        SingleProducerState state = _single;
        long current = state.ClaimedSequence;
        long high = current + n;
        long wrapPoint = high - _bufferSize;
        long cachedGatingMinimum = state.CachedGatingMinimum;
        if (wrapPoint > cachedGatingMinimum || cachedGatingMinimum > current)
        {
            long gatingMinimum = GatingMinimum(current);
            state.CachedGatingMinimum = gatingMinimum;
            if (wrapPoint > gatingMinimum)
            {
                highSequence = default;
                return false;
            }
        }
        state.ClaimedSequence = high;
        highSequence = high;
        return true;
    }

    private long NextMulti(int n)
    {
        SpinWait spinner = default;
        bool waited = false;
        while (true)
        {
            long current = _cursor.Value;
            long high = current + n;
            if (HasCapacityMulti(current, high))
            {
                if (_cursor.CompareAndSet(current, high))
                {
                    if (waited)
                    {
                        // As for one producer: the halt precedes the consumer move that freed us.
                        // The claim is abandoned unpublished, which is harmless on a halted ring.
                        ThrowIfHalted();
                    }
                    return high;
                }
                // Another producer claimed first: retry at once with the new cursor.
                continue;
            }
            // Back pressure: the ring never grows; wait for the slowest consumer, or a halt. The consumers may
            // sleep on a publish whose signal was deferred: wake them once.
            ThrowIfHalted();
            if (!waited)
            {
                SignalPublished();
            }
            waited = true;
            spinner.SpinOnce(sleep1Threshold: -1);
        }
    }

    private bool TryNextMulti(int n, out long highSequence)
    {
        while (true)
        {
            long current = _cursor.Value;
            long high = current + n;
            if (!HasCapacityMulti(current, high))
            {
                highSequence = default;
                return false;
            }
            if (_cursor.CompareAndSet(current, high))
            {
                highSequence = high;
                return true;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool HasCapacityMulti(long current, long high)
    {
        long wrapPoint = high - _bufferSize;
        long cachedGatingMinimum = _gatingCache.Value;
        if (wrapPoint > cachedGatingMinimum || cachedGatingMinimum > current)
        {
            long gatingMinimum = GatingMinimum(current);
            _gatingCache.SetValue(gatingMinimum);
            return wrapPoint <= gatingMinimum;
        }
        return true;
    }

    /// <summary>The slowest gating consumer, or <paramref name="ceiling"/> if all are ahead of it (or none exist).</summary>
    private long GatingMinimum(long ceiling)
    {
        Sequence[] gating = Volatile.Read(ref _gatingSequences);
        long minimum = ceiling;
        for (int i = 0; i < gating.Length; i++)
        {
            long value = gating[i].Value;
            if (value < minimum)
            {
                minimum = value;
            }
        }
        return minimum;
    }

    // ---- publishing ----

    /// <param name="signal">False defers waking sleeping consumers to the producer's next <see cref="SignalPublished"/>
    /// (or signalling publish, or a claim that finds the ring full).</param>
    internal void Publish(long lo, long hi, bool signal)
    {
        // One unsigned compare rejects both hi < lo and a range wider than the ring.
        if ((ulong)(hi - lo) >= (ulong)_bufferSize)
        {
            ThrowPublishRange(lo, hi);
        }

        if (_multiProducer)
        {
            Debug.Assert(hi <= _cursor.Value, "Publishing a sequence that was never claimed.");
            int[] rounds = _availableRounds;
            ref int first = ref MemoryMarshal.GetArrayDataReference(rounds);
            for (long sequence = lo; sequence <= hi; sequence++)
            {
                // Release store: the slot's contents are visible before the flag that publishes them.
                Volatile.Write(ref Unsafe.Add(ref first, (nint)(sequence & _indexMask)), (int)(sequence >> _indexShift));
            }
        }
        else
        {
            Debug.Assert(lo == _cursor.Value + 1, "A single producer publishes in claim order, without gaps.");
            Debug.Assert(hi <= _single.ClaimedSequence, "Publishing a sequence that was never claimed.");
            _cursor.SetValue(hi);
        }

        if (signal && _signalOnPublish)
        {
            _waitStrategy.Signal();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowPublishRange(long lo, long hi) => throw new ArgumentOutOfRangeException(nameof(hi),
        $"Cannot publish [{lo}, {hi}]: the range must be non-empty and at most {_bufferSize} (the ring size) long.");

    /// <summary>
    /// The highest sequence in [<paramref name="lo"/>, <paramref name="available"/>] such that it
    /// and everything from <paramref name="lo"/> up to it are published; lo - 1 if lo is not.
    /// </summary>
    internal long HighestPublished(long lo, long available)
    {
        if (!_multiProducer)
        {
            return available;
        }
        ref int first = ref MemoryMarshal.GetArrayDataReference(_availableRounds);
        for (long sequence = lo; sequence <= available; sequence++)
        {
            if (Volatile.Read(ref Unsafe.Add(ref first, (nint)(sequence & _indexMask))) != (int)(sequence >> _indexShift))
            {
                return sequence - 1;
            }
        }
        return available;
    }

    // ---- gating ----

    internal void AddGatingSequences(Sequence[] sequences)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        lock (_gatingLock)
        {
            long cursor = _cursor.Value;
            foreach (Sequence sequence in sequences)
            {
                ArgumentNullException.ThrowIfNull(sequence, nameof(sequences));
                // A consumer a whole ring behind would read overwritten slots: refuse it loudly.
                if (sequence.Value < cursor - _bufferSize)
                {
                    throw new ArgumentException(
                        $"Gating sequence {sequence.Value} is already lapped by the cursor {cursor}.", nameof(sequences));
                }
            }
            // Copy on write: producers read the array without a lock.
            Volatile.Write(ref _gatingSequences, [.. _gatingSequences, .. sequences]);
        }
    }

    private sealed record ProgressWaiter(IWaitStrategy Strategy, Sequence[] Followed);

    [StructLayout(LayoutKind.Explicit)]
    private sealed class SingleProducerState
    {
        // Padded like Sequence: written on every claim, must not share a line with consumer data.
        [FieldOffset(56)] public long ClaimedSequence = Sequence.InitialValue;
        [FieldOffset(64)] public long CachedGatingMinimum = Sequence.InitialValue;
#pragma warning disable CS0169 // the trailing pad (StructLayout.Size is ignored on classes)
        [FieldOffset(128)] private long _trailingPad;
#pragma warning restore CS0169
    }
}
