using Switch.Engine.Archive;
using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Snapshots;
using Switch.Engine.Tests.Support;
using Switch.Ring;

namespace Switch.Engine.Tests.Archive;

/// <summary>
/// The archive's store writes leave the logic thread for a writer thread. Whatever the writer's progress, the logic
/// finds every order it handed over (the newest write of it), waits for room rather than overrun the writer, and a
/// snapshot of the archive is the same bytes as one of an archive the logic wrote itself.
/// </summary>
public sealed class ArchiveHandoffTests : IDisposable
{
    private const int Entries = 64;
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Records the writes it applies; holds the first one until released (a writer that fell behind).</summary>
    private sealed class GatedWriter
    {
        public readonly ManualResetEventSlim Open = new(false);
        public readonly List<(string Order, long Id, long AmountFen, bool IsPut)> Applied = [];
        /// <summary>Every write announced (P) and applied (W), in the writer thread's order, by transaction id.</summary>
        public readonly List<(char What, long Id)> Seen = [];
        public Exception? FailWith;
    }

    private readonly struct Writer(GatedWriter gate) : IArchiveWriter
    {
        public void Write(ref ArchiveWrite write)
        {
            if (!gate.Open.Wait(60_000)) throw new TimeoutException("the test never opened the writer");
            if (gate.FailWith is { } e) throw e;
            lock (gate.Applied)
            {
                gate.Applied.Add((write.Tx.OrderNo.ToString(), write.Tx.Id, write.Tx.AmountFen, write.IsPut));
                gate.Seen.Add(('W', write.Tx.Id));
            }
        }

        public void Prefetch(in ArchiveWrite ahead)
        {
            lock (gate.Applied) gate.Seen.Add(('P', ahead.Tx.Id));
        }
    }

    internal static ScopedKey Key(string order) => new(1, Text32.From(order).Span);

    internal static Transaction Tx(long id, string order, long amountFen)
    {
        var tx = new Transaction { Id = id, Status = TransactionStatus.Succeeded, AmountFen = amountFen };
        tx.OrderNo.Set(order);
        return tx;
    }

    private static void Hand(ArchiveHandoff<Writer> handoff, bool isPut, long id, string order, long amountFen)
    {
        ScopedKey key = Key(order);
        handoff.Hand(isPut, key, key.Hash64(), forgetBelowId: 0, Tx(id, order, amountFen));
    }

    private static long? Found(ArchiveHandoff<Writer> handoff, string order)
    {
        ScopedKey key = Key(order);
        return handoff.TryGet(key, key.Hash64(), out Transaction tx) ? tx.AmountFen : null;
    }

    [Fact]
    public void Writes_the_writer_has_not_applied_are_found_the_newest_of_an_order_first_and_applied_in_order()
    {
        var gate = new GatedWriter();
        using var handoff = new ArchiveHandoff<Writer>(Entries, new Writer(gate), "test-archive-writer");
        for (int i = 0; i < 40; i++) Hand(handoff, isPut: true, i + 1, $"O{i}", 100 + i);
        Hand(handoff, isPut: false, 6, "O5", 999); // a refund's bookkeeping on an archived original

        Assert.Empty(gate.Applied); // the writer is held: everything is still only in the ring
        Assert.Equal(999, Found(handoff, "O5"));
        Assert.Equal(139, Found(handoff, "O39"));
        Assert.Null(Found(handoff, "O40"));
        Assert.Equal(41, handoff.Lag);

        gate.Open.Set();
        handoff.Drain();
        Assert.Equal(0, handoff.Lag);
        Assert.Equal(41, gate.Applied.Count);
        Assert.Equal(Enumerable.Range(0, 40).Select(i => ($"O{i}", (long)i + 1, 100L + i, true)), gate.Applied.Take(40));
        Assert.Equal(("O5", 6L, 999L, false), gate.Applied[40]);
    }

