using Switch.Engine.Business;
using Switch.Engine.Hashing;
using Switch.Ring;

namespace Switch.Engine.Archive;

/// <summary>One store write the logic hands the archive's writer thread: a transaction that left the table
/// (<see cref="IsPut"/>) or a change to one already archived, and the logic's horizon of remembered orders then; or a
/// snapshot's mark (<see cref="StartsCheckpoint"/>), where the store's checkpoint starts.</summary>
public struct ArchiveWrite
{
    public ScopedKey Order;
    public ulong OrderHash;
    public bool IsPut;
    /// <summary>No write: the store's checkpoint starts here, holding exactly the writes handed before it.</summary>
    public bool StartsCheckpoint;
    public long ForgetBelowId;
    public Transaction Tx;
}

/// <summary>Applies store writes, in hand-over order, on the writer thread.</summary>
public interface IArchiveWriter
{
    void Write(ref ArchiveWrite write);

    /// <summary>A write a few places ahead of the next <see cref="Write"/>, already published: a hint to start its cache
    /// misses now (it changes nothing; the write itself comes later, in order).</summary>
    void Prefetch(in ArchiveWrite ahead);
}

/// <summary>
/// The mechanism that takes an archive's store writes off the logic thread: a pre-allocated single-producer ring
/// (the project's own) drained by one writer thread, and an index of the ring's last lap by order. The writer may lag
/// by up to a lap (the logic waits for room past that), and every write of that lap is still found here, so a reader
/// that looks here first and in the store second sees the same answer however far the writer has got: the logic's
/// decisions never depend on the writer's progress. Claims, publication and look-ups on the logic thread only.
/// </summary>
public sealed class ArchiveHandoff<TWriter> : IDisposable where TWriter : IArchiveWriter
{
    /// <summary>Publication once per this many writes, not per write.</summary>
    private const int PublishEvery = 32;
    /// <summary>How many writes ahead in a published batch the writer starts a write's cache misses: enough to cover one
    /// miss behind the upserts between, as the logic does for its events.</summary>
    private const int PrefetchAheadWrites = 4;
    /// <summary>Writes the writer applies before it says so (its sequence: the logic's room in the ring, and the stall
    /// watchdog's progress). A batch of a whole lap published once at its end made a writer that fell behind (a
    /// preemption) free no room and show no progress until it had applied up to 65,536 writes, hundreds of ms at the
    /// share of a core it gets at the design peak, with the logic waiting for the whole lap when the ring was full.
    /// Publishing costs a store and a look at the ring's waiters per batch.</summary>
    public const int WriterBatchMax = 1_024;
    /// <summary>How long a drain waits for the writer before calling it stuck.</summary>
    private const int DrainTimeoutMs = 30_000;

    private readonly RingBuffer<ArchiveWrite> _ring;
    private readonly BatchEventProcessor<ArchiveWrite, Consumer> _processor;
    private readonly Thread _thread;
    private readonly RecentIndex _index;
    private readonly long _size;
    private long _claimed = -1;
    private long _published = -1;
    private bool _disposed;

    /// <param name="entries">The ring's size (a power of two, above <see cref="PublishEvery"/>): how far the writer may lag.</param>
    public ArchiveHandoff(int entries, TWriter writer, string threadName)
    {
        if (entries <= PublishEvery || (entries & (entries - 1)) != 0) throw new ArgumentOutOfRangeException(nameof(entries), $"a power of two above {PublishEvery}");
        _size = entries;
        // The writer sleeps when idle rather than being woken: a wake-up cost the logic thread about 10% of its time
        // (a contended monitor and a pulse per publication, profiled at 60,000/s). A lap holds far more than arrives
        // while it sleeps.
        _ring = RingBuffer<ArchiveWrite>.CreateSingleProducer(entries, new SleepingWaitStrategy());
        _processor = new BatchEventProcessor<ArchiveWrite, Consumer>(_ring, _ring.NewBarrier(), new Consumer(writer, this), Math.Min(entries, WriterBatchMax));
        _ring.AddGatingSequences(_processor.Sequence);
        _index = new RecentIndex(entries);
        _thread = _processor.Start(threadName);
    }

    /// <summary>Why the writer stopped, if it failed (it applies nothing more). Any thread.</summary>
    public Exception? Fault => _processor.Fault;

