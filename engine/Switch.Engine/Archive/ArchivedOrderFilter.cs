using Switch.Engine.Hashing;
using Switch.Engine.Snapshots;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Switch.Engine.Archive;

/// <summary>
/// Which orders the archive may hold, in memory, in front of FASTER's index: most orders the switch sees are new, and
/// their look-up should end here (a few bit tests in one cache line) rather than in the store's hash chains. Blocked
/// Bloom filters (one bit in each of the 8 words of one 64-byte block per key) in generations: a generation takes the orders of a run of
/// transaction ids, and is cleared for reuse only once every id it took is past the switch's memory of orders, so a
/// remembered order is never missed (no false negatives, ever). When every generation is still remembered and the
/// newest is full, keys keep going into it: more false positives (more store look-ups), never a wrong answer.
/// Only the logic thread uses it.
/// </summary>
public sealed class ArchivedOrderFilter
{
    private const int BitsPerKey = 12; // one bit per word of a 512-bit block: about 1% false positives at design load
    private const int WordsPerBlock = 8;

    private readonly ulong[][] _generations;
    private readonly long[] _count;
    /// <summary>The highest transaction id each generation took; it may be cleared once that id is forgotten.</summary>
    private readonly long[] _lastId;
    private readonly ulong _blocksPerGeneration;
    private int _current;
    /// <summary>While a snapshot copies the generations (null otherwise); see <see cref="PageCapture{T}"/>.</summary>
    private PageCapture<ulong>[]? _captures;
    /// <summary>The captures every snapshot reuses (<see cref="PageCapture{T}.Begin"/>): made per snapshot, their per-page
    /// states were about 200 KiB allocated in each pause.</summary>
    private readonly PageCapture<ulong>[] _capturesKept;
    /// <summary>The pages its captures copy aside into: one generation's, since only the current generation is written
    /// at random (the others are read; a generation cleared for reuse while a snapshot is written copies the rest aside
    /// by allocating them, counted).</summary>
    private readonly AsideReserve<ulong> _aside;

    /// <param name="bytes">Total memory, split over <paramref name="generations"/> (a power of two of 64-byte blocks each).</param>
    public ArchivedOrderFilter(long bytes, int generations)
    {
        if (generations is < 2 or > 64) throw new ArgumentOutOfRangeException(nameof(generations), "2 to 64");
        long blocks = bytes / generations / (WordsPerBlock * sizeof(ulong));
        if (blocks < 1 || !BitOperations.IsPow2(blocks) || blocks > 1L << 27) throw new ArgumentOutOfRangeException(nameof(bytes), "a power of two of 64-byte blocks per generation");
        _blocksPerGeneration = (ulong)blocks;
        KeysPerGeneration = blocks * WordsPerBlock * 64 / BitsPerKey;
        _generations = new ulong[generations][];
        // Huge pages: each new order reads a random block, and in 4 KiB pages its page walk was a tenth of the logic thread.
        for (int g = 0; g < generations; g++) _generations[g] = HugePages.Allocate<ulong>(blocks * WordsPerBlock);
        _count = new long[generations];
        _lastId = new long[generations];
        _capturesKept = new PageCapture<ulong>[generations];
        int generationItems = (int)(blocks * WordsPerBlock);
        _aside = new AsideReserve<ulong>(PageCapture<ulong>.PageItemsFor(generationItems), PageCapture<ulong>.PagesFor(generationItems));
        for (int g = 0; g < generations; g++) _capturesKept[g] = new PageCapture<ulong>(_generations[g], _aside);
    }

    /// <summary>Keys a generation takes before the filter moves on to the next one (if it is free).</summary>
    public long KeysPerGeneration { get; }
    /// <summary>Times the newest generation was full and none was free: the filter is too small for the memory of orders.</summary>
    public long Overfills { get; private set; }