    [Fact]
    public void The_writer_hears_of_each_write_once_a_few_places_before_it_applies_it_and_never_of_one_not_handed_over()
    {
        var gate = new GatedWriter();
        using var handoff = new ArchiveHandoff<Writer>(Entries, new Writer(gate), "test-archive-writer");
        for (int i = 0; i < 40; i++) Hand(handoff, isPut: true, i + 1, $"O{i}", i); // one batch of 40 once drained
        gate.Open.Set();
        handoff.Drain();
        for (int i = 40; i < 45; i++) Hand(handoff, isPut: true, i + 1, $"O{i}", i); // a later, short batch
        handoff.Drain();

        List<(char What, long Id)> seen;
        lock (gate.Applied) seen = [.. gate.Seen];
        Assert.Equal(Enumerable.Range(1, 45).Select(i => (long)i), seen.Where(s => s.What == 'W').Select(s => s.Id));
        Assert.Equal(Enumerable.Range(1, 45).Select(i => (long)i), seen.Where(s => s.What == 'P').Select(s => s.Id));
        long applied = 0;
        foreach ((char what, long id) in seen)
        {
            if (what == 'W') applied = id;
            // Announced before its write, at most 4 places past the write that comes next (applied + 1).
            else Assert.InRange(id, applied + 1, applied + 1 + 4);
        }
    }

    [Fact]
    public void A_write_leaves_the_index_a_lap_later_unless_a_newer_write_of_its_order_came_after_it()
    {
        var gate = new GatedWriter();
        gate.Open.Set();
        using var handoff = new ArchiveHandoff<Writer>(Entries, new Writer(gate), "test-archive-writer");
        Hand(handoff, isPut: true, 1, "FIRST", 1); // sequence 0
        Hand(handoff, isPut: true, 2, "TWICE", 2); // sequence 1
        for (int i = 2; i < 10; i++) Hand(handoff, isPut: true, i + 1, $"P{i}", i);
        Hand(handoff, isPut: false, 2, "TWICE", 20); // sequence 10: replaces sequence 1's entry
        for (int i = 11; i < Entries + 2; i++) Hand(handoff, isPut: true, i + 1, $"P{i}", i); // sequences 0 and 1 reused

        Assert.Null(Found(handoff, "FIRST")); // a lap old: applied, the store answers for it
        Assert.Equal(20, Found(handoff, "TWICE")); // its newest write is within the lap
        for (int i = 11; i < Entries + 2; i++) Assert.Equal(i, Found(handoff, $"P{i}"));

        for (int i = Entries + 2; i < Entries + 11; i++) Hand(handoff, isPut: true, i + 1, $"P{i}", i);
        Assert.Null(Found(handoff, "TWICE"));
        handoff.Drain();
        Assert.Equal(Entries + 11, gate.Applied.Count);
    }

    [Fact]
    public void Orders_whose_hashes_share_a_home_or_agree_are_told_apart_across_laps_of_removals()
    {
        var gate = new GatedWriter();
        gate.Open.Set();
        using var handoff = new ArchiveHandoff<Writer>(Entries, new Writer(gate), "test-archive-writer");
        // 24 orders in five hashes whose high halves (the index's home) are two: long runs of collisions that each lap's
        // removals shift back through, and orders with one hash told apart only by their keys.
        const int Orders = 24;
        static ulong HashOf(int order) => (ulong)(order % 2) << 32 | (uint)(order % 5);
        var newest = new (long Seq, long AmountFen)[Orders];
        Array.Fill(newest, (-1L, 0L));
        var random = new Random(7);
        for (long seq = 0; seq < 10 * Entries; seq++)
        {
            int order = random.Next(Orders);
            ScopedKey key = Key($"C{order}");
            handoff.Hand(isPut: seq % 3 != 0, key, HashOf(order), forgetBelowId: 0, Tx(seq + 1, $"C{order}", 1_000 + seq));
            newest[order] = (seq, 1_000 + seq);
            for (int o = 0; o < Orders; o++)
            {
                bool inLap = newest[o].Seq >= 0 && newest[o].Seq > seq - Entries;
                bool found = handoff.TryGet(Key($"C{o}"), HashOf(o), out Transaction tx);
                Assert.True(inLap == found, $"order C{o} (newest write {newest[o].Seq}) found {found} after write {seq}");
                if (found) Assert.Equal(newest[o].AmountFen, tx.AmountFen);
            }
        }
        handoff.Drain();
    }

