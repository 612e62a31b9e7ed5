namespace Switch.Engine.Snapshots;

/// <summary>
/// Copy-on-write capture of one large array of structs (the transaction table's ring or its parked table) as it was
/// at one instant, while its owner (the logic thread) keeps changing it. The array is cut into pages. The snapshot
/// writer copies each page itself unless the owner is about to change it first: then the owner copies the page aside
/// before its first write (<see cref="Touch"/>), and the writer takes that copy. Either way every page the writer
/// gets is the page as it was when the capture began, and the owner never waits for a disk: at most for the writer's
/// work on the one page it holds at that moment (its encoding, in memory; <see cref="ReadPage"/>).
/// <para>Cost to the owner: one check per access while a capture runs (none otherwise: the owner holds a null), and
/// one page copy (a few hundred KB) for each page it touches before the writer reaches it; the pages it touches are
/// mostly the few around the newest transactions, but the archive's filter is touched at random: a snapshot copies
/// most of its current generation aside (about 2,000 pages of 8 KiB measured with a full table at 5,000/s).</para>
/// <para>The pages copied aside come from the owner's reserve (<see cref="AsideReserve{T}"/>: filled when the engine
/// starts, kept across snapshots) and go back to it once the writer has them: allocated, they were garbage that lived for
/// the seconds a snapshot is written, so survived into the older generations and made the collector's pauses long
/// (non-concurrent collections stop every thread), and from an empty pool the first snapshot allocated and faulted
/// them in on the logic thread in the burst after its capture.</para>
/// <para>One capture object per array, made with its owner and reused by every snapshot (<see cref="Begin"/>): made
/// per snapshot, the per-page states of the archive's filter alone were about 200 KiB allocated in each pause.</para>
/// </summary>
public sealed class PageCapture<T> : ICapturedArray where T : unmanaged
{
    /// <summary>Items per page: 1,024 transactions are 344 KiB, copied in tens of microseconds.</summary>
    public const int MaxPageItems = 1024;

    private const int Untouched = 0;   // the live page is still as it was at the capture
    private const int Copying = 1;     // one side is copying it now
    private const int Taken = 2;       // copied: by the writer (done with it) or aside by the owner (in _aside)

    private readonly T[] _live;
    private readonly int _pageShift;
    private readonly int[] _state;
    private readonly T[]?[] _aside;
    private readonly AsideReserve<T> _reserve;
    /// <summary>Pages copied aside that the writer took and gave back to the pool (the writer's count; the owner reads
    /// it at <see cref="Begin"/>, after the last capture ended).</summary>
    private int _asideReturned;

    /// <summary>Made once per array, with its owner; as made it is a capture begun (<see cref="Begin"/> for each next one).
    /// <paramref name="reserve"/>: where its pages aside come from and go back to, shared by the owner's captures of one
    /// item type (its pages at least as long as this array's); null: one of its own, a page for each of the array's,
    /// empty until pages aside come back to it.</summary>
    public PageCapture(T[] live, AsideReserve<T>? reserve = null)
    {
        ArgumentNullException.ThrowIfNull(live);
        _live = live;
        int pageItems = PageItemsFor(live.Length);
        _pageShift = System.Numerics.BitOperations.Log2((uint)pageItems);
        PageItems = pageItems;
        Pages = PagesFor(live.Length);
        _state = new int[Pages];
        _aside = new T[]?[Pages];
        _reserve = reserve ?? new AsideReserve<T>(pageItems, Pages);
        if (_reserve.PageItems < pageItems) throw new ArgumentException($"page capture: reserve pages of {_reserve.PageItems} items, this array's are {pageItems}", nameof(reserve));
    }

    public int PageItems { get; }
    public int Pages { get; }

