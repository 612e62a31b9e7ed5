using Switch.Host;
using System.Buffers.Binary;
using Switch.Host.Tests.EndToEnd;
using Switch.Host.Tests.Reliability;
using Xunit.Abstractions;

namespace Switch.Host.Tests.Crash;

/// <summary>
/// Crash safety of the real switch process: SIGKILL under load at random instants, at the two instants of a group
/// commit (test hook SWITCH_TEST_CRASH_POINT), and with the journal's tail damaged on disk afterwards. Each test prints
/// its seed; SWITCH_CRASH_SEED=N replays the same choices. The checks are <see cref="CrashRun.VerifyAsync"/>'s.
/// </summary>
public sealed class CrashSafetyTests(ITestOutputHelper output)
{
    private const string Area = "crash safety";
    private const int AcknowledgedBeforeKill = 40;    // real load before every kill
    // FasterLog's first record (the journal's genesis record, the configuration) starts here.
    private const long FirstRecordAddress = 64;
    private const int FasterEntryHeaderBytes = 4;
    private const int RecordHeaderBytes = 20;

    [Fact]
    public async Task Sigkill_at_random_moments_under_load_loses_nothing_acknowledged_and_executes_nothing_twice()
    {
        await using CrashRun run = await CreateAsync();
        int kills = run.Next(4, 7);
        await run.StartAsync();
        long adopted = 0;
        for (int k = 0; k < kills; k++)
        {
            await LoadThenKillAsync(run, maxDelayMs: 2_000);
            await run.StartAsync();
            // The journal writes its commit slot once per MiB of log: the records of the commits after it are found by
            // reading on, and the start says how many (a kill under load leaves some nearly every time).
            adopted += run.Process!.Records().Where(r => r.Event == "journal_recovered").Sum(r => long.Parse(r["records_adopted"]!));
        }
        await FinishAsync(run);

        Assert.Equal(kills, run.Kills);
        Assert.True(adopted > 0, $"no start after {kills} SIGKILLs under load found a record after the journal's newest commit slot");
        ReliabilityReport.Record(Area, "SIGKILL at random moments under load", Tried(run, $"{run.Kills} SIGKILLs"), Held);
    }

    [Fact]
    public async Task A_kill_between_journal_append_and_commit_loses_nothing_acknowledged()
    {
        await using CrashRun run = await CreateAsync();
        await run.StartAsync();
        await LoadThenKillAsync(run, maxDelayMs: 1_000);

        // The journaler kills the process after appending a batch, before committing it: twice.
        await CrashAtAsync(run, "before-commit");
        (long first, long last) = await CrashAtAsync(run, "before-commit");

        // The second time, the uncommitted batch is torn on disk too: garbage where it was being written, all of
        // it past the committed tail. Never committed, so nothing of the journal before it is lost. (The start may say
        // it cut a torn tail there: reading on from the newest commit slot, a write never committed and a committed
        // one torn look alike; either way the cut begins no earlier than the batch.)
        run.OverwriteJournal(first, run.NextBytes((int)(last - first) + 512));
        await run.StartAsync();
        Assert.All(run.Process!.OutputSnapshot().Select(l => LogRecord.TryParse(l)).Where(r => r is { Event: "journal_torn_tail_cut" }),
            r => Assert.True(long.Parse(r!["address"]!) >= first, $"cut at {r["address"]}, before the uncommitted batch at {first}"));
        // New records now lie where the garbage was: a further kill and start must read them back.
        await LoadThenKillAsync(run, maxDelayMs: 1_000);
        await run.StartAsync();
        await FinishAsync(run);

        Assert.Equal(2, run.SelfKills);
        ReliabilityReport.Record(Area, "kill between a journal append and its commit",
            Tried(run, $"{run.Kills} SIGKILLs at random, {run.SelfKills} SIGKILLs by the journaler after appending a batch and before committing it " +
                "(the second followed by garbage written over the uncommitted batch on disk)"),
            Held + "; every unanswered order the switch did not know after a crash (NOT_FOUND) was unknown to its bank too, and executed once when sent again");
    }

