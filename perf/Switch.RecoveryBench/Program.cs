using System.Collections.Concurrent;
using System.Diagnostics;
using Switch.Engine.Business;
using Switch.Engine.Client;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Engine.Snapshots;
using Switch.Host.Configuration;
using Switch.Ring;

// Usage: dotnet run -c Release --project perf/Switch.RecoveryBench -- [--transactions N] [--tail N] [--accounts N] [--dir D] [--keep]
//        dotnet run -c Release --project perf/Switch.RecoveryBench -- --restarts N --dir D   (times N restarts of a kept directory)
// Fills a journal with N payments (request + bank answer each, ticks between batches) on the embedded default
// configuration (a table of 2^20), takes a snapshot under load at 90% and one idle at the end, appends a tail, then
// times: a start from the newest snapshot, and a start that replays the whole journal; their state hashes must agree.
var arguments = Args.Parse(args);
if (arguments.Restarts > 0)
{
    // A directory kept by an earlier run (--keep): restarts only, to compare builds on the same history without refilling.
    if (arguments.Directory is null || !Directory.Exists(arguments.Directory)) throw new ArgumentException("--restarts needs --dir of a kept run");
    SwitchConfig kept = HostConfig.EmbeddedDefault().Switch;
    // The state hash: compare it with the one the filling run printed for its whole replay.
    for (int i = 0; i < arguments.Restarts; i++)
        Console.WriteLine($"  state hash {Bench.Restart(arguments.Directory, snapshots: true, kept, $"start {i + 1} from the snapshot"):X16}");
    return 0;
}
string dir = arguments.Directory ?? Path.Combine(Path.GetTempPath(), "switch-recovery-bench-" + Guid.NewGuid().ToString("N"));
SwitchConfig config = HostConfig.EmbeddedDefault().Switch;
Console.WriteLine($"data directory {dir}; {arguments.Transactions:N0} payments then a tail of {arguments.Tail:N0}; " +
    $"table {config.Rules.TransactionCapacity:N0}; {arguments.Accounts:N0} payer accounts");