    /// <summary>Writes handed over and not yet applied by the writer (published or not).</summary>
    public long Lag => _claimed - _processor.Sequence.Value;

    /// <summary>The last write the writer applied (its sequence), and the published writes it has not: any thread (the
    /// stall watchdog's view; a write claimed and not yet published is the logic's, not the writer's, to move).</summary>
    public long Applied => _processor.Sequence.Value;
    public long PublishedNotApplied => Volatile.Read(ref _published) - _processor.Sequence.Value;

    /// <summary>Hands a write over; waits while the writer is a whole lap behind. Throws if the writer failed.</summary>
    public void Hand(bool isPut, in ScopedKey order, ulong orderHash, long forgetBelowId, in Transaction tx)
    {
        long seq = Claim();
        ref ArchiveWrite slot = ref _ring[seq];
        slot.Order = order;
        slot.OrderHash = orderHash;
        slot.IsPut = isPut;
        slot.StartsCheckpoint = false;
        slot.ForgetBelowId = forgetBelowId;
        slot.Tx = tx;
        _index.Set(this, orderHash, seq);
        _claimed = seq;
        if (_claimed - _published >= PublishEvery) Publish();
    }

    /// <summary>Hands over a mark where the writer starts the store's checkpoint (<see cref="ArchiveWrite.StartsCheckpoint"/>),
    /// published at once: the writer takes it in order, after every write handed before it, and applies
    /// <paramref name="forgetBelowId"/>, the logic's horizon at the mark, first.</summary>
    public void HandCheckpointMark(long forgetBelowId)
    {
        long seq = Claim();
        ref ArchiveWrite slot = ref _ring[seq];
        slot = default; // no order: never in the index
        slot.StartsCheckpoint = true;
        slot.ForgetBelowId = forgetBelowId;
        _claimed = seq;
        Publish();
    }