    /// <summary>Adds the key of transaction <paramref name="id"/>. Ids mostly rise; an older one (a parked transaction
    /// archived late) joins the current generation, which is cleared only once its highest id is forgotten.</summary>
    public void Add(ulong keyHash, long id)
    {
        if (id <= 0) throw new ArgumentOutOfRangeException(nameof(id), "a transaction id");
        if (_count[_current] >= KeysPerGeneration)
        {
            int next = (_current + 1) % _generations.Length;
            if (_count[next] == 0) _current = next;
            else Overfills++;
        }
        Span<ulong> block = Block(_current, keyHash, out ulong probes, write: true);
        for (int word = 0; word < WordsPerBlock; word++, probes >>= 6)
        {
            block[word] |= 1UL << (int)(probes & 63);
        }
        _count[_current]++;
        _lastId[_current] = Math.Max(_lastId[_current], id);
    }

    /// <summary>False when no remembered order has this key; true when one may.</summary>
    public bool MayContain(ulong keyHash)
    {
        // A key's block sits at the same place in every generation; its 8 bits are tested with one branch a generation.
        int first = FirstWord(keyHash);
        for (int g = 0; g < _generations.Length; g++)
        {
            if (_count[g] == 0) continue;
            if (AllBitsSet(ref _generations[g][first], keyHash)) return true;
        }
        return false;
    }

    /// <summary>A hint: starts loading the blocks a <see cref="MayContain"/> of this key reads (every generation
    /// holding keys) or, with <paramref name="forAdd"/>, the one an <see cref="Add"/> writes. Changes nothing.</summary>
    public void Prefetch(ulong keyHash, bool forAdd)
    {
        int first = FirstWord(keyHash);
        if (forAdd)
        {
            CacheLine.Prefetch(ref Unsafe.As<ulong, BlockBytes>(ref _generations[_current][first]));
            return;
        }
        for (int g = 0; g < _generations.Length; g++)
        {
            if (_count[g] != 0) CacheLine.Prefetch(ref Unsafe.As<ulong, BlockBytes>(ref _generations[g][first]));
        }
    }

    /// <summary>Whether the key's bit is set in each of the block's 8 words (bit w: the hash's 6-bit group w).</summary>
    private static bool AllBitsSet(ref ulong block, ulong probes)
    {
        ulong missing = ~block & (1UL << (int)(probes & 63));
        missing |= ~Unsafe.Add(ref block, 1) & (1UL << (int)((probes >> 6) & 63));
        missing |= ~Unsafe.Add(ref block, 2) & (1UL << (int)((probes >> 12) & 63));
        missing |= ~Unsafe.Add(ref block, 3) & (1UL << (int)((probes >> 18) & 63));
        missing |= ~Unsafe.Add(ref block, 4) & (1UL << (int)((probes >> 24) & 63));
        missing |= ~Unsafe.Add(ref block, 5) & (1UL << (int)((probes >> 30) & 63));
        missing |= ~Unsafe.Add(ref block, 6) & (1UL << (int)((probes >> 36) & 63));
        missing |= ~Unsafe.Add(ref block, 7) & (1UL << (int)((probes >> 42) & 63));
        return missing == 0;
    }

    /// <summary>A block's 64 bytes, for a prefetch of both cache lines it may straddle (array data is not 64-byte aligned).</summary>
    [StructLayout(LayoutKind.Sequential, Size = WordsPerBlock * sizeof(ulong))]
    private struct BlockBytes { }

    /// <summary>Clears every generation (but the one taking keys) whose ids are all below <paramref name="id"/>.</summary>
    public void ForgetBelow(long id)
    {
        for (int g = 0; g < _generations.Length; g++)
        {
            if (g == _current || _count[g] == 0 || _lastId[g] >= id) continue;
            if (_captures is { } captures)
            {
                for (int i = 0; i < _generations[g].Length; i += captures[g].PageItems) captures[g].Touch(i);
            }
            Array.Clear(_generations[g]);
            _count[g] = 0;
            _lastId[g] = 0;
        }
    }