    [Fact]
    public async Task The_logic_waits_for_room_once_the_writer_is_a_lap_behind()
    {
        var gate = new GatedWriter();
        using var handoff = new ArchiveHandoff<Writer>(Entries, new Writer(gate), "test-archive-writer");
        for (int i = 0; i < Entries; i++) Hand(handoff, isPut: true, i + 1, $"O{i}", i);
        Task next = Task.Run(() => Hand(handoff, isPut: true, Entries + 1, "LAP", 7)); // needs the first write's slot
        Assert.False(await Task.WhenAny(next, Task.Delay(300)) == next, "the handoff overran a writer a lap behind");
        Assert.Equal(0, Found(handoff, "O0"));

        gate.Open.Set();
        Assert.True(await Task.WhenAny(next, Task.Delay(30_000)) == next, "the handoff stayed shut after the writer moved");
        Assert.Equal(7, Found(handoff, "LAP"));
        handoff.Drain();
        Assert.Equal(Entries + 1, gate.Applied.Count);
    }

    [Fact]
    public async Task With_the_default_lap_the_logic_rides_out_a_writer_standing_still_for_300_ms_of_the_design_peak()
    {
        // 180,000 transactions a second each move one to the archive once the table is full: a writer that stands still
        // for 300 ms (a quiet run saw 252) must not stop the logic, and with it every transaction. 4,096 held 23 ms.
        const int designPeakPerSecond = 180_000;
        const int standstillMs = 300;
        const int writes = designPeakPerSecond / 1000 * standstillMs;
        var gate = new GatedWriter();
        using var handoff = new ArchiveHandoff<Writer>(new ArchiveSizing().HandoffEntries, new Writer(gate), "test-archive-writer");
        Task handing = Task.Run(() =>
        {
            for (int i = 0; i < writes; i++) Hand(handoff, isPut: true, i + 1, $"O{i}", i);
        });
        bool handed = await Task.WhenAny(handing, Task.Delay(TimeSpan.FromSeconds(30))) == handing;
        gate.Open.Set(); // lets a logic that waited for room finish, so a failure ends rather than hangs
        Assert.True(handed, $"the logic waited for a held writer within {writes} writes");
        Assert.Equal(writes - 1, Found(handoff, $"O{writes - 1}"));
        handoff.Drain();
        Assert.Equal(writes, gate.Applied.Count);
    }

    /// <summary>Applies every write at once but holds the first until <see cref="Go"/> and the one of transaction
    /// <see cref="HoldAt"/> until <see cref="Release"/>.</summary>
    private sealed class HoldingWriterState
    {
        public long HoldAt;
        public readonly ManualResetEventSlim Go = new(false);
        public readonly ManualResetEventSlim Held = new(false);
        public readonly ManualResetEventSlim Release = new(false);
    }

    private readonly struct HoldingWriter(HoldingWriterState state) : IArchiveWriter
    {
        public void Write(ref ArchiveWrite write)
        {
            if (write.Tx.Id == 1 && !state.Go.Wait(60_000)) throw new TimeoutException("the test never let the writer go");
            if (write.Tx.Id != state.HoldAt) return;
            state.Held.Set();
            if (!state.Release.Wait(60_000)) throw new TimeoutException("the test never released the writer");
        }

        public void Prefetch(in ArchiveWrite ahead) { }
    }

