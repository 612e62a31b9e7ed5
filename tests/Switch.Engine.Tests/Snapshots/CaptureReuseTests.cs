using Switch.Engine.Archive;
using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Snapshots;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Snapshots;

/// <summary>
/// The copy-on-write captures are made once, with the arrays they capture, and reused by every snapshot: a snapshot
/// written by reused captures (after earlier snapshots, one of whose writers failed in the middle of its copying) is
/// the same file as one a fresh logic writes at the same position, and restores to the same state; and a capture after
/// the first allocates next to nothing in the logic's pause.
/// </summary>
public sealed class CaptureReuseTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>A ring of 4 pages, a parked table of 12, daily usage of 8, deadlines of 4 each; orders forgotten after
    /// 6,000 transactions, so the filter's generations (4 pages each) fill and are cleared while snapshots run.</summary>
    private static SwitchConfig Config()
    {
        SwitchConfig small = TestConfigs.Small(transactionCapacity: 4096);
        return small with { Rules = small.Rules with { OrderMemoryTransactions = 6_000 } };
    }

    private static ArchiveSizing Sizing(long filterBytes = ArchiveSizing.FilterGenerations * 64 * 512) =>
        ArchiveSizing.Small with { FilterBytes = filterBytes };

    /// <summary>One logic and its archive on disk, driven by the same deterministic work as any other built alike.</summary>
    private sealed class Switch : IDisposable
    {
        public readonly SwitchConfig Config;
        public readonly FasterTransactionArchive Archive;
        public readonly SwitchLogic Logic;
        public readonly string ArchiveDirectory;
        private readonly StateWriter _state = new();
        /// <summary>Work steps applied (each a payment, most answered, some ticks between).</summary>
        public long Steps { get; private set; }
        private long _nowUs = LogicHarness.StartUs;

        public Switch(string directory, SwitchConfig config, ArchiveSizing sizing)
        {
            Config = config;
            ArchiveDirectory = directory;
            Archive = FasterTransactionArchive.Create(directory, sizing);
            Logic = new SwitchLogic(config, new DiscardingSink(), Archive);
        }

        /// <summary>The next <paramref name="count"/> steps of the work: payments from 3,000 accounts (the daily usage
        /// touched at random), four in five answered, a 10 ms tick every tenth (deadlines come due, the unanswered
        /// are queried and park when the ring comes round to them).</summary>
        public void Run(int count)
        {
            for (int i = 0; i < count; i++)
            {
                long n = ++Steps;
                var pay = LogicHarness.Request(RequestType.AgreementPayment, n % 3 == 0 ? "TENPAY" : "ALIPAY", $"O{n}", 100 + n % 900,
                    bank: n % 2 == 0 ? "102" : "308", account: $"62220202{n % 3_000:D8}");
                Apply(ref pay, n);
                long id = Logic.Transactions.LastId;
                if (n % 5 != 0 && id > 0 && !Logic.Transactions.ById(id).IsFinal)
                {
                    var answer = new InputEvent { Kind = EventKind.BankResult, TransactionId = id, Operation = BankOperation.Debit, Reply = BankReply.Succeeded };
                    Apply(ref answer, 0);
                }
                if (n % 10 == 0)
                {
                    _nowUs += 10_000;
                    var tick = new InputEvent { Kind = EventKind.Tick };
                    Apply(ref tick, 0);
                }
            }
        }

        private void Apply(ref InputEvent e, long correlationId)
        {
            e.TimestampUs = _nowUs;
            e.CorrelationId = correlationId;
            Logic.Apply(ref e);
        }

        private SnapshotPosition Position => new(Logic.EventsApplied, Logic.EventsApplied * 64, Logic.EventsApplied, Steps);

        /// <summary>A snapshot as the engine's writer takes it, into <paramref name="path"/>; <paramref name="beforePage"/>
        /// runs before each page the writer copies, given the pages copied so far and how many there are (the logic going
        /// on meanwhile: its changes copy pages aside), and may throw (the writer failing mid-copy). Returns the state
        /// hash at the capture instant and the pages the logic copied aside.</summary>
        public (ulong Hash, int Aside) Snapshot(string path, Action<int, int>? beforePage = null)
        {
            ulong hash = Logic.StateHash();
            SnapshotPosition position = Position;
            SwitchLogic.Capture capture = Logic.BeginCapture(_state);
            try
            {
                capture.Archive.WriteState(_state);
                int pages = capture.Arrays.Sum(a => a.Pages);
                int copied = 0;
                ICapturedArray[] arrays = capture.Arrays.Select(a => (ICapturedArray)new Interleaved(a, () => beforePage?.Invoke(copied++, pages))).ToArray();
                SnapshotFile.Write(path, position, Config.ToJsonUtf8(), _state.Written, arrays, () => [], () =>
                {
                    capture.Archive.Completion.GetAwaiter().GetResult();
                    return capture.Archive.CheckpointToken;
                });
                return (hash, capture.Arrays.Sum(a => a.PagesCopiedAside));
            }
            finally
            {
                // A failed writing still lets the archive's checkpoint finish: the next capture cannot start before.
                capture.Archive.Completion.ContinueWith(_ => { }).Wait(TimeSpan.FromSeconds(60));
                LastAside = capture.Arrays.Sum(a => a.PagesCopiedAside);
                capture.End();
            }
        }

        /// <summary>The pages the logic copied aside in the last snapshot, whether its writing failed or not.</summary>
        public int LastAside { get; private set; }

        public void Dispose() => Archive.Dispose();
    }

    /// <summary>A captured array whose writer lets the logic run before each page it copies.</summary>
    private sealed class Interleaved(ICapturedArray inner, Action beforePage) : ICapturedArray
    {
        public int Length => inner.Length;
        public int ItemBytes => inner.ItemBytes;
        public int Pages => inner.Pages;
        public int PageItems => inner.PageItems;
        public int PagesCopiedAside => inner.PagesCopiedAside;
        public int PagesAllocatedAside => inner.PagesAllocatedAside;
        public long BytesAllocatedAside => inner.BytesAllocatedAside;
        public void WarmUp() => inner.WarmUp();
        public int PageLength(int page) => inner.PageLength(page);

        public void ReadPage(int page, PageBytesReader read)
        {
            beforePage();
            inner.ReadPage(page, read);
        }
    }

    [Fact]
    public void Reused_captures_after_a_writer_failed_mid_copy_write_the_bytes_a_fresh_logic_writes_and_restore_to_its_state()
    {
        SwitchConfig config = Config();
        string last = Path.Combine(_dir.Path, "reused.snap");
        ulong hash;
        long stepsAtCapture;
        using (var reused = new Switch(_dir.Sub("reused"), config, Sizing()))
        {
            reused.Run(3_000);
            // Three snapshots, the logic working while each is copied: pages copied aside in every one.
            for (int s = 1; s <= 3; s++)
            {
                (_, int aside) = reused.Snapshot(Path.Combine(_dir.Path, $"earlier-{s}.snap"), (_, _) => reused.Run(25));
                Assert.True(aside > 0, $"snapshot {s}: no page copied aside");
                reused.Run(500);
            }
            // A writer that fails with a quarter of its pages left (a disk error, in the filter's generations): pages
            // copied by it, pages copied aside by the logic and never taken, pages untouched.
            var failure = Assert.Throws<IOException>(() => reused.Snapshot(Path.Combine(_dir.Path, "failed.snap"), (copied, pages) =>
            {
                reused.Run(25);
                if (copied == pages * 3 / 4) throw new IOException("disk full (test)");
            }));
            Assert.Equal("disk full (test)", failure.Message);
            Assert.True(reused.LastAside > 0, "the failed snapshot copied no page aside");
            reused.Run(700);
            stepsAtCapture = reused.Steps;
            (hash, int lastAside) = reused.Snapshot(last, (_, _) => reused.Run(25));
            Assert.True(lastAside > 0, "the last snapshot copied no page aside");
        }

        // A fresh logic given the same work up to the same instant writes the same bytes with captures used once.
        string fresh = Path.Combine(_dir.Path, "fresh.snap");
        using (var once = new Switch(_dir.Sub("fresh"), config, Sizing()))
        {
            once.Run((int)stepsAtCapture);
            Assert.Equal(hash, once.Snapshot(fresh).Hash);
        }
        Assert.Equal(File.ReadAllBytes(fresh), File.ReadAllBytes(last));

        // And the file restores to the state at its instant, with the archive at the same instant's checkpoint (the fresh
        // one's: the reused switch's archive went on forgetting orders while the file was written, past its checkpoint).
        using SnapshotFile.Opened opened = SnapshotFile.Open(last);
        using FasterTransactionArchive archive = FasterTransactionArchive.OpenAtCheckpoint(_dir.Sub("fresh"), Sizing(), SnapshotStore.ArchiveToken(fresh)!);
        SwitchLogic restored = SwitchLogic.Restore(opened.Config, opened.State, opened.Arrays, new DiscardingSink(), archive);
        opened.Arrays.ReadViews();
        opened.Arrays.VerifyEnd();
        Assert.Equal(hash, restored.StateHash());
    }

    [Fact]
    public void A_capture_after_the_first_allocates_under_a_kibibyte_and_a_half_whatever_the_arrays_size()
    {
        // Captures made per snapshot allocated their per-page states in every pause: over 24 KiB for the larger switch
        // here (a filter of 16 MiB, 2,048 pages; a table of 2^16), a sixteenth of that for the smaller one.
        long[] small = LaterCapturesAllocate("small", transactionCapacity: 1 << 12, filterBytes: 1L << 20);
        long[] large = LaterCapturesAllocate("large", transactionCapacity: 1 << 16, filterBytes: 16L << 20);
        Assert.All(large, bytes => Assert.InRange(bytes, 0, MaxBytesPerCapture));
        Assert.Equal(small, large); // none of it is per page
    }

    /// <summary>The capture's own few objects (the capture and its list of arrays, the archive's mark and its tasks, the
    /// closures that end them): measured 1,024 bytes.</summary>
    private const long MaxBytesPerCapture = 1536;

    /// <summary>What the logic thread allocates in each of three captures after a first one, with the same work before each.</summary>
    private long[] LaterCapturesAllocate(string name, int transactionCapacity, long filterBytes)
    {
        SwitchConfig small = TestConfigs.Small(transactionCapacity);
        using var live = new Switch(_dir.Sub(name), small with { Rules = small.Rules with { MaxTrackedAccounts = transactionCapacity / 2 } },
            Sizing(filterBytes));
        var state = new StateWriter();
        var allocated = new long[4];
        for (int s = 0; s < allocated.Length; s++)
        {
            live.Run(1_000);
            long before = GC.GetAllocatedBytesForCurrentThread();
            SwitchLogic.Capture capture = live.Logic.BeginCapture(state);
            allocated[s] = GC.GetAllocatedBytesForCurrentThread() - before;
            capture.Archive.Completion.GetAwaiter().GetResult();
            capture.Archive.WriteState(state);
            capture.End();
        }
        return allocated[1..];
    }
}