    /// <summary>The key's block in a generation (from a second mix of the key's hash) and its 8 x 6 probe bits (the hash).</summary>
    private Span<ulong> Block(int generation, ulong keyHash, out ulong probes, bool write = false)
    {
        probes = keyHash;
        int first = FirstWord(keyHash);
        if (write) _captures?[generation].Touch(first); // a block never straddles pages (both powers of two)
        return _generations[generation].AsSpan(first, WordsPerBlock);
    }

    /// <summary>The first word of the key's block, the same in every generation.</summary>
    private int FirstWord(ulong keyHash)
    {
        ulong mixed = Hashing.StableHash.Mix(keyHash ^ 0xA24BAED4963EE407UL);
        ulong block = Math.BigMul(mixed, _blocksPerGeneration, out _);
        return (int)block * WordsPerBlock;
    }

    /// <summary>Snapshot, on the logic thread: the counters now, and captures of the generations for the writer.</summary>
    public ICapturedArray[] BeginCapture(StateWriter w)
    {
        if (_captures is not null) throw new InvalidOperationException("archive filter: a capture is running");
        w.Section("filter");
        w.Int(_generations.Length);
        w.Long((long)_blocksPerGeneration);
        w.Int(_current);
        w.Long(Overfills);
        w.Array<long>(_count);
        w.Array<long>(_lastId);
        foreach (PageCapture<ulong> capture in _capturesKept) capture.Begin();
        _captures = _capturesKept;
        return _capturesKept;
    }

    public void EndCapture() => _captures = null;

    /// <summary>At start, off the logic thread: the copy-aside reserve allocated and faulted in (<see cref="AsideReserve{T}"/>);
    /// returns its bytes.</summary>
    public long FillAsideReserve() => _aside.Fill();

    /// <summary>Reads past what <see cref="BeginCapture"/> wrote; returns the generations (arrays) that follow.</summary>
    public static int SkipSnapshotScalars(ref StateReader r) => ReadScalars(ref r).Count.Length;

    public void RestoreScalars(ref StateReader r)
    {
        SavedScalars saved = ReadScalars(ref r);
        if (saved.Count.Length != _generations.Length) throw new InvalidDataException($"snapshot: {saved.Count.Length} filter generations, the configuration has {_generations.Length}");
        if (saved.Blocks != (long)_blocksPerGeneration) throw new InvalidDataException($"snapshot: a filter of {saved.Blocks} blocks a generation, this archive's has {_blocksPerGeneration} (archive.filterBytes changed)");
        _current = saved.Current;
        Overfills = saved.Overfills;
        saved.Count.CopyTo(_count, 0);
        saved.LastId.CopyTo(_lastId, 0);
    }

    /// <summary>What <see cref="BeginCapture"/> wrote, read and checked against itself: one parser for a restore and a skip.</summary>
    private readonly record struct SavedScalars(long Blocks, int Current, long Overfills, long[] Count, long[] LastId);

    private static SavedScalars ReadScalars(ref StateReader r)
    {
        r.Section("filter");
        int generations = r.Int();
        if (generations is < 2 or > 64) throw new InvalidDataException($"snapshot: {generations} filter generations, 2 to 64");
        long blocks = r.Long();
        int current = r.Int();
        if ((uint)current >= (uint)generations) throw new InvalidDataException($"snapshot: filter generation {current} of {generations}");
        long overfills = r.Long();
        long[] count = r.Array<long>(generations).ToArray();
        long[] lastId = r.Array<long>(generations).ToArray();
        if (count.Length != generations || lastId.Length != generations) throw new InvalidDataException($"snapshot: filter counts for {count.Length} and {lastId.Length} of {generations} generations");
        return new SavedScalars(blocks, current, overfills, count, lastId);
    }

    public Span<ulong> GenerationForRestore(int g) => _generations[g];

    /// <summary>After the scalars' restore: the generations holding keys, whose bits are spread over all of them.</summary>
    public void PrefaultForRestore(Snapshots.Prefaulter prefault)
    {
        for (int g = 0; g < _generations.Length; g++)
        {
            if (_count[g] != 0) prefault.AddToWrite(_generations[g], _generations[g].Length);
        }
    }
    public int Generations => _generations.Length;
}
