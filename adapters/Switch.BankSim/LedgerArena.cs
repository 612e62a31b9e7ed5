using System.Runtime.InteropServices;

namespace Switch.BankSim;

/// <summary>
/// Where one ledger's stripes take their pages' entries from: native chunks of <see cref="ChunkBytes"/>, each faulted
/// in whole as it is made (on Linux 5.14+: one <c>madvise(MADV_POPULATE_WRITE)</c>). Each stripe grew its own slabs
/// before, touched 4 KiB at a time, and every 4 KiB of new entries (57 transactions) was a page fault on the bank's
/// answer path: 2.6% of the switch's CPU with its simulated banks at 180,000 transactions a second (profiled), mostly
/// the fault's entry and exit rather than the zeroing. One call per 1 MiB does the same work without a trap per page.
/// (2 MiB pages were tried instead: a fault per 2 MiB, but zeroing fresh huge pages cost this virtual machine 10% of
/// the switch's CPU, four times what it saved.) The memory per entry is unchanged; what a ledger holds beyond its
/// entries is at most one chunk not yet filled. Thread-safe (a page is taken under the arena's lock, once per 64
/// entries of a stripe); freed with the ledger (finalizer: pages hold no references, and live only as long as the
/// stripes that point into the chunks).
/// </summary>
internal sealed unsafe class LedgerArena
{
    public const long ChunkBytes = 1L << 20;
    private const int MadvPopulateWrite = 23;

    private readonly Lock _gate = new();
    private readonly List<IntPtr> _chunks = new();
    private byte* _free;
    private long _freeBytes;

    /// <summary>Chunks allocated so far.</summary>
    public int Chunks
    {
        get { lock (_gate) return _chunks.Count; }
    }

    /// <summary>Zeroed memory for <paramref name="bytes"/> (at most a chunk), never moved, freed with the arena. The rest of a
    /// chunk too small for it is left unused.</summary>
    public void* Take(long bytes)
    {
        if (bytes <= 0 || bytes > ChunkBytes) throw new ArgumentOutOfRangeException(nameof(bytes), $"1 to {ChunkBytes} bytes");
        lock (_gate)
        {
            if (_freeBytes < bytes)
            {
                _chunks.EnsureCapacity(_chunks.Count + 1);
                byte* chunk = (byte*)NativeMemory.AlignedAlloc((nuint)ChunkBytes, (nuint)Environment.SystemPageSize);
                // A hint: refused (an older kernel), the pages fault in one by one as the ledger grows, as before.
                if (OperatingSystem.IsLinux()) _ = Madvise(chunk, (nuint)ChunkBytes, MadvPopulateWrite);
                _chunks.Add((IntPtr)chunk);
                _free = chunk;
                _freeBytes = ChunkBytes;
            }
            void* taken = _free;
            _free += bytes;
            _freeBytes -= bytes;
            // The allocator may hand back memory a freed ledger used: zeroed here, a take at a time.
            NativeMemory.Clear(taken, (nuint)bytes);
            return taken;
        }
    }

    ~LedgerArena()
    {
        foreach (IntPtr chunk in _chunks) NativeMemory.AlignedFree((void*)chunk);
    }

    [DllImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static extern int Madvise(void* address, nuint length, int advice);
}
