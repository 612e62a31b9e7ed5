using Switch.Host.Tests.Crash;
using Switch.Host.Tests.EndToEnd;
using Switch.Host.Tests.Reliability;
using Switch.Testing;
using Xunit.Abstractions;

namespace Switch.Host.Tests.PowerLoss;

/// <summary>
/// Power loss, not just a process kill: the switch's data directory lives on powerfs, which on a cut throws away every
/// write, file, directory and rename not made durable (strict POSIX: a new entry only by an fsync of its directory). The
/// real switch process runs under load against simulated banks that outlive it; each death is a SIGKILL followed by a
/// cut, then a start on what is left. The checks are the crash tests' (<see cref="CrashRun.VerifyAsync"/>).
/// </summary>
public sealed class PowerLossTests(ITestOutputHelper output)
{
    private const int Cuts = 3;

    [Fact]
    public async Task Power_cuts_under_load_lose_nothing_acknowledged_and_reuse_no_transaction_id()
    {
        using PowerFs? fs = await PowerFs.MountAsync(output);
        if (fs is null) return;
        int seed = CrashRun.ChooseSeed();
        output.WriteLine($"power-loss test seed {seed} (replay: {CrashRun.SeedVariable}={seed})");
        await using CrashRun run = await CrashRun.CreateAsync(seed, Path.Combine(fs.MountPoint, "data"));

        await run.StartAsync();
        long droppedEntries = 0, droppedBlocks = 0;
        for (int c = 0; c < Cuts; c++)
        {
            await CrashSafetyTests.LoadThenKillAsync(run, maxDelayMs: 1_500);
            PowerFs.Cut cut = await fs.CutAsync();
            // The cut must have had something to take (the archive and an open batch's records.bin are never made
            // durable: they are rebuilt from the journal), or it proved nothing.
            Assert.True(cut.DroppedEntries > 0, "the power cut threw nothing away");
            droppedEntries += cut.DroppedEntries;
            droppedBlocks += cut.DroppedBlocks;
            await run.StartAsync();
            Assert.Contains(run.Process!.Records(), r => r.Event == "journal_recovered");
        }
        await CrashSafetyTests.FinishAsync(run, output);

        output.WriteLine($"{Cuts} power cuts threw away {droppedEntries} directory entries and {droppedBlocks} blocks of unsynced bytes");
        ReliabilityReport.Record("power loss", "SIGKILL then power cut under load (strict POSIX filesystem)",
            CrashSafetyTests.Tried(run, $"{run.Kills} SIGKILLs each followed by a power cut of the data directory's filesystem " +
                $"(powerfs: {droppedEntries} directory entries and {droppedBlocks} blocks not made durable thrown away)"),
            CrashSafetyTests.Held + "; every start after a cut recovered the journal (never a new one)");
    }

    [Fact]
    public async Task A_data_directory_whose_journal_was_lost_is_refused()
    {
        // Clearing files with no journal: what storage that lost the journal's entries leaves. A new journal would
        // hand out transaction ids from 1 again, so the switch refuses, naming the directory.
        string data = Path.Combine(Path.GetTempPath(), "switch-lost-journal-" + Guid.NewGuid().ToString("N"));
        try
        {
            Directory.CreateDirectory(Path.Combine(data, "clearing", "batch-00000001"));
            File.WriteAllBytes(Path.Combine(data, "clearing", "batch-00000001", "records.bin"), new byte[128]);
            using SwitchProcess process = SwitchProcess.Start(data);
            Assert.Equal(1, await process.WaitForExitAsync());
            Assert.Contains(process.Errors, l => LogRecord.TryParse(l) is { Event: "start_failed" } r
                && r.Message.StartsWith($"cannot start: data directory {data} holds clearing files", StringComparison.Ordinal)
                && r.Message.Contains("the journal was lost"));
        }
        finally
        {
            try { Directory.Delete(data, recursive: true); } catch (IOException) { }
        }
    }
}
