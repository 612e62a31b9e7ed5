using Switch.Engine.Snapshots;

namespace Switch.Engine.Tests.Snapshots;

/// <summary>Copy-on-write capture of an array: the writer gets every page as it was at the capture, and the pages the
/// owner copies aside come from a reserve the writer gives them back to, so a snapshot after the first allocates none,
/// and none at all once the reserve was filled at start.</summary>
public sealed class PageCaptureTests
{
    private readonly record struct Item(long A, long B);

    [Fact]
    public void Pages_copied_aside_are_the_capture_instant_and_a_later_capture_allocates_none()
    {
        // Three full pages and a short one (its page aside is a whole page: the short page is its first items).
        int pageItems = PageCapture<Item>.MaxPageItems;
        var live = new Item[3 * pageItems + 100];
        var capture = new PageCapture<Item>(live); // a reserve of its own, empty
        for (int round = 1; round <= 3; round++)
        {
            for (int i = 0; i < live.Length; i++) live[i] = new Item(round, i);
            capture.Begin();
            long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
            // The owner changes an item of every page before the writer copies any: each is copied aside first.
            for (int p = 0; p < capture.Pages; p++)
            {
                int index = Math.Min(p * pageItems + 7, live.Length - 1);
                capture.Touch(index);
                live[index] = new Item(-round, -1);
            }
            long allocatedByTouch = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
            Assert.Equal(capture.Pages, capture.PagesCopiedAside);
            // The first capture found the reserve empty: it allocated every page, counted; the later ones reuse them.
            Assert.Equal(round == 1 ? capture.Pages : 0, capture.PagesAllocatedAside);
            Assert.Equal(round == 1 ? capture.Pages * (long)pageItems * 16 : 0, capture.BytesAllocatedAside);
            if (round > 1) Assert.Equal(0, allocatedByTouch); // the pages the last capture returned

            var into = new Item[pageItems];
            for (int p = 0; p < capture.Pages; p++)
            {
                int length = capture.PageLength(p);
                CopyPage(capture, p, into);
                for (int i = 0; i < length; i++) Assert.Equal(new Item(round, p * pageItems + i), into[i]);
            }
        }
    }

    [Fact]
    public void A_capture_reused_after_its_writer_stopped_mid_copy_starts_whole_and_each_page_aside_goes_back_once()
    {
        int pageItems = PageCapture<Item>.MaxPageItems;
        var live = new Item[5 * pageItems];
        var capture = new PageCapture<Item>(live);
        var into = new Item[pageItems];

        // The first snapshot: the owner copies pages 0 to 3 aside, the writer takes page 0 (from aside) and page 4 (live),
        // then stops (its disk failed): pages 1 to 3 stay aside, never taken.
        for (int i = 0; i < live.Length; i++) live[i] = new Item(1, i);
        capture.Begin();
        for (int p = 0; p < 4; p++)
        {
            capture.Touch(p * pageItems);
            live[p * pageItems] = new Item(-1, -1);
        }
        CopyPage(capture, 0, into);
        Assert.Equal(new Item(1, 0), into[0]);
        CopyPage(capture, 4, into);
        Assert.Equal(4, capture.PagesCopiedAside);

        // The next snapshot on the same capture: no page counts as copied (the owner copies each aside again before its
        // change), and the writer gets every page as it was at this capture. A page array the pool got back twice (a
        // page the writer returned, returned again by the reset) would be handed out for two pages here, and one of them
        // would come back with the other's items.
        for (int i = 0; i < live.Length; i++) live[i] = new Item(2, i);
        capture.Begin();
        Assert.Equal(0, capture.PagesCopiedAside);
        for (int p = 0; p < capture.Pages; p++)
        {
            capture.Touch(p * pageItems + 1);
            live[p * pageItems + 1] = new Item(-2, -1);
        }
        Assert.Equal(capture.Pages, capture.PagesCopiedAside);
        for (int p = 0; p < capture.Pages; p++)
        {
            CopyPage(capture, p, into);
            for (int i = 0; i < pageItems; i++) Assert.Equal(new Item(2, p * pageItems + i), into[i]);
        }
    }

