using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace Switch.Engine.Hashing;

/// <summary>
/// Software prefetch for the logic thread's large tables: a look-up whose slot is known a little before it is read
/// (the next transaction to evict, a request's order and account once its fields are checked) starts the cache miss
/// early, so several misses overlap instead of queueing. A hint only: it changes no state (replay is unaffected) and
/// never faults, even on an address a moving collector just left.
/// </summary>
public static class CacheLine
{
    public const int Bytes = 64;

    /// <summary>Starts loading the cache line of <paramref name="item"/>, and the next one when the item crosses into it.</summary>
    public static unsafe void Prefetch<T>(ref T item)
    {
        if (!Sse.IsSupported) return;
        byte* first = (byte*)Unsafe.AsPointer(ref item);
        Sse.Prefetch0(first);
        byte* last = first + Unsafe.SizeOf<T>() - 1;
        if (((nuint)first ^ (nuint)last) >= Bytes) Sse.Prefetch0(last);
    }
}

/// <summary>
/// Large pre-allocated tables in huge pages where the OS allows it: the logic thread's random look-ups (order index,
/// payer accounts) each missed the TLB as well as the cache with 4 KiB pages (a page walk per look-up, profiled as
/// the prefetch itself stalling). The array is allocated pinned (it never moves) and, on Linux, the kernel is asked
/// (madvise MADV_HUGEPAGE) to back it with 2 MiB pages before it is first touched. Elsewhere, or if refused, an
/// ordinary pinned array: only speed differs.
/// </summary>
public static class HugePages
{
    private const int MadvHugePage = 14;
    private const int MadvCollapse = 25;
    private const long HugePageBytes = 2L << 20;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static extern unsafe int Madvise(void* address, nuint length, int advice);

    /// <summary>A zeroed array of <paramref name="length"/> items that never moves, huge-paged when the OS agrees.</summary>
    public static unsafe T[] Allocate<T>(long length) where T : unmanaged
    {
        T[] array = GC.AllocateArray<T>(checked((int)length), pinned: true);
        fixed (T* data = array) Advise(data, length * sizeof(T), collapse: false);
        return array;
    }

    /// <summary>
    /// Asks Linux to back the whole huge pages inside <paramref name="bytes"/> at <paramref name="data"/> (memory that
    /// never moves) with 2 MiB pages as they are first touched; with <paramref name="collapse"/>, also to collapse what is
    /// already mapped there now (MADV_COLLAPSE, Linux 6.1+: for memory touched before the advice; it keeps every byte; the
    /// kernel may refuse, for instance a range not yet touched at all, which the advice covers anyway). True if the kernel
    /// took the advice; elsewhere, or if refused, nothing changes but speed.
    /// </summary>
    public static unsafe bool Advise(void* data, long bytes, bool collapse)
    {
        if (!OperatingSystem.IsLinux() || bytes < 2 * HugePageBytes) return false;
        // Only the whole huge pages inside the range: the advice applies to page-aligned ranges.
        long start = ((long)data + HugePageBytes - 1) & ~(HugePageBytes - 1);
        long end = ((long)data + bytes) & ~(HugePageBytes - 1);
        if (end <= start) return false;
        if (Madvise((void*)start, (nuint)(end - start), MadvHugePage) != 0) return false;
        if (collapse) _ = Madvise((void*)start, (nuint)(end - start), MadvCollapse);
        return true;
    }
}