    [Fact]
    public async Task A_torn_last_record_is_cut_and_damage_to_committed_records_is_refused()
    {
        await using CrashRun run = await CreateAsync();
        await run.StartAsync();
        await LoadThenKillAsync(run, maxDelayMs: 1_000);

        // The journaler kills the process after a commit, before the logic has seen the batch: durable, never acted
        // on, so nothing in it was acknowledged. Then the disk loses the end of it: the last record torn mid-way.
        (_, long last) = await CrashAtAsync(run, "after-commit");
        run.TruncateJournal(last + 10);
        await run.StartAsync();
        Assert.Contains(run.Process!.OutputSnapshot(), l => LogRecord.TryParse(l) is { Event: "journal_torn_tail_cut" } r && r["address"] == last.ToString());
        await LoadThenKillAsync(run, maxDelayMs: 1_000);

        // Damage to a committed, acted-on record with intact records after it (the genesis record, the configuration)
        // is corruption: the switch refuses to start and names the address; repaired, it starts and nothing is lost.
        byte[] header = run.ReadJournal(FirstRecordAddress, FasterEntryHeaderBytes + RecordHeaderBytes);
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(FasterEntryHeaderBytes))); // the record format version
        Assert.Equal(0L, BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(FasterEntryHeaderBytes + 8))); // sequence number 0
        long target = FirstRecordAddress + FasterEntryHeaderBytes + RecordHeaderBytes + 10;
        byte original = run.ReadJournal(target, 1)[0];
        run.OverwriteJournal(target, [(byte)(original ^ 0x20)]);
        (int exit, string[] errors) = await run.StartExpectingRefusalAsync();
        Assert.Equal(1, exit);
        Assert.Contains(errors, l => LogRecord.TryParse(l) is { Event: "start_failed" } r
            && r.Message.StartsWith($"cannot start: Journal corrupt at address {FirstRecordAddress}: ChecksumMismatch", StringComparison.Ordinal));
        run.OverwriteJournal(target, [original]);
        await run.StartAsync();
        await FinishAsync(run);

        ReliabilityReport.Record(Area, "last record torn on disk; committed record damaged",
            Tried(run, $"{run.Kills} SIGKILLs at random, {run.SelfKills} SIGKILL by the journaler after a commit and before the logic saw it, " +
                "then the segment file cut 10 bytes into the batch's last record; then a flipped byte in the first record, then repaired"),
            Held + $"; the torn record was cut (the start says so, naming address {last}) and the switch served on; the flipped byte " +
                $"was refused at start (exit 1, 'Journal corrupt at address {FirstRecordAddress}')");
    }

    [Fact]
    public async Task A_bad_crash_point_setting_is_refused_at_start()
    {
        string data = Path.Combine(Path.GetTempPath(), "switch-crash-point-" + Guid.NewGuid().ToString("N"));
        using SwitchProcess process = SwitchProcess.Start(data, new Dictionary<string, string> { ["SWITCH_TEST_CRASH_POINT"] = "after-commit:soon" });
        Assert.Equal(2, await process.WaitForExitAsync());
        Assert.Contains(process.Errors, l => LogRecord.TryParse(l) is { Event: "config_refused" } r
            && r.Message.StartsWith("SWITCH_TEST_CRASH_POINT: expected before-commit:N or after-commit:N", StringComparison.Ordinal));
        Assert.False(Directory.Exists(data)); // refused before anything was written
    }

    internal const string Held = "every acknowledged outcome survived (same transaction, status, amount) and every resent one returned it; " +
        "no order executed twice at any bank, and every bank execution is a client's order under its transaction; every order unknown " +
        "at a crash became final; the settlement nets to 0, each bank's net equals its ledger's and each institution's its successes less fees";

    private async Task<CrashRun> CreateAsync()
    {
        int seed = CrashRun.ChooseSeed();
        output.WriteLine($"crash test seed {seed} (replay: {CrashRun.SeedVariable}={seed})");
        return await CrashRun.CreateAsync(seed);
    }

    /// <summary>Load until real work is done, then SIGKILL at a random instant (seeded delay) while it runs.</summary>
    internal static async Task LoadThenKillAsync(CrashRun run, int maxDelayMs)
    {
        run.StartLoad();
        await run.WaitForAcknowledgedAsync(AcknowledgedBeforeKill);
        await run.KillAtRandomAsync(minDelayMs: 100, maxDelayMs);
    }

    /// <summary>
    /// Starts the switch with the journal's crash point at a seeded record (late enough that start-up work is done),
    /// loads it until it kills itself there; returns the crashed batch's first and last record addresses.
    /// </summary>
    private static async Task<(long First, long Last)> CrashAtAsync(CrashRun run, string moment)
    {
        await run.StartAsync($"{moment}:{run.Next(3_000, 6_000)}");
        run.StartLoad();
        return await run.WaitForCrashPointAsync();
    }

    /// <summary>The last life: real load, a graceful end of it, then every check.</summary>
    private Task FinishAsync(CrashRun run) => FinishAsync(run, output);

    internal static async Task FinishAsync(CrashRun run, ITestOutputHelper output)
    {
        run.StartLoad();
        await run.WaitForAcknowledgedAsync(AcknowledgedBeforeKill);
        await run.StopLoadAsync();
        await run.VerifyAsync();
        output.WriteLine(Tried(run, $"{run.Kills} kills, {run.SelfKills} crash points"));
    }

    internal static string Tried(CrashRun run, string kills) =>
        $"{kills}; {run.Starts} starts of the switch process on one data directory under load from 3 institutions (Transact streams " +
        $"and unary calls; payments, payouts, refunds over 4 banks); {Orders(run.Client)}";

    /// <summary>What the client sent and how every order without an answer was resolved.</summary>
    internal static string Orders(RecordedClient client) =>
        $"{client.OrdersSent:N0} orders sent, {client.Acknowledged:N0} acknowledged, {client.AckedResent} acknowledged ones resent after " +
        $"restarts, {client.UnknownAtCrash} unknown at a crash ({client.UnknownQueried} found by query, {client.NeverJournaled} never " +
        $"journaled, {client.UnknownResent} resent), all resolved; seed {client.Seed}";
}
