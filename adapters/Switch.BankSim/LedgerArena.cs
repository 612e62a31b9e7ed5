using System.Runtime.InteropServices;

namespace Switch.BankSim;

/// <summary>
/// Where one ledger's stripes take their pages' entries from: native chunks of <see cref="ChunkBytes"/>, aligned to and
/// (on Linux, when the kernel agrees) backed by 2 MiB pages. Each stripe took its own growing slabs of 4 KiB pages
/// before, and every 4 KiB of new entries (57 transactions) was a page fault on the bank's answer path: 2.6% of the
/// switch's CPU with its simulated banks at 180,000 transactions a second (profiled), most of it the fault itself, not
/// the zeroing. A chunk shared by the stripes faults once per 2 MiB instead. The memory per entry is unchanged; what a
/// ledger holds beyond its entries is at most one chunk not yet filled (untouched parts of it are not resident).
/// Thread-safe (a page is taken under the arena's lock, once per 64 entries of a stripe); freed with the ledger
/// (finalizer: pages hold no references, and live only as long as the stripes that point into the chunks).
/// </summary>
internal sealed unsafe class LedgerArena
{
    public const long ChunkBytes = 4L << 20;
    private const long HugePageBytes = 2L << 20;
    private const int MadvHugePage = 14;

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
                byte* chunk = (byte*)NativeMemory.AlignedAlloc((nuint)ChunkBytes, (nuint)HugePageBytes);
                if (OperatingSystem.IsLinux()) _ = Madvise(chunk, (nuint)ChunkBytes, MadvHugePage); // a hint: refused, only slower
                _chunks.Add((IntPtr)chunk);
                _free = chunk;
                _freeBytes = ChunkBytes;
            }
            void* taken = _free;
            _free += bytes;
            _freeBytes -= bytes;
            // The allocator may hand back memory a freed ledger used: zeroed here, a take at a time, so the chunk is
            // touched (faulted in) only as the ledger grows.
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
