using FASTER.core;
using Switch.Engine.Business;

namespace Switch.Engine.Archive;

/// <summary>
/// The transaction archive on FASTER's key-value store: the newest records in memory, the rest in segment files
/// under the data directory, found through an in-memory hash index. It is derived state, rebuilt by the start-up
/// replay, so it starts empty (its directory is cleared) and needs no checkpoints. Only the logic thread uses it.
/// A read of a record that left memory waits for the disk on the logic thread: rare (a repeat, query or refund of an
/// old order), and the price of never executing an order twice. Forgetting drops whole segment files once every
/// record in them is past the logic's memory, so disk use is bounded by that horizon.
/// </summary>
public sealed class FasterTransactionArchive : ITransactionArchive
{
    /// <summary>Where the log stood when each run of <see cref="ArchiveSizing.MarkEveryTransactions"/> archived transactions began.</summary>
    private readonly Queue<(long FirstId, long Address)> _marks = new();
    private readonly int _markEvery;
    /// <summary>A bound on the marks: past it the oldest is dropped (forgetting becomes coarser, never wrong).</summary>
    private const int MaxMarks = 1 << 16;

    private readonly ArchivedOrderFilter _filter;
    private readonly IDevice _device;
    private readonly FasterKV<ScopedKey, Transaction> _store;
    private readonly ClientSession<ScopedKey, Transaction, Transaction, Transaction, Empty, SimpleFunctions<ScopedKey, Transaction>> _session;
    private long _puts;
    private long _lastPutId;

    private FasterTransactionArchive(IDevice device, FasterKV<ScopedKey, Transaction> store, ArchiveSizing sizing)
    {
        _markEvery = sizing.MarkEveryTransactions;
        _filter = new ArchivedOrderFilter(sizing.FilterBytes, ArchiveSizing.FilterGenerations);
        _device = device;
        _store = store;
        _session = store.For(new SimpleFunctions<ScopedKey, Transaction>()).NewSession<SimpleFunctions<ScopedKey, Transaction>>();
    }

    /// <summary>Disk reads so far (records that had left memory): a figure for operators and tests.</summary>
    public long DiskReads { get; private set; }
    /// <summary>Look-ups the filter let through to the store (archived orders, and the filter's false positives).</summary>
    public long StoreLookups { get; private set; }
    /// <summary>The filter was too small for the memory of orders this many times (see <see cref="ArchivedOrderFilter"/>).</summary>
    public long FilterOverfills => _filter.Overfills;
    public long BeginAddress => _store.Log.BeginAddress;
    public long TailAddress => _store.Log.TailAddress;

    /// <summary>Creates an empty archive in <paramref name="directory"/>, deleting what an earlier run left there.</summary>
    public static FasterTransactionArchive Create(string directory, ArchiveSizing sizing)
    {
        sizing.Validate();
        if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        // Not made durable (no directory fsync): the archive is rebuilt by every start's replay, so a power cut may take it.
        Directory.CreateDirectory(directory);
        IDevice device = Devices.CreateLogDevice(Path.Combine(directory, "archive.log"), preallocateFile: false, deleteOnClose: true);
        try
        {
            var store = new FasterKV<ScopedKey, Transaction>(new FasterKVSettings<ScopedKey, Transaction>
            {
                IndexSize = sizing.IndexBytes,
                LogDevice = device,
                PageSize = sizing.PageBytes,
                MemorySize = sizing.MemoryBytes,
                SegmentSize = sizing.SegmentBytes,
                EqualityComparer = new OrderComparer(),
            });
            return new FasterTransactionArchive(device, store, sizing);
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    public void Put(in ScopedKey order, in Transaction tx)
    {
        if (tx.Id <= 0) throw new ArgumentException("archive: a transaction without an id", nameof(tx));
        // Mark the log now and then for ForgetBelow. A mark's FirstId is above every id written before its address (a
        // parked transaction arrives late with an older id), so truncating there never drops a remembered order.
        if (_puts % _markEvery == 0)
        {
            if (_marks.Count == MaxMarks) _marks.Dequeue();
            _marks.Enqueue((Math.Max(tx.Id, _lastPutId + 1), _store.Log.TailAddress));
        }
        _puts++;
        _lastPutId = Math.Max(_lastPutId, tx.Id);
        _filter.Add(order.Hash64(), tx.Id);
        Upsert(order, tx);
    }

    public void Update(in ScopedKey order, in Transaction tx) => Upsert(order, tx);

    private void Upsert(in ScopedKey order, in Transaction tx)
    {
        ScopedKey key = order;
        Transaction value = tx;
        Status status = _session.Upsert(ref key, ref value);
        if (status.IsFaulted || status.IsPending) throw new InvalidOperationException($"archive: upsert of {tx.Id} ended {status}");
    }

    public bool TryGet(in ScopedKey order, out Transaction tx)
    {
        if (!_filter.MayContain(order.Hash64()))
        {
            tx = default;
            return false; // a new order, the common case: no store look-up
        }
        StoreLookups++;
        ScopedKey key = order;
        Transaction input = default;
        tx = default;
        Status status = _session.Read(ref key, ref input, ref tx, Empty.Default, 0);
        if (status.IsPending)
        {
            DiskReads++;
            _session.CompletePendingWithOutputs(out CompletedOutputIterator<ScopedKey, Transaction, Transaction, Transaction, Empty> outputs, wait: true);
            using (outputs)
            {
                if (!outputs.Next()) throw new InvalidOperationException("archive: a pending read completed with no output");
                status = outputs.Current.Status;
                tx = outputs.Current.Output;
            }
        }
        if (status.IsFaulted) throw new InvalidOperationException($"archive: read ended {status}");
        return status.Found;
    }

    public void ForgetBelow(long id)
    {
        _filter.ForgetBelow(id);
        // A segment may go once a later mark's run starts at or below the horizon: every record before that mark's
        // address belongs to a transaction with an id below its FirstId, so is past the logic's memory.
        long until = 0;
        while (_marks.TryPeek(out var mark) && mark.FirstId <= id)
        {
            until = mark.Address;
            _marks.Dequeue();
        }
        if (until > _store.Log.BeginAddress)
        {
            _store.Log.ShiftBeginAddress(until, snapToPageStart: true, truncateLog: true);
        }
    }

    public void Dispose()
    {
        _session.Dispose();
        _store.Dispose();
        _device.Dispose();
    }

    /// <summary>The same hash in every process (FASTER's index must agree with itself only, but one hash for one key
    /// keeps the order index and the archive alike).</summary>
    private sealed class OrderComparer : IFasterEqualityComparer<ScopedKey>
    {
        public long GetHashCode64(ref ScopedKey key) => (long)key.Hash64();
        public bool Equals(ref ScopedKey k1, ref ScopedKey k2) => k1.Equals(k2);
    }
}
