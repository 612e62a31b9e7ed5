using System.Text.Json;
using Switch.Contracts.V1;
using Switch.Grpc.Client;
using Switch.Host.Configuration;
using Switch.Host.Tests.Admin;
using Switch.Host.Tests.EndToEnd;

namespace Switch.Host.Tests.Crash;

/// <summary>
/// One crash-safety run: the real switch process (Switch.Host.dll) on one data directory, started again and again;
/// the banks run here, in the test process, so their ledgers outlive every death of the switch; a client of several
/// institutions keeps its own record of every order it sent and every answer it got (<see cref="RecordedClient"/>).
/// The run's checks compare the switch's outcome feeds and settlement with that record and with the banks' ledgers
/// (<see cref="VerifyAsync"/>). Everything random comes from one seed (printed; SWITCH_CRASH_SEED replays it); the
/// timing of a kill is the machine's, so a replay takes the same decisions, not the same instants.
/// </summary>
internal sealed class CrashRun : IAsyncDisposable
{
    public const string SeedVariable = "SWITCH_CRASH_SEED";
    // A 256 MiB segment: address A lives at offset A mod 2^28 of segment file A >> 28 (the engine's journal options).
    private const int SegmentBits = 28;

    private readonly string _root = Path.Combine(Path.GetTempPath(), "switch-crash-" + Guid.NewGuid().ToString("N"));

    private CrashRun(RecordedClient client, string? dataDirectory)
    {
        Client = client;
        DataDirectory = dataDirectory ?? Path.Combine(_root, "data");
        Directory.CreateDirectory(_root);
    }

    public RecordedClient Client { get; }
    public int Seed => Client.Seed;
    public string DataDirectory { get; }
    public string ConfigFile => Path.Combine(_root, "switch.json");
    public SwitchProcess? Process { get; private set; }

    // What was run, for the reliability report and the assertions on load.
    public int Starts { get; private set; }
    public int Kills { get; private set; }
    public int SelfKills { get; private set; }

    /// <summary>The seed from SWITCH_CRASH_SEED, else a fresh one.</summary>
    public static int ChooseSeed() =>
        Environment.GetEnvironmentVariable(SeedVariable) is { Length: > 0 } text ? int.Parse(text) : Random.Shared.Next(1, int.MaxValue);