    [Fact]
    public void A_writer_far_behind_frees_room_and_shows_progress_every_batch_not_once_for_all_it_finds()
    {
        // A writer that fell behind finds a long run of writes published. It says how far it got (the logic's room, the
        // stall watchdog's progress) every WriterBatchMax writes: once for the whole run, it showed none, and freed no
        // room, until it had applied all of them.
        const int batchMax = ArchiveHandoff<HoldingWriter>.WriterBatchMax;
        const int entries = 8 * batchMax;
        const int holdAt = 4 * batchMax + 10;
        var state = new HoldingWriterState { HoldAt = holdAt };
        using var handoff = new ArchiveHandoff<HoldingWriter>(entries, new HoldingWriter(state), "test-archive-writer");
        try
        {
            for (int i = 1; i <= entries; i++)
            {
                ScopedKey key = Key($"O{i}");
                handoff.Hand(isPut: true, key, key.Hash64(), forgetBelowId: 0, Tx(i, $"O{i}", i));
            }
            Assert.Equal(-1, handoff.Applied); // the writer held at the first write
            Assert.Equal(entries, handoff.PublishedNotApplied); // every write published
            state.Go.Set();
            Assert.True(state.Held.Wait(30_000), "the writer never reached the held write");
            // Held at the write of sequence holdAt - 1: every batch before the one holding it is applied and said so.
            Assert.InRange(handoff.Applied, holdAt - 1 - batchMax, holdAt - 2);
        }
        finally
        {
            state.Go.Set();
            state.Release.Set();
        }
        handoff.Drain();
        Assert.Equal(entries - 1, handoff.Applied);
    }

    [Fact]
    public void A_failing_writer_stops_the_logic_at_its_next_wait_or_hand_over()
    {
        var gate = new GatedWriter { FailWith = new IOException("disk gone") };
        var handoff = new ArchiveHandoff<Writer>(Entries, new Writer(gate), "test-archive-writer");
        Hand(handoff, isPut: true, 1, "O1", 1);
        gate.Open.Set();
        var drained = Assert.Throws<InvalidOperationException>(handoff.Drain);
        Assert.IsType<IOException>(drained.InnerException);
        Assert.Throws<RingHaltedException>(() => { for (int i = 0; i < 2 * Entries; i++) Hand(handoff, isPut: true, i + 2, $"O{i + 2}", i); });
        handoff.Dispose();
    }

    [Fact]
    public void A_snapshot_of_the_archive_is_the_same_bytes_whether_the_logic_or_a_writer_thread_wrote_the_store()
    {
        using FasterTransactionArchive handed = FasterTransactionArchive.Create(_dir.Sub("handed"), ArchiveSizing.Small);
        using FasterTransactionArchive inline = FasterTransactionArchive.Create(_dir.Sub("inline"), ArchiveSizing.Small with { HandoffEntries = 0 });
        const int count = 5_000; // many segments, many marks, and forgetting as it goes
        for (int id = 1; id <= count; id++)
        {
            foreach (FasterTransactionArchive archive in new[] { handed, inline })
            {
                Transaction tx = Tx(id, $"O{id}", id * 3L);
                archive.Put(Key($"O{id}"), tx);
                if (id % 7 == 0)
                {
                    tx.RefundedFen = id;
                    archive.Update(Key($"O{id}"), tx);
                }
                archive.ForgetBelow(Math.Max(1, id - 2_000));
            }
        }
        // The last horizon jumps past two marks with no write after it: the capture itself must apply it.
        handed.ForgetBelow(count - 100);
        inline.ForgetBelow(count - 100);
        (byte[] State, byte[] Arrays) handedCapture = Capture(handed);
        (byte[] State, byte[] Arrays) inlineCapture = Capture(inline);
        Assert.Equal(inlineCapture.State, handedCapture.State);
        Assert.Equal(inlineCapture.Arrays, handedCapture.Arrays);
        Assert.Equal((inline.BeginAddress, inline.TailAddress), (handed.BeginAddress, handed.TailAddress));
        Assert.True(handed.BeginAddress > 0, "the archive should have forgotten its oldest segments");
        Assert.True(handed.TryGet(Key("O4998"), out Transaction back) && back.RefundedFen == 4998);
    }

    private static (byte[] State, byte[] Arrays) Capture(FasterTransactionArchive archive)
    {
        var w = new StateWriter();
        ArchiveCapture capture = archive.BeginCapture(w);
        var arrays = new List<byte>();
        foreach (ICapturedArray array in capture.Arrays)
        {
            for (int page = 0; page < array.Pages; page++)
            {
                var bytes = new byte[array.PageLength(page) * array.ItemBytes];
                array.ReadPage(page, read => read.CopyTo(bytes));
                arrays.AddRange(bytes);
            }
        }
        capture.WriteState(w);
        Assert.True(capture.Completion.Wait(30_000));
        capture.End();
        return (w.Written.ToArray(), arrays.ToArray());
    }
}