try
{
    SnapshotResult underLoad, idle;
    var answers = new AnswerQueue();
    var fillTimer = Stopwatch.StartNew();
    using (SwitchEngine engine = SwitchEngine.Start(Bench.Options(dir, snapshots: true), config, answers))
    {
        var driver = new Driver(engine, answers, arguments.Accounts);
        driver.Pay(arguments.Transactions * 9 / 10);
        Task<SnapshotResult> pending = engine.RequestSnapshotAsync("bench-under-load");
        driver.PayUntil(pending, arguments.Transactions / 10);
        underLoad = pending.Result;
        driver.Pay(arguments.Transactions - driver.Paid);
        Bench.Idle(engine);
        idle = engine.RequestSnapshotAsync("bench-idle").Result;
        driver.Pay(arguments.Tail);
        Bench.Idle(engine);
        Console.WriteLine($"refused by the switch: {answers.RefusedTotal:N0} ({string.Join(", ", answers.Refused.Select(r => $"{r.Key} {r.Value:N0}"))})");
        Console.WriteLine($"filled: {driver.Paid:N0} payments, {engine.Logic.EventsApplied:N0} events, last id {engine.Logic.Transactions.LastId:N0}, " +
            $"{fillTimer.Elapsed.TotalSeconds:F1} s");
    }
    Bench.Print("snapshot under load", underLoad);
    Bench.Print("snapshot idle", idle);
    Console.WriteLine($"journal on disk: {Bench.Megabytes(Path.Combine(dir, "journal"))} MB; archive: {Bench.Megabytes(Path.Combine(dir, "archive"))} MB");

    ulong fromSnapshot = Bench.Restart(dir, snapshots: true, config, "start from the snapshot");
    // The whole replay rebuilds the archive from nothing, which removes the snapshots' checkpoints: a kept directory keeps
    // them by replaying a copy of its journal instead.
    string replayDir = arguments.Keep ? Bench.CopyJournal(dir, dir + "-replay") : dir;
    ulong fromJournal;
    try
    {
        fromJournal = Bench.Restart(replayDir, snapshots: false, config, "start replaying the whole journal");
    }
    finally
    {
        if (replayDir != dir) Directory.Delete(replayDir, recursive: true);
    }
    Console.WriteLine(fromSnapshot == fromJournal ? $"state hashes equal: {fromSnapshot:X16}" : $"STATE HASHES DIFFER: {fromSnapshot:X16} vs {fromJournal:X16}");
    return fromSnapshot == fromJournal ? 0 : 1;
}
finally
{
    if (!arguments.Keep && Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
}

internal static class Bench
{
    public static EngineOptions Options(string dir, bool snapshots) => new()
    {
        DataDirectory = dir,
        TickIntervalMs = 0,
        Wait = WaitKind.Blocking,
        Snapshots = new SnapshotOptions { Enabled = snapshots, EveryEvents = 0, AtBatchClose = false, AtStop = false, Keep = 2 },
    };

    public static void Idle(SwitchEngine engine)
    {
        if (!engine.WaitUntilIdle(600_000)) throw new InvalidOperationException($"engine not idle: {engine.Fault}");
    }

    public static ulong Restart(string dir, bool snapshots, SwitchConfig config, string what)
    {
        GC.Collect();
        var timer = Stopwatch.StartNew();
        using SwitchEngine engine = SwitchEngine.Recover(Options(dir, snapshots), config);
        long recoverMs = timer.ElapsedMilliseconds;
        engine.Run();
        long runningMs = timer.ElapsedMilliseconds;
        RecoveryReport r = engine.Recovery;
        Console.WriteLine($"{what}: {runningMs} ms to running (recover {recoverMs} ms; engine's own count {r.RecoveryMs} ms), " +
            $"{r.EventsReplayed:N0} events replayed, snapshot {(r.SnapshotPath is null ? "none" : Path.GetFileName(r.SnapshotPath))}, " +
            $"{engine.Logic.Transactions.LastId:N0} transactions, working set {Environment.WorkingSet >> 20} MiB");
        RecoveryPhases p = r.Phases;
        Console.WriteLine($"  parts: journal opened {p.JournalOpenMs} ms, archive opened {p.ArchiveOpenMs} ms, state restored {p.StateRestoreMs} ms, archive's recovery waited for {p.ArchiveWaitMs} ms, " +
            $"replay {p.ReplayMs} ms; engine built {recoverMs - r.RecoveryMs} ms; threads started {runningMs - recoverMs} ms");
        if (r.SnapshotRestore is { } cost) Console.WriteLine($"  restore: {string.Join(' ', cost.Fields().Select(f => $"{f.Key}={f.Value}"))}");
        return engine.Logic.StateHash();
    }

    public static void Print(string what, SnapshotResult s) =>
        Console.WriteLine($"{what}: logic paused {s.PauseUs:N0} µs ({s.Pause}), written in {s.WriteMs:N0} ms, {s.Bytes >> 20:N0} MiB, " +
            $"{s.PagesCopiedAside} pages copied aside ({s.PagesAllocatedAside} allocated), record {s.Position.RecordNo:N0}");

    /// <summary>The journal and its archive copied to <paramref name="to"/>: what a whole replay reads.</summary>
    public static string CopyJournal(string from, string to)
    {
        if (Directory.Exists(to)) Directory.Delete(to, recursive: true);
        foreach (string source in new[] { Path.Combine(from, "journal"), SnapshotStore.JournalArchiveDirectory(from) })
        {
            if (!Directory.Exists(source)) continue;
            foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
            {
                string target = Path.Combine(to, Path.GetRelativePath(from, file));
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(file, target);
            }
        }
        return to;
    }

    public static long Megabytes(string path) =>
        Directory.Exists(path) ? Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length) >> 20 : 0;
}

/// <summary>Bank requests handed out by the engine, for the driver to answer (the output thread must never publish
/// inputs itself: with both rings full it would wait on the logic that waits on it).</summary>
internal sealed class AnswerQueue : IEventHandler<OutputEvent>
{
    public readonly ConcurrentQueue<long> Requests = new();
    /// <summary>Payments the switch refused (no bank request follows them), by reject code: the report names them.</summary>
    public readonly ConcurrentDictionary<RejectCode, long> Refused = new();
    private long _refusedTotal;
    public long RefusedTotal => Interlocked.Read(ref _refusedTotal);

    public void OnEvent(ref OutputEvent evt, long sequence, bool endOfBatch)
    {
        if (evt.Kind == OutputKind.BankRequest && evt.Operation == BankOperation.Debit) Requests.Enqueue(evt.TransactionId);
        else if (evt.Kind == OutputKind.Answer && evt.Reject != RejectCode.None)
        {
            Refused.AddOrUpdate(evt.Reject, 1, static (_, n) => n + 1);
            Interlocked.Increment(ref _refusedTotal);
        }
    }
}

