using System.Globalization;
using System.Text.Json;
using Google.Protobuf;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Configuration;
using Switch.Host.Tests.EndToEnd;
using Switch.Host.Tests.Operator;

namespace Switch.Host.Tests.Snapshots;

/// <summary>
/// The real switch process with snapshots: `switchctl snapshot` end to end, the log records, and a start that finds
/// its newest snapshots damaged (corrupt, torn, of another format version): each one is logged by name with why, set
/// aside (.skipped), and the start falls back to the older good one, with the outcome feeds exactly as before.
/// </summary>
public sealed class SnapshotProcessTests : WithDataDirectory
{
    private static readonly (string Code, string Key)[] Institutions = [("ALIPAY", RunningSwitch.AlipayKey), ("TENPAY", RunningSwitch.TenpayKey)];

    [Fact]
    public async Task Damaged_snapshots_are_each_logged_and_skipped_for_an_older_one_and_switchctl_takes_one()
    {
        string configFile = WriteConfig(Data, new SnapshotsConfig { EveryEvents = 0, AtBatchClose = false, AtStop = true, Keep = 4 });
        string snapshots = Path.Combine(Data, "snapshots");
        List<byte[]>[] before;
        using (SwitchProcess first = SwitchProcess.Start(Data, "--config", configFile))
        {
            using GrpcChannel channel = GrpcChannel.ForAddress(await first.WaitForAddressAsync());
            await PayAsync(channel, "a", 20);
            CtlRun ctl = await OperatorTestKit.RawAsync(["--admin", first.AdminGrpcAddress!.ToString(), "--key", OperatorTestKit.OperatorKey, "snapshot"]);
            Assert.True(ctl.ExitCode == 0, ctl.ToString());
            Assert.Matches(@"^snapshot at journal record \d+ \(\d+ events\): snapshot-\d+\.\S+, \d+ bytes, logic paused \d+ us, written in \d+ ms", ctl.Out);
            CtlRun viewer = await OperatorTestKit.RawAsync(["--admin", first.AdminGrpcAddress!.ToString(), "--key", OperatorTestKit.ViewerKey, "snapshot"]);
            Assert.True(viewer.ExitCode == 4 && viewer.Err.Contains("PERMISSION_DENIED"), viewer.ToString());
            using GrpcChannel admin = GrpcChannel.ForAddress(first.AdminGrpcAddress!);
            for (int i = 0; i < 2; i++)
            {
                await PayAsync(channel, $"b{i}", 10);
                await admin.UnaryAsync(AdminMethods.TakeSnapshot, new TakeSnapshotRequest(), Admin.AdminClient.As(Admin.AdminClient.OpsKey));
            }
            await PayAsync(channel, "c", 10);
            before = await ReadFeedsAsync(channel);
            Assert.Equal(0, await first.TerminateAsync());
            List<LogRecord> taken = first.Records().Where(r => r.Event == "snapshot_taken").ToList();
            Assert.Equal(["operator", "operator", "operator", "stop"], taken.Select(r => r["trigger"]));
            Assert.All(taken, r => Assert.True(long.Parse(r["position"]!) > 0 && long.Parse(r["bytes"]!) > 0 && r["pause_us"] is not null && r["write_ms"] is not null));
        }

        // Newest first: the stop's (a flipped byte near its end: checksum), then a torn one, then one of another format
        // version; the oldest stays good.
        string[] files = Directory.GetFiles(snapshots, "snapshot-*.snap").Order().Reverse().ToArray();
        Assert.Equal(4, files.Length);
        Flip(files[0], new FileInfo(files[0]).Length - 10);
        using (var torn = new FileStream(files[1], FileMode.Open)) torn.SetLength(torn.Length / 2);
        using (var other = new FileStream(files[2], FileMode.Open))
        {
            other.Position = 8; // after the magic: the format version
            other.Write(BitConverter.GetBytes(99u));
        }

        using SwitchProcess second = SwitchProcess.Start(Data, "--config", configFile);
        using GrpcChannel again = GrpcChannel.ForAddress(await second.WaitForAddressAsync());
        List<LogRecord> records = second.Records();
        List<LogRecord> skipped = records.Where(r => r.Event == "snapshot_skipped").ToList();
        Assert.Equal(3, skipped.Count);
        Assert.Equal(files.Take(3).Select(Path.GetFileName), skipped.Select(r => r["snapshot"]));
        Assert.Contains("checksum", skipped[0]["reason"]);
        Assert.Contains("ends early (torn", skipped[1]["reason"]);
        Assert.Contains("format version 99", skipped[2]["reason"]);
        Assert.All(skipped, r => Assert.Equal("warn", r.Level));
        LogRecord recovered = records.Single(r => r.Event == "recovery_snapshot");
        Assert.Equal(Path.GetFileName(files[3]), recovered["snapshot"]);
        Assert.True(long.Parse(recovered["events_replayed"]!) > 0, recovered.ToString());
        AssertRestoreExplained(recovered, new FileInfo(files[3]).Length);
        foreach (string file in files.Take(3)) Assert.True(File.Exists(file + ".skipped") && !File.Exists(file), file);

        List<byte[]>[] after = await ReadFeedsAsync(again);
        for (int i = 0; i < Institutions.Length; i++)
        {
            Assert.Equal(before[i].Count, after[i].Count);
            for (int n = 0; n < before[i].Count; n++) Assert.True(before[i][n].AsSpan().SequenceEqual(after[i][n]), $"{Institutions[i].Code} feed number {n + 1}");
        }
        // Serving on: new work goes on numbering the feeds after what was there.
        await PayAsync(again, "d", 4);
        Assert.Equal(0, await second.TerminateAsync());
    }