    /// <summary>Starts one simulated bank per bank code and writes the switch's configuration pointing at them.
    /// The switch's data directory is <paramref name="dataDirectory"/> (default: one of the run's own).</summary>
    /// <param name="snapshots">When the switch takes snapshots (default: the configuration's default).</param>
    public static async Task<CrashRun> CreateAsync(int seed, string? dataDirectory = null, SnapshotsConfig? snapshots = null)
    {
        var run = new CrashRun(await RecordedClient.CreateAsync(seed, snapshots), dataDirectory);
        try
        {
            await File.WriteAllTextAsync(run.ConfigFile,
                JsonSerializer.Serialize(run.Client.Config, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase }));
            return run;
        }
        catch
        {
            await run.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Starts the switch on the data directory (with a journal crash point if given), waits until it serves and
    /// reaches every bank, then settles what the last death left open (<see cref="RecordedClient.SettleAsync"/>).
    /// </summary>
    public async Task StartAsync(string? crashPoint = null)
    {
        Assert.Null(Process);
        var environment = new Dictionary<string, string>();
        if (crashPoint is not null) environment[Switch.Engine.Pipeline.JournalCrashPoint.EnvironmentVariable] = crashPoint;
        Process = SwitchProcess.Start(DataDirectory, environment, "--config", ConfigFile);
        Starts++;
        Uri address = await Process.WaitForAddressAsync();
        Client.Connect(address, Process.AdminGrpcAddress!);
        await Client.WaitForBanksAsync("the restarted switch reaching every bank");
        await Client.SettleAsync();
    }

    /// <summary>An operator's snapshot (answered once it is published), while the load runs.</summary>
    public Task<TakeSnapshotReply> TakeSnapshotAsync() =>
        Client.Admin.UnaryAsync(AdminMethods.TakeSnapshot, new TakeSnapshotRequest(), AdminClient.As(AdminClient.OpsKey, RecordedClient.WaitMs));

    /// <summary>Starts the load of every institution: one Transact stream and one unary caller each.</summary>
    public void StartLoad() => Client.StartLoad();

    /// <summary>Waits until this era's load has had <paramref name="count"/> final answers (real load before a kill).</summary>
    public async Task WaitForAcknowledgedAsync(int count)
    {
        try
        {
            await Client.WaitForAcknowledgedAsync(count, () => Process!.HasExited);
        }
        finally
        {
            // A switch that died by itself (not by the test's kill) is a failure; its last words say why.
            Assert.False(Process!.HasExited, "the switch died under load: " + string.Join("\n", Process.OutputSnapshot().TakeLast(20).Concat(Process.Errors.TakeLast(20))));
        }
    }

    /// <summary>SIGKILL at a random instant (seeded delay) while the load runs, then ends the era.</summary>
    public async Task KillAtRandomAsync(int minDelayMs, int maxDelayMs)
    {
        int delayMs = Client.Next(minDelayMs, maxDelayMs);
        await Task.Delay(delayMs);
        int exit = await Process!.KillAsync();
        Assert.Equal(137, exit); // 128 + SIGKILL
        Kills++;
        await EndLifeAsync();
    }

    /// <summary>
    /// Waits for the process to kill itself at its journal crash point (bounded), then ends the era. Returns the
    /// crashed batch's first and last record addresses, as the hook printed them.
    /// </summary>
    public async Task<(long First, long Last)> WaitForCrashPointAsync()
    {
        int exit = await Process!.WaitForExitAsync();
        LogRecord? announced = Process.OutputSnapshot().Select(LogRecord.TryParse).FirstOrDefault(r => r?.Event == "test_crash_point");
        Assert.True(announced is not null, "the switch stopped without reaching its crash point: " + string.Join("\n", Process.OutputSnapshot().Concat(Process.Errors)));
        Assert.Equal(137, exit);
        SelfKills++;
        await EndLifeAsync();
        return (long.Parse(announced!["first_address"]!), long.Parse(announced["last_address"]!));
    }

    /// <summary>Stops sending, lets every answer in flight arrive (bounded), and ends the era with the switch still up.</summary>
    public Task StopLoadAsync() => Client.StopLoadAsync();

    private async Task EndLifeAsync()
    {
        await Client.AbandonAsync();
        Process!.Dispose();
        Process = null;
    }

    /// <summary>Overwrites bytes of the journal's log at an address (the switch must be dead).</summary>
    public void OverwriteJournal(long address, ReadOnlySpan<byte> bytes)
    {
        Assert.True(Process is null, "the switch must be down to damage its journal");
        using var file = new FileStream(SegmentPath(address), FileMode.Open, FileAccess.Write);
        file.Position = address & ((1L << SegmentBits) - 1);
        file.Write(bytes);
    }

    public byte[] ReadJournal(long address, int count)
    {
        using var file = new FileStream(SegmentPath(address), FileMode.Open, FileAccess.Read);
        file.Position = address & ((1L << SegmentBits) - 1);
        var bytes = new byte[count];
        file.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>Cuts the journal's segment file at an address: what a disk that lost the end of a write leaves.</summary>
    public void TruncateJournal(long address)
    {
        Assert.True(Process is null, "the switch must be down to damage its journal");
        using var file = new FileStream(SegmentPath(address), FileMode.Open, FileAccess.Write);
        Assert.True(file.Length > (address & ((1L << SegmentBits) - 1)), "the address lies inside the segment file");
        file.SetLength(address & ((1L << SegmentBits) - 1));
    }

    private string SegmentPath(long address) => Path.Combine(DataDirectory, "journal", "log", $"journal.{address >> SegmentBits}");

    /// <summary>The end of the run, with the switch up: every order resolved, then <see cref="RecordedClient.VerifyAsync"/>'s checks.</summary>
    public Task VerifyAsync() => Client.VerifyAsync();

    /// <summary>SIGTERM at the end (the switch must stop cleanly after all this), the banks stopped, the directory removed.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Process is not null)
        {
            if (!Process.HasExited) await Process.TerminateAsync();
            Process.Dispose();
        }
        await Client.DisposeAsync();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    /// <summary>A seeded choice of the run (how many kills, where a crash point falls).</summary>
    public int Next(int minInclusive, int maxExclusive) => Client.Next(minInclusive, maxExclusive);

    public byte[] NextBytes(int count) => Client.NextBytes(count);

    /// <summary>Starts the switch on the data directory expecting it to refuse to start: its exit code and error lines.</summary>
    public async Task<(int Exit, string[] Errors)> StartExpectingRefusalAsync()
    {
        Assert.Null(Process);
        using SwitchProcess refused = SwitchProcess.Start(DataDirectory, "--config", ConfigFile);
        int exit = await refused.WaitForExitAsync();
        lock (refused.Errors) return (exit, refused.Errors.ToArray());
    }
}
