using System.Runtime.CompilerServices;

namespace Switch.Engine.Snapshots;

/// <summary>
/// The pages one owner's captures copy aside into (<see cref="PageCapture{T}"/>), kept for the process's life: filled
/// (allocated and written, so every memory page is faulted in) off the logic thread when the engine starts
/// (<see cref="Fill"/>), taken by the logic when it copies a page aside (<see cref="Rent"/>) and given back by the
/// snapshot writer once it has the copy (<see cref="Return"/>). Rented from an empty pool, the first snapshot at the
/// design peak allocated about 2,000 filter pages in its first half second on the logic thread, each zeroed by the
/// collector and faulted in page by page by the copy: 142 of that half second's 307 ms of the logic thread.
/// <para>Bounded: at most <see cref="Capacity"/> pages are kept; a page given back beyond it is dropped. A rent that finds
/// none ready allocates one (never fails: the snapshot must not), counted by the capture that asked.</para>
/// <para>The logic rents while the writer (and, at start, the filling thread) gives back: one lock, taken once per page
/// copied aside (the copy itself is thousands of times longer), never held across anything but a push or a pop.</para>
/// </summary>
public sealed class AsideReserve<T> where T : unmanaged
{
    private readonly object _lock = new();
    private readonly T[][] _ready;
    private int _readyCount;
    private int _capacity;

    /// <param name="pageItems">Items a page (the largest page of the captures sharing it).</param>
    /// <param name="maxPages">The most pages it may ever keep; <see cref="Capacity"/> starts there.</param>
    public AsideReserve(int pageItems, int maxPages)
    {
        if (pageItems is < 1 or > PageCapture<T>.MaxPageItems) throw new ArgumentOutOfRangeException(nameof(pageItems), $"1 to {PageCapture<T>.MaxPageItems}");
        if (maxPages < 0) throw new ArgumentOutOfRangeException(nameof(maxPages), "at least 0");
        PageItems = pageItems;
        _ready = new T[maxPages][];
        _capacity = maxPages;
    }

    public int PageItems { get; }
    public long PageBytes => (long)PageItems * Unsafe.SizeOf<T>();
    public int MaxPages => _ready.Length;
    /// <summary>Pages kept at most now (<see cref="Fill"/> may lower it below <see cref="MaxPages"/>).</summary>
    public int Capacity => Volatile.Read(ref _capacity);
    /// <summary>Pages ready to rent now.</summary>
    public int Ready
    {
        get
        {
            lock (_lock) return _readyCount;
        }
    }

    /// <summary>At start, off the logic thread: keeps at most <paramref name="pages"/> (at most <see cref="MaxPages"/>)
    /// and allocates and writes pages until that many are ready. Returns the bytes it allocated.</summary>
    public long Fill(int pages)
    {
        if (pages < 0) throw new ArgumentOutOfRangeException(nameof(pages), "at least 0");
        int target = Math.Min(pages, MaxPages);
        Volatile.Write(ref _capacity, target);
        long allocated = 0;
        while (true)
        {
            lock (_lock)
            {
                if (_readyCount >= target) return allocated;
            }
            T[] page = NewPage();
            allocated += PageBytes;
            if (!Push(page)) return allocated;
        }
    }

    /// <summary>Fills it to <see cref="MaxPages"/> (see <see cref="Fill(int)"/>).</summary>
    public long Fill() => Fill(MaxPages);

    /// <summary>The logic: a page to copy into, of <see cref="PageItems"/> items; <paramref name="allocated"/> when none
    /// was ready and this one was allocated now.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public T[] Rent(out bool allocated)
    {
        lock (_lock)
        {
            if (_readyCount > 0)
            {
                T[] page = _ready[--_readyCount];
                _ready[_readyCount] = null!;
                allocated = false;
                return page;
            }
        }
        allocated = true;
        return GC.AllocateUninitializedArray<T>(PageItems, pinned: true); // copied over at once: zeroing it first would be wasted
    }

    /// <summary>The writer (or the owner, for pages a failed writer left): <paramref name="page"/> back, kept if there
    /// is room, else dropped to the collector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Return(T[] page)
    {
        ArgumentNullException.ThrowIfNull(page);
        if (page.Length != PageItems) throw new ArgumentException($"aside reserve: a page of {page.Length} items, this reserve's are {PageItems}", nameof(page));
        Push(page);
    }

    private bool Push(T[] page)
    {
        lock (_lock)
        {
            if (_readyCount >= _capacity) return false;
            _ready[_readyCount++] = page;
            return true;
        }
    }

    /// <summary>A page allocated and written through, a byte every 4 KiB: the kernel maps its memory now, not under the
    /// logic's first copy into it. On the pinned heap: kept for the process's life, it is never moved (copied into
    /// memory not yet mapped) nor copied from generation to generation by the collector.</summary>
    private T[] NewPage()
    {
        T[] page = GC.AllocateUninitializedArray<T>(PageItems, pinned: true);
        Span<byte> bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(page.AsSpan());
        for (int at = 0; at < bytes.Length; at += 4096) bytes[at] = 0;
        bytes[^1] = 0;
        return page;
    }
}
