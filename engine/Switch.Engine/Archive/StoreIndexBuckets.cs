using System.Reflection;
using System.Runtime.Intrinsics.X86;
using FASTER.core;
using Switch.Engine.Hashing;

namespace Switch.Engine.Archive;

/// <summary>
/// Where the archive store's hash index keeps the bucket of a key hash, so the writer thread can start that cache miss
/// a few writes before the upsert needs it: the index (64 MiB) is read at a random bucket per write, and that miss was
/// most of the archive writer's time (profiled at the design peak: FASTER's upsert was the largest single item of the
/// switch). It also backs the index with huge pages, as <see cref="HugePages"/> does the logic's tables, so the miss is
/// not a page walk as well.
/// <para>FASTER says neither in its API. The bucket's address is read once from its fields (the table of the index's
/// current version and its mask: FASTER puts a hash's bucket at table + (hash &amp; mask)), after the store is created or
/// recovered; the archive never resizes its index, so the table stays where it is until the store is disposed. Both
/// uses are hints: a prefetch never faults and changes nothing, the huge-page advice keeps every byte. A FASTER whose
/// fields differ gives null (<see cref="Find"/>) and the archive runs without, only slower; a test checks that this
/// one's are found and point at the buckets the store really uses.</para>
/// </summary>
internal sealed unsafe class StoreIndexBuckets
{
    /// <summary>A FASTER hash bucket: one cache line of eight 8-byte entries.</summary>
    public const int BucketBytes = 64;

    private readonly byte* _table;
    private readonly long _mask;

    private StoreIndexBuckets(byte* table, long mask)
    {
        _table = table;
        _mask = mask;
    }

    /// <summary>Buckets in the index.</summary>
    public long Count => _mask + 1;

    /// <summary>The index of <paramref name="store"/> (created or recovered, never resized), or null if this FASTER keeps
    /// it in fields other than those named here.</summary>
    public static StoreIndexBuckets? Find<TKey, TValue>(FasterKV<TKey, TValue> store, long indexBytes)
    {
        const BindingFlags Fields = BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public;
        try
        {
            Type fasterBase = typeof(FasterBase);
            if (fasterBase.GetField("state", Fields)?.GetValue(store) is not Array tables) return null;
            if (fasterBase.GetField("resizeInfo", Fields)?.GetValue(store) is not { } resizeInfo) return null;
            if (resizeInfo.GetType().GetField("version", Fields)?.GetValue(resizeInfo) is not int version) return null;
            if (version < 0 || version >= tables.Length || tables.GetValue(version) is not { } table) return null;
            if (table.GetType().GetField("size_mask", Fields)?.GetValue(table) is not long mask) return null;
            if (table.GetType().GetField("tableAligned", Fields)?.GetValue(table) is not Pointer aligned) return null;
            byte* start = (byte*)Pointer.Unbox(aligned);
            // The configured size, in whole buckets: anything else is not the index this archive asked for.
            if (start == null || mask + 1 != indexBytes / BucketBytes || ((nuint)start & (BucketBytes - 1)) != 0) return null;
            return new StoreIndexBuckets(start, mask);
        }
        catch (Exception e) when (e is FieldAccessException or TargetException or ArgumentException or NotSupportedException)
        {
            return null;
        }
    }

    /// <summary>Starts loading the bucket of <paramref name="hash"/> (the store's comparer's hash of the key).</summary>
    public void Prefetch(ulong hash)
    {
        if (Sse.IsSupported) Sse.Prefetch0(_table + ((long)hash & _mask) * BucketBytes);
    }

    /// <summary>Tests: the bucket of <paramref name="hash"/>, its eight entries as FASTER keeps them.</summary>
    internal ReadOnlySpan<ulong> Bucket(ulong hash) => new(_table + ((long)hash & _mask) * BucketBytes, BucketBytes / sizeof(ulong));

    /// <summary>Backs the index with 2 MiB pages (<see cref="HugePages.Advise"/>): what the writes first touch gets
    /// them, and the kernel's background collapsing (khugepaged) the rest. Not collapsed here: on a recovered index the
    /// collapse ran in the start and cost it about 300 ms (quiet, a 30 M-event history: archive's recovery waited 306
    /// and 309 ms against 5 ms). True if the kernel took the advice.</summary>
    public bool AdviseHugePages() => HugePages.Advise(_table, Count * BucketBytes, collapse: false);
}