/// <summary>Publishes payments in batches and answers each one's bank request (succeeded), a tick per batch.</summary>
internal sealed class Driver(SwitchEngine engine, AnswerQueue answers, int accounts)
{
    private const int Batch = 1_000;
    private static readonly string[] Banks = ["102", "103", "105", "308"];
    private static readonly string[] Institutions = ["ALIPAY", "TENPAY", "YEEPAY"];
    private readonly Random _random = new(20261206);
    private long _order;
    // Inputs go in as the adapters' do: through the engine client (a full ring waits the longest the policy allows).
    private readonly EngineClient _client = new(engine, fullRingWaitMs: EngineClient.MaxFullRingWaitMs);
    public long Paid { get; private set; }

    private readonly struct PaymentFill(string institution, string orderNo, string bank, string account, long amountFen) : IInputFill
    {
        public void Fill(ref InputEvent slot, long correlationId) =>
            slot.PrepareInstitutionRequest(correlationId, RequestType.AgreementPayment, amountFen, System.Text.Encoding.ASCII.GetBytes(institution),
                orderNo, null, bank, account, "CNY", null, 0);
    }

    private readonly struct SuccessFill(long transactionId) : IInputFill
    {
        public void Fill(ref InputEvent slot, long correlationId) => slot.PrepareBankResult(transactionId, BankOperation.Debit, BankReply.Succeeded, reason: (string?)null);
    }

    public void Pay(long count)
    {
        for (long done = 0; done < count;)
        {
            int n = (int)Math.Min(Batch, count - done);
            PayBatch(n);
            done += n;
        }
    }

    /// <summary>Pays until <paramref name="until"/> completes (the load a snapshot is taken under), at most <paramref name="max"/>.</summary>
    public void PayUntil(Task until, long max)
    {
        for (long done = 0; done < max && !until.IsCompleted; done += Batch) PayBatch(Batch);
    }

    private void PayBatch(int n)
    {
        for (int i = 0; i < n; i++)
        {
            long amountFen = 100 + _random.Next(10_000);
            var payment = new PaymentFill(Institutions[_order % 3], $"B{_order}", Banks[_order & 3], $"62220{_random.Next(accounts):D10}", amountFen);
            _order++;
            _client.Publish(ref payment);
        }
        Paid += n;
        int answered = 0;
        long refusedBefore = _refusedSeen;
        long deadline = Environment.TickCount64 + 60_000;
        while (answered + (answers.RefusedTotal - refusedBefore) < n)
        {
            if (answers.Requests.TryDequeue(out long id))
            {
                var answer = new SuccessFill(id);
                _client.Publish(ref answer);
                answered++;
            }
            else if (Environment.TickCount64 > deadline || engine.Fault is not null)
            {
                throw new InvalidOperationException($"bank requests stopped coming ({answered} of {n}, refused {answers.RefusedTotal - refusedBefore}): {engine.Fault}");
            }
            else
            {
                Thread.Yield();
            }
        }
        _refusedSeen = answers.RefusedTotal;
        engine.PublishTick();
    }

    private long _refusedSeen;
}

internal sealed record Args(long Transactions, long Tail, int Accounts, string? Directory, bool Keep, int Restarts)
{
    public static Args Parse(string[] args)
    {
        long transactions = 3_000_000, tail = 100_000;
        int accounts = 1_000_000;
        string? directory = null;
        bool keep = false;
        int restarts = 0;
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--transactions": transactions = long.Parse(Value()); break;
                case "--tail": tail = long.Parse(Value()); break;
                case "--accounts": accounts = int.Parse(Value()); break;
                case "--dir": directory = Value(); break;
                case "--keep": keep = true; break;
                case "--restarts": restarts = int.Parse(Value()); break;
                default: throw new ArgumentException($"unknown option {args[i]}: --transactions N --tail N --accounts N --dir D --keep --restarts N");
            }
        }
        if (transactions < 10 || tail < 0 || accounts < 1) throw new ArgumentException("--transactions at least 10, --tail and --accounts positive");
        if (restarts is < 0 or > 100) throw new ArgumentException("--restarts from 0 to 100");
        return new Args(transactions, tail, accounts, directory, keep, restarts);
    }
}