    /// <summary>The start's line says what the restore read and waited on: the whole file once, its read time and rate,
    /// the prefault helper's work, and the kernel's counters (numbers on Linux, "n/a" elsewhere).</summary>
    private static void AssertRestoreExplained(LogRecord recovered, long snapshotBytes)
    {
        Assert.Equal(snapshotBytes, long.Parse(recovered["snapshot_bytes_read"]!));
        double readMs = double.Parse(recovered["snapshot_read_ms"]!, CultureInfo.InvariantCulture);
        double mbPerS = double.Parse(recovered["snapshot_read_mb_s"]!, CultureInfo.InvariantCulture);
        // The rate agrees with the bytes and the time, the time being rounded to 0.1 ms and the rate to 1 MB/s.
        Assert.True(readMs >= 0 && mbPerS >= 0, $"read {readMs} ms, {mbPerS} MB/s");
        Assert.True(mbPerS >= snapshotBytes / ((readMs + 0.05) * 1000) - 1, $"{snapshotBytes} bytes read in {readMs} ms at {mbPerS} MB/s");
        if (readMs > 0.05) Assert.True(mbPerS <= snapshotBytes / ((readMs - 0.05) * 1000) + 1, $"{snapshotBytes} bytes read in {readMs} ms at {mbPerS} MB/s");
        Assert.True(double.Parse(recovered["prefault_ms"]!, CultureInfo.InvariantCulture) >= 0, recovered.ToString());
        Assert.True(double.Parse(recovered["index_rebuild_ms"]!, CultureInfo.InvariantCulture) >= 0, recovered.ToString());
        long prefaulted = long.Parse(recovered["prefault_bytes"]!), regions = long.Parse(recovered["prefault_of_bytes"]!);
        Assert.True(prefaulted >= 0 && prefaulted <= regions, recovered.ToString());
        string[] counters = ["major_faults", "minor_faults", "storage_read_bytes", "vm_compact_stall", "vm_compact_fail", "vm_compact_success",
            "vm_thp_fault_alloc", "vm_thp_fault_fallback", "vm_allocstall", "vm_pgmajfault"];
        foreach (string counter in counters)
        {
            string value = recovered[counter]!;
            if (OperatingSystem.IsLinux()) Assert.True(long.TryParse(value, out long n) && n >= 0, $"{counter}={value}: {recovered}");
            else Assert.Equal("n/a", value);
        }
        // The restore writes tables into fresh memory: the process faulted pages in (the helper's bulk populate counts too).
        if (OperatingSystem.IsLinux()) Assert.True(long.Parse(recovered["minor_faults"]!) > 0, recovered.ToString());
    }