    [Fact]
    public void With_its_reserve_filled_first_the_first_capture_allocates_nothing_and_a_reserve_short_of_pages_allocates_the_rest_counted()
    {
        int pageItems = PageCapture<Item>.MaxPageItems;
        var live = new Item[6 * pageItems];
        var reserve = new AsideReserve<Item>(pageItems, maxPages: 6);
        var capture = new PageCapture<Item>(live, reserve);
        Assert.Equal(4L * pageItems * 16, reserve.Fill(4)); // keeps 4 of its 6 at most from now on
        Assert.Equal(4, reserve.Ready);
        Assert.Equal(0, reserve.Fill(4)); // filled already

        capture.Begin();
        long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        for (int p = 0; p < 4; p++) capture.Touch(p * pageItems);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - allocatedBefore);
        Assert.Equal(0, capture.PagesAllocatedAside);
        // Two more than it holds: allocated on the spot, never a failure, and counted.
        for (int p = 4; p < 6; p++) capture.Touch(p * pageItems);
        Assert.Equal(6, capture.PagesCopiedAside);
        Assert.Equal(2, capture.PagesAllocatedAside);
        Assert.Equal(2L * pageItems * 16, capture.BytesAllocatedAside);

        // The writer gives the six back: four are kept (its capacity), two dropped.
        var into = new Item[pageItems];
        for (int p = 0; p < capture.Pages; p++) CopyPage(capture, p, into);
        Assert.Equal(4, reserve.Ready);
        capture.Begin();
        Assert.Equal(0, capture.PagesAllocatedAside);
    }

    [Fact]
    public void A_reserve_refuses_a_page_of_another_length_and_a_capture_a_reserve_of_shorter_pages()
    {
        var reserve = new AsideReserve<Item>(512, maxPages: 2);
        Assert.Throws<ArgumentException>(() => reserve.Return(new Item[256]));
        Assert.Throws<ArgumentException>(() => new PageCapture<Item>(new Item[4096], reserve));
        Assert.Equal(0, reserve.Ready);
    }

    /// <summary>The writer's read of a page, copied into <paramref name="into"/>.</summary>
    private static void CopyPage(PageCapture<Item> capture, int page, Item[] into) =>
        capture.ReadPage(page, bytes => bytes.CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(into.AsSpan())));
}

/// <summary>The archive's checkpoint at a snapshot writes its store's mutable region at once: it is kept small.</summary>
public sealed class ArchiveFoldOverTests : IDisposable
{
    private readonly Switch.Engine.Tests.Support.TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_full_archive_folds_over_at_most_its_bound_at_a_snapshot()
    {
        // 1 MiB of memory in 4 KiB pages: FASTER's default (90% mutable) would fold over about 900 KiB.
        var sizing = Switch.Engine.Archive.ArchiveSizing.Small with { MemoryBytes = 1L << 20, MaxMutableBytes = 16L << 10 };
        using var archive = Switch.Engine.Archive.FasterTransactionArchive.Create(_dir.Sub("archive"), sizing);
        for (int id = 1; id <= 20_000; id++) // about 8 MB of records: memory full many times over
        {
            Switch.Engine.Business.Transaction tx = default;
            tx.Id = id;
            tx.OrderNo.Set($"O{id}");
            archive.Put(new Switch.Engine.Business.ScopedKey(1, tx.OrderNo.Span), tx);
        }
        ArchiveCapture capture = archive.BeginCapture(new StateWriter());
        capture.Completion.GetAwaiter().GetResult();
        capture.End();
        Assert.InRange(capture.FoldOverBytes, 1, sizing.MaxMutableBytes + sizing.PageBytes); // the tail's page may be partly filled
    }
}