    private long Claim()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        long seq = _ring.Next();
        if (seq >= _size)
        {
            // The slot's previous write (a lap ago) is applied (the claim waited for it): the store answers for it now.
            // A mark a lap ago has no entry (its sequence is in none): the removal finds nothing.
            _index.Remove(_ring[seq].OrderHash, seq - _size);
        }
        // The next claim's removal, a random cache miss, loads while this write is filled; its hash is in the next slot,
        // read a lap after the logic wrote it (the writer may be reading it too; neither changes it), whose line was
        // asked for one claim ago, as the slot after it's is now.
        if (seq + 1 >= _size) _index.Prefetch(_ring[seq + 1].OrderHash);
        CacheLine.Prefetch(ref _ring[seq + 2].OrderHash);
        return seq;
    }

    /// <summary>A hint that a write of <paramref name="orderHash"/> comes soon: starts loading its index entry.</summary>
    public void PrefetchHand(ulong orderHash) => _index.Prefetch(orderHash);

    /// <summary>The newest write of <paramref name="order"/> in the last lap, if any.</summary>
    public bool TryGet(in ScopedKey order, ulong orderHash, out Transaction tx)
    {
        long seq = _index.Find(this, order, orderHash);
        if (seq < 0)
        {
            tx = default;
            return false;
        }
        tx = _ring[seq].Tx;
        return true;
    }

    /// <summary>Returns once the writer has applied every write handed over (the store then holds them all).</summary>
    public void Drain()
    {
        Publish();
        long deadline = Environment.TickCount64 + DrainTimeoutMs;
        var spin = new SpinWait();
        while (_processor.Sequence.Value < _claimed)
        {
            if (_processor.Fault is { } fault) throw new InvalidOperationException("archive: the writer failed", fault);
            if (Environment.TickCount64 > deadline) throw new InvalidOperationException($"archive: the writer applied nothing past {_processor.Sequence.Value} of {_claimed} in {DrainTimeoutMs} ms");
            spin.SpinOnce();
        }
        if (_processor.Fault is { } late) throw new InvalidOperationException("archive: the writer failed", late);
    }

    private void Publish()
    {
        if (_claimed == _published) return;
        _ring.Publish(_published + 1, _claimed);
        _published = _claimed;
    }

    /// <summary>Applies what was handed over, then stops the writer.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            if (_processor.Fault is null) Drain();
        }
        finally
        {
            _processor.Halt();
            _thread.Join();
        }
    }

    private ref ArchiveWrite At(long seq) => ref _ring[seq];

    /// <summary>The writer thread's handler: each write in order, and the write <see cref="PrefetchAheadWrites"/> places
    /// ahead announced to the writer first when the batch (all published: never a slot the logic may be filling) holds it.</summary>
    private struct Consumer(TWriter writer, ArchiveHandoff<TWriter> handoff) : IEventHandler<ArchiveWrite>
    {
        private long _batchLast = -1;

        public void OnBatchStart(long firstSequence, long lastSequence)
        {
            _batchLast = lastSequence;
            long ahead = Math.Min(lastSequence, firstSequence + PrefetchAheadWrites - 1);
            for (long s = firstSequence; s <= ahead; s++) writer.Prefetch(in handoff.At(s));
        }

        public void OnEvent(ref ArchiveWrite evt, long sequence, bool endOfBatch)
        {
            if (sequence + PrefetchAheadWrites <= _batchLast) writer.Prefetch(in handoff.At(sequence + PrefetchAheadWrites));
            writer.Write(ref evt);
        }
    }

    /// <summary>
    /// Order → sequence of its newest write in the ring's last lap: open addressing on the order's hash, at most half
    /// full, deletion by backward shift (no tombstones). A hit is confirmed on the ring slot's key, so two orders whose
    /// hashes agree are still told apart. Pre-allocated.
    /// <para>
    /// One array of 16-byte entries (hash and sequence side by side, four to a cache line), not an array of each: every
    /// transaction that leaves the table sets one entry and removes one a lap old, each a random cache miss on the logic
    /// thread, and with two arrays each was two (profiled at the design peak: Remove and Set a tenth of the logic).
    /// </para>
    /// </summary>
    private sealed class RecentIndex
    {
        private struct Entry
        {
            public ulong Hash;
            /// <summary>Sequence + 1 (0: empty).</summary>
            public long SeqPlusOne;
        }

        private readonly Entry[] _entries;
        private readonly int _mask;

        public RecentIndex(int entries)
        {
            _entries = new Entry[entries * 2];
            _mask = entries * 2 - 1;
        }

        private int Home(ulong hash) => (int)(hash >> 32) & _mask;

        /// <summary>Starts loading the entry a <see cref="Set"/> or <see cref="Remove"/> of <paramref name="hash"/> reads first.</summary>
        public void Prefetch(ulong hash) => CacheLine.Prefetch(ref _entries[Home(hash)]);

        public void Set(ArchiveHandoff<TWriter> ring, ulong hash, long seq)
        {
            ref ScopedKey order = ref ring.At(seq).Order;
            int i = Home(hash);
            for (; _entries[i].SeqPlusOne != 0; i = (i + 1) & _mask)
            {
                ref Entry entry = ref _entries[i];
                if (entry.Hash == hash && ring.At(entry.SeqPlusOne - 1).Order.Equals(order))
                {
                    entry.SeqPlusOne = seq + 1; // a newer write of the same order replaces the older
                    return;
                }
            }
            _entries[i] = new Entry { Hash = hash, SeqPlusOne = seq + 1 };
        }

        public long Find(ArchiveHandoff<TWriter> ring, in ScopedKey order, ulong hash)
        {
            for (int i = Home(hash); _entries[i].SeqPlusOne != 0; i = (i + 1) & _mask)
            {
                ref Entry entry = ref _entries[i];
                if (entry.Hash == hash && ring.At(entry.SeqPlusOne - 1).Order.Equals(order)) return entry.SeqPlusOne - 1;
            }
            return -1;
        }

        /// <summary>Drops the entry of write <paramref name="seq"/> if it is still its order's newest.</summary>
        public void Remove(ulong hash, long seq)
        {
            int i = Home(hash);
            while (_entries[i].SeqPlusOne != seq + 1)
            {
                if (_entries[i].SeqPlusOne == 0) return; // replaced by a newer write of the same order
                i = (i + 1) & _mask;
            }
            BackwardShift.Delete(new Slots(this), i);
        }

        private readonly struct Slots(RecentIndex index) : IProbeSlots
        {
            public int Mask => index._mask;
            public bool Occupied(int slot) => index._entries[slot].SeqPlusOne != 0;
            public int Home(int slot) => index.Home(index._entries[slot].Hash);
            public void Move(int from, int to) => index._entries[to] = index._entries[from];
            public void Clear(int slot) => index._entries[slot] = default;
        }
    }
}