    [Fact]
    public async Task A_snapshot_past_the_kept_one_leaves_its_name_at_once_and_metrics_count_its_blocks_freed()
    {
        string configFile = WriteConfig(Data, new SnapshotsConfig { EveryEvents = 0, AtBatchClose = false, AtStop = false, Keep = 1 });
        string snapshots = Path.Combine(Data, "snapshots");
        using SwitchProcess running = SwitchProcess.Start(Data, "--config", configFile);
        using GrpcChannel channel = GrpcChannel.ForAddress(await running.WaitForAddressAsync());
        using GrpcChannel admin = GrpcChannel.ForAddress(running.AdminGrpcAddress!);
        using var http = new HttpClient { BaseAddress = running.AddressOf("operator_http"), Timeout = TimeSpan.FromSeconds(30) };
        await PayAsync(channel, "r", 10);
        await admin.UnaryAsync(AdminMethods.TakeSnapshot, new TakeSnapshotRequest(), Admin.AdminClient.As(Admin.AdminClient.OpsKey));
        string first = Assert.Single(Directory.GetFiles(snapshots, "snapshot-*.snap"));
        long firstBytes = new FileInfo(first).Length;
        Admin.PrometheusText before = await Admin.PrometheusText.ScrapeAsync(http);

        await PayAsync(channel, "s", 10);
        await admin.UnaryAsync(AdminMethods.TakeSnapshot, new TakeSnapshotRequest(), Admin.AdminClient.As(Admin.AdminClient.OpsKey));

        string second = Assert.Single(Directory.GetFiles(snapshots, "snapshot-*.snap")); // the first left its name with the snapshot's answer
        Assert.NotEqual(first, second);
        Admin.PrometheusText after = await Admin.PrometheusText.ScrapeAsync(http);
        for (int i = 0; i < 300 && after["switch_files_reclaim_outstanding"] > 0; i++)
        {
            await Task.Delay(100);
            after = await Admin.PrometheusText.ScrapeAsync(http);
        }
        Assert.Equal(0, after["switch_files_reclaim_outstanding"]);
        Assert.Empty(Directory.GetFiles(snapshots, "*" + Journal.FileReclaimer.Suffix));
        Assert.False(File.Exists(first));
        // The first snapshot (and its archive part, when it has one) freed and unlinked; nothing failed.
        Assert.InRange(after["switch_files_reclaimed_total"] - before["switch_files_reclaimed_total"], 1, 2);
        Assert.True(after["switch_files_reclaimed_bytes_total"] - before["switch_files_reclaimed_bytes_total"] >= firstBytes, after.Text);
        Assert.Equal(0, after["switch_files_reclaim_failures_total"]);
        Assert.Equal(0, await running.TerminateAsync());
    }

    [Fact]
    public async Task A_snapshots_key_out_of_range_is_refused_naming_it()
    {
        string configFile = WriteConfig(Data, new SnapshotsConfig { Keep = 0 });
        using SwitchProcess process = SwitchProcess.Start(Data, "--config", configFile);
        Assert.Equal(2, await process.WaitForExitAsync());
        Assert.Contains(process.Errors, l => LogRecord.TryParse(l) is { Event: "config_refused" } r && r.Message.Contains("snapshots.keep: 1 to 100, got 0"));
    }