    /// <summary>Items a page of an array of <paramref name="length"/> items (a power of two, at most <see cref="MaxPageItems"/>).</summary>
    public static int PageItemsFor(int length) => Math.Min(MaxPageItems, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(1, length)));
    public static int PagesFor(int length) => (length + PageItemsFor(length) - 1) / PageItemsFor(length);
    /// <summary>Pages the owner copied aside before the writer reached them, in this capture.</summary>
    public int PagesCopiedAside { get; private set; }
    /// <summary>Of <see cref="PagesCopiedAside"/>, the pages the reserve had none ready for, allocated on the logic thread.</summary>
    public int PagesAllocatedAside { get; private set; }
    public long BytesAllocatedAside => (long)PagesAllocatedAside * _reserve.PageBytes;
    public AsideReserve<T> Reserve => _reserve;

    /// <summary>The owner, at a snapshot's instant: a capture of the array as it is now (every page untouched). The
    /// last capture must have ended (its writer copies no more); a writer that stopped before it took every page (a
    /// failed snapshot) left some pages copied aside: they go back to the pool here, once, and are not taken for this
    /// capture's. Costs a clear of one int a page, and a look at each page only after such a failure.</summary>
    public void Begin()
    {
        int leftAside = PagesCopiedAside - Volatile.Read(ref _asideReturned);
        if (leftAside != 0)
        {
            int returned = 0;
            for (int page = 0; page < _aside.Length; page++)
            {
                T[]? left = _aside[page];
                if (left is null) continue;
                _aside[page] = null;
                _reserve.Return(left);
                returned++;
            }
            System.Diagnostics.Debug.Assert(returned == leftAside, "page capture: pages aside not counted");
        }
        Array.Clear(_state);
        PagesCopiedAside = 0;
        PagesAllocatedAside = 0;
        Volatile.Write(ref _asideReturned, 0);
    }

    /// <summary>The owner, before it changes (or hands out a reference to) item <paramref name="index"/>.</summary>
    public void Touch(int index)
    {
        int page = index >> _pageShift;
        if (Volatile.Read(ref _state[page]) == Taken) return;
        Preserve(page);
    }

    /// <summary>Fully optimized at its first call (the start's warm-up, <see cref="WarmUp"/>): left to tiering, it was
    /// recompiled by the runtime's JIT threads in the burst after the first real snapshot, beside the logic.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private void Preserve(int page)
    {
        if (Interlocked.CompareExchange(ref _state[page], Copying, Untouched) == Untouched)
        {
            int length = PageLength(page);
            T[] copy = _reserve.Rent(out bool allocated); // at least as long: the page is its first items
            _live.AsSpan(page << _pageShift, length).CopyTo(copy);
            _aside[page] = copy;
            PagesCopiedAside++;
            if (allocated) PagesAllocatedAside++;
            Volatile.Write(ref _state[page], Taken);
            return;
        }
        // The writer is copying this page now: a memory copy of one page, so wait for it rather than copy twice.
        var spin = new SpinWait();
        while (Volatile.Read(ref _state[page]) != Taken) spin.SpinOnce(sleep1Threshold: -1);
    }

    /// <summary>The writer: page <paramref name="page"/>'s bytes as they were when the capture began, handed to
    /// <paramref name="read"/> (each page once). Untouched, the live page itself is handed over, held: the owner waits to
    /// change it until <paramref name="read"/> returns, so it does the page's own work alone (an encoding, a copy; no I/O,
    /// no wait). Read in place, a page is not copied first: copying every page was a pass over the whole state (489 MiB
    /// at 2^20 retained) before the encoder's.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public void ReadPage(int page, PageBytesReader read)
    {
        int length = PageLength(page);
        if (Interlocked.CompareExchange(ref _state[page], Copying, Untouched) == Untouched)
        {
            try
            {
                read(System.Runtime.InteropServices.MemoryMarshal.AsBytes(_live.AsSpan(page << _pageShift, length)));
            }
            finally
            {
                Volatile.Write(ref _state[page], Taken); // even if read failed: the owner must never wait for it again
            }
            return;
        }
        var spin = new SpinWait();
        while (Volatile.Read(ref _state[page]) != Taken) spin.SpinOnce(sleep1Threshold: -1);
        T[] aside = _aside[page] ?? throw new InvalidOperationException($"page capture: page {page} taken twice by the writer");
        try
        {
            read(System.Runtime.InteropServices.MemoryMarshal.AsBytes(aside.AsSpan(0, length)));
        }
        finally
        {
            _aside[page] = null;
            _reserve.Return(aside);
            Volatile.Write(ref _asideReturned, _asideReturned + 1); // the writer's count alone: no other thread writes it
        }
    }

    public int PageLength(int page) => Math.Min(PageItems, _live.Length - (page << _pageShift));

    public int Length => _live.Length;
    public int ItemBytes => System.Runtime.CompilerServices.Unsafe.SizeOf<T>();

    /// <summary>At start, on a throwaway array's capture: the owner's copy of a page aside and the writer's read of it
    /// run once, so the first real snapshot compiles neither on the logic thread nor in its burst. The capture must be
    /// begun and not yet read; it is left read whole.</summary>
    public void WarmUp()
    {
        if (Pages == 0) return;
        Touch(0);
        for (int page = 0; page < Pages; page++) ReadPage(page, static _ => { });
    }
}

/// <summary>What the snapshot writer does with one page's bytes (<see cref="ICapturedArray.ReadPage"/>).</summary>
public delegate void PageBytesReader(ReadOnlySpan<byte> page);

/// <summary>An array a snapshot writer copies page by page after the capture instant (see <see cref="PageCapture{T}"/>).</summary>
public interface ICapturedArray
{
    int Length { get; }
    int ItemBytes { get; }
    int Pages { get; }
    int PageItems { get; }
    int PageLength(int page);
    /// <summary>Page <paramref name="page"/>'s bytes as they were at the capture, to <paramref name="read"/>, once a page
    /// (see <see cref="PageCapture{T}.ReadPage"/>: the owner may wait while it runs).</summary>
    void ReadPage(int page, PageBytesReader read);
    /// <summary>Pages the owner copied aside (it changed them before the writer got there).</summary>
    int PagesCopiedAside { get; }
    /// <summary>Of those, the pages its reserve had none ready for (allocated on the owner's thread), and their bytes.</summary>
    int PagesAllocatedAside { get; }
    long BytesAllocatedAside { get; }
    /// <summary>See <see cref="PageCapture{T}.WarmUp"/>.</summary>
    void WarmUp();
}
