using System.Runtime.InteropServices;

namespace Switch.Engine.Snapshots;

/// <summary>
/// Faults in, on a helper thread, the fresh memory a snapshot's restore is about to write, so the restoring thread
/// finds it mapped. A restore writes a few hundred MiB of tables into new arrays: every 4 KiB page's first write is a
/// fault in which the kernel allocates and zeroes the page, and these faults were about half the restore's CPU time
/// (RecoveryBench, 3 M transactions: 120,000 faults, 0.2–0.3 s of system time). The helper asks the kernel to do this
/// in bulk (<c>madvise(MADV_POPULATE_WRITE)</c>, Linux 5.14+), which changes no byte of the arrays, so it is safe while
/// the restoring thread writes them. It goes through the regions in the order they are read: it starts beside the
/// reader and, faster (no copy, no checksum), soon runs ahead of it. Elsewhere, or where the kernel refuses, it does nothing:
/// only speed differs. Never on the logic thread, never touching state: replay is unaffected.
/// </summary>
public sealed class Prefaulter : IDisposable
{
    /// <summary>Pages faulted per call: small enough that <see cref="Dispose"/> waits at most a few milliseconds.</summary>
    private const long ChunkBytes = 4L << 20;
    /// <summary>Regions at most (the restore's large tables: the archive filter's generations, 64 at most, and a few).</summary>
    private const int MaxRegions = 128;
    private const int MadvPopulateRead = 22;
    private const int MadvPopulateWrite = 23;

    private readonly List<(GCHandle Handle, nint Start, long Bytes, int Advice)> _regions = new();
    private Thread? _thread;
    private volatile bool _stop;

    /// <summary>Calls that failed (the kernel has no MADV_POPULATE_*, or refused): the helper then stops.</summary>
    public int Refused { get; private set; }
    /// <summary>Bytes the helper asked the kernel to fault in.</summary>
    public long PopulatedBytes { get; private set; }
    /// <summary>Bytes of every region added: <see cref="PopulatedBytes"/> short of it after <see cref="Dispose"/> means
    /// the restore finished first (the rest faulted on the restoring thread), or the kernel refused.</summary>
    public long RegionBytes { get; private set; }
    /// <summary>The helper's time, from its start to its last region done (or its stop), in microseconds; read after
    /// <see cref="Dispose"/>. Long against the bytes it populated: the kernel was slow to find pages (compaction, reclaim).</summary>
    public long ElapsedUs { get; private set; }

    [DllImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static extern unsafe int Madvise(void* address, nuint length, int advice);

    /// <summary>Items [0, <paramref name="items"/>) of <paramref name="array"/> are about to be written. The array is
    /// pinned until <see cref="Dispose"/> (the kernel is given its address). Before <see cref="Start"/>.</summary>
    public void AddToWrite<T>(T[] array, int items) where T : unmanaged => Add(array, items, MadvPopulateWrite);

    /// <summary>Items [0, <paramref name="items"/>) of <paramref name="array"/> are about to be read, most of them never
    /// written (a table that is mostly empty, checked whole): the pages not written are mapped to the kernel's shared
    /// zero page, which costs no memory, instead of faulting one read at a time.</summary>
    public void AddToRead<T>(T[] array, int items) where T : unmanaged => Add(array, items, MadvPopulateRead);

    private unsafe void Add<T>(T[] array, int items, int advice) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(array);
        if (_thread is not null) throw new InvalidOperationException("prefaulter: a region added after the start");
        if ((uint)items > (uint)array.Length) throw new ArgumentOutOfRangeException(nameof(items));
        if (_regions.Count == MaxRegions) throw new InvalidOperationException($"prefaulter: more than {MaxRegions} regions");
        if (items == 0 || !OperatingSystem.IsLinux()) return;
        GCHandle handle = GCHandle.Alloc(array, GCHandleType.Pinned);
        _regions.Add((handle, handle.AddrOfPinnedObject(), (long)items * sizeof(T), advice));
        RegionBytes += (long)items * sizeof(T);
    }

    /// <summary>Starts the helper (nothing to do: no thread).</summary>
    public void Start()
    {
        if (_thread is not null) throw new InvalidOperationException("prefaulter: started twice");
        if (_regions.Count == 0) return;
        _thread = new Thread(Run) { IsBackground = true, Name = "restore-prefault" };
        _thread.Start();
    }

    private void Run()
    {
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        Populate();
        ElapsedUs = (long)System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMicroseconds;
    }

    private unsafe void Populate()
    {
        long page = Environment.SystemPageSize;
        foreach ((_, nint start, long bytes, int advice) in _regions)
        {
            // Whole pages inside the region only: the advice takes page-aligned ranges; the ends fault as before.
            long first = ((long)start + page - 1) & ~(page - 1);
            long end = ((long)start + bytes) & ~(page - 1);
            for (long from = first; from < end; from += ChunkBytes)
            {
                if (_stop) return;
                long to = Math.Min(end, from + ChunkBytes);
                if (Madvise((void*)from, (nuint)(to - from), advice) != 0)
                {
                    Refused++;
                    return;
                }
                PopulatedBytes += to - from;
            }
        }
    }

    /// <summary>Stops the helper (waiting at most for its current chunk) and unpins the arrays.</summary>
    public void Dispose()
    {
        _stop = true;
        _thread?.Join();
        foreach ((GCHandle handle, _, _, _) in _regions) handle.Free();
        _regions.Clear();
    }
}