    [Fact]
    public async Task Verify_history_replays_the_archive_and_the_live_journal_against_every_kept_snapshot()
    {
        string configFile = WriteConfig(Data, new SnapshotsConfig { EveryEvents = 0, AtBatchClose = false, AtStop = true, Keep = 2 });
        using (SwitchProcess running = SwitchProcess.Start(Data, "--config", configFile))
        {
            using GrpcChannel channel = GrpcChannel.ForAddress(await running.WaitForAddressAsync());
            await PayAsync(channel, "v", 20);
            using GrpcChannel admin = GrpcChannel.ForAddress(running.AdminGrpcAddress!);
            await admin.UnaryAsync(AdminMethods.TakeSnapshot, new TakeSnapshotRequest(), Admin.AdminClient.As(Admin.AdminClient.OpsKey));
            await PayAsync(channel, "w", 10);
            Assert.Equal(0, await running.TerminateAsync()); // the stop's snapshot: two kept, the history before the older retired
        }
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(Data, "journal-archive"), "records-*.journal"));

        (int exit, List<LogRecord> records) = await VerifyHistoryAsync(Data);
        Assert.True(exit == 0, string.Join("\n", records.Select(r => r.ToString())));
        Assert.Equal(2, records.Count(r => r.Event == "history_verified"));
        Assert.Equal("2", records.Single(r => r.Event == "history_verification_done")["snapshots"]);

        // The archive's files gone: the history cannot be read, and it says so.
        foreach (string file in Directory.GetFiles(Path.Combine(Data, "journal-archive"))) File.Delete(file);
        (exit, records) = await VerifyHistoryAsync(Data);
        Assert.Equal(2, exit);
        Assert.Contains(records, r => r.Event == "history_unreadable");
    }

    /// <summary>The real process's verify-history command on <paramref name="dataDirectory"/>.</summary>
    private static async Task<(int Exit, List<LogRecord> Records)> VerifyHistoryAsync(string dataDirectory)
    {
        var info = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { Path.Combine(AppContext.BaseDirectory, "Switch.Host.dll"), "verify-history", "--data", dataDirectory }) info.ArgumentList.Add(a);
        using var process = System.Diagnostics.Process.Start(info)!;
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> errors = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await process.WaitForExitAsync(timeout.Token);
        // Info and warnings on standard output, errors on standard error: both are records.
        string text = await output + await errors;
        var records = text.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => LogRecord.TryParse(l) ?? throw new Xunit.Sdk.XunitException($"not a log record: {l}")).ToList();
        return (process.ExitCode, records);
    }

    internal static string WriteConfig(string dataDirectory, SnapshotsConfig snapshots)
    {
        HostConfig config = RunningSwitch.TestConfig(dataDirectory, rules: r => r with { BatchCloseTimes = [] }) with { Snapshots = snapshots };
        Directory.CreateDirectory(dataDirectory);
        string path = Path.Combine(dataDirectory, "..", Path.GetFileName(dataDirectory) + ".json");
        File.WriteAllText(path, JsonSerializer.Serialize(config, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase }));
        return path;
    }

    private static void Flip(string path, long offset)
    {
        using var file = new FileStream(path, FileMode.Open);
        file.Position = offset;
        int b = file.ReadByte();
        file.Position = offset;
        file.WriteByte((byte)(b ^ 0x5A));
    }

    private static async Task PayAsync(GrpcChannel channel, string prefix, int count)
    {
        for (int i = 0; i < count; i++)
        {
            (string code, string key) = Institutions[i % Institutions.Length];
            TransferRequest request = RunningSwitch.Payment($"{prefix}-{i}", 100 + i, account: $"62221{prefix.Length:D2}{i:D10}");
            TransferResult result = await channel.UnaryAsync(InstitutionMethods.AgreementPayment, request, RunningSwitch.As(key, 60_000));
            Assert.True(result.Status == TransactionStatus.Succeeded, $"{code} {request.OrderNo}: {result}");
        }
    }

    /// <summary>Every institution's feed over the wire from feed number 0, up to the last outcome its payments made.</summary>
    private static async Task<List<byte[]>[]> ReadFeedsAsync(GrpcChannel channel)
    {
        var feeds = new List<byte[]>[Institutions.Length];
        for (int i = 0; i < Institutions.Length; i++)
        {
            feeds[i] = new List<byte[]>();
            using var cts = new CancellationTokenSource(3_000);
            using ServerStreamingCall<TransferResult> feed = channel.ServerStreaming(InstitutionMethods.Outcomes, new OutcomesRequest { AfterFeedNo = 0 },
                RunningSwitch.As(Institutions[i].Key) with { Timeout = null, CancellationToken = cts.Token });
            try
            {
                // Read until the feed goes quiet (every payment above was answered, so its outcome is in).
                while (await feed.ResponseStream.ReadAsync() is { } outcome)
                {
                    Assert.Equal(feeds[i].Count + 1, outcome.FeedNo);
                    feeds[i].Add(outcome.ToByteArray());
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled || cts.IsCancellationRequested)
            {
            }
            catch (OperationCanceledException)
            {
            }
            Assert.NotEmpty(feeds[i]);
        }
        return feeds;
    }
}
