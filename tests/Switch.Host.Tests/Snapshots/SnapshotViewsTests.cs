using Google.Protobuf;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Configuration;
using Switch.Host.Tests.Admin;
using Switch.Host.Tests.EndToEnd;

namespace Switch.Host.Tests.Snapshots;

/// <summary>
/// A switch that starts from a snapshot shows every derived view exactly as one that replayed its whole journal: the
/// outcome feeds (read over the wire from feed number 0), the member report, the audit log and routing view (a ramp
/// running across the snapshot), the clearing batches and the open batch's records, and the settlement of a close
/// after the restart. The whole-replay switch runs on a copy of the same data directory without its snapshots, its
/// archive and its feeds (rebuilt from the journal).
/// </summary>
public sealed class SnapshotViewsTests : WithDataDirectory
{
    private static readonly string[] Institutions = [RunningSwitch.AlipayKey, RunningSwitch.TenpayKey];

    internal static HostConfig Config(string dataDirectory, bool snapshots) =>
        AdminClient.Config(dataDirectory, new SimulatedBanksConfig { Latency = "0", FailureRate = 0.2, Seed = 7 }) with
        {
            Snapshots = new SnapshotsConfig { Enabled = snapshots, EveryEvents = 0, AtBatchClose = false, AtStop = false },
        };

    [Fact]
    public async Task A_start_from_a_snapshot_shows_every_view_a_whole_replay_shows()
    {
        string fromSnapshot = Path.Combine(Data, "a"), wholeReplay = Path.Combine(Data, "b");
        TakeSnapshotReply snapshot;
        await using (RunningSwitch sw = await RunningSwitch.StartAsync(Config(fromSnapshot, snapshots: true), fromSnapshot))
        {
            using var admin = new AdminClient(sw);
            await admin.WaitAllTakeTrafficAsync("102");
            await PayAsync(sw, "one", 40);
            await admin.CallAsync(AdminMethods.SetWeights, Weights("102", "before", [7_000, 3_000]));
            await admin.CallAsync(AdminMethods.CloseBatch, new CloseBatchRequest { Reason = "first" });
            await PayAsync(sw, "two", 30);
            // A ramp runs across the snapshot: the routing view must keep where it started from.
            await admin.CallAsync(AdminMethods.SetWeights, Weights("103", "ramp", [2_000, 8_000], steps: 4, durationMs: 3_600_000));

            snapshot = await admin.CallAsync(AdminMethods.TakeSnapshot, new TakeSnapshotRequest());
            Assert.True(snapshot.Position > 0 && snapshot.Bytes > 0, snapshot.ToString());
            Assert.True(File.Exists(Path.Combine(fromSnapshot, "snapshots", snapshot.File)), snapshot.File);

            await PayAsync(sw, "three", 30);
            await admin.CallAsync(AdminMethods.SetWeights, Weights("102", "after", [5_000, 5_000]));
            await admin.CallAsync(AdminMethods.CloseBatch, new CloseBatchRequest { Reason = "second" });
            await PayAsync(sw, "four", 20);
        }
        CopyDirectory(fromSnapshot, wholeReplay);
        foreach (string derived in new[] { "snapshots", "archive", "feeds" }) Directory.Delete(Path.Combine(wholeReplay, derived), recursive: true);

        await using RunningSwitch a = await RunningSwitch.StartAsync(Config(fromSnapshot, snapshots: true), fromSnapshot);
        await using RunningSwitch b = await RunningSwitch.StartAsync(Config(wholeReplay, snapshots: false), wholeReplay);
        Assert.Equal(snapshot.Position, a.Host.Engine.Recovery.Snapshot?.RecordNo);
        Assert.Null(b.Host.Engine.Recovery.Snapshot);
        Assert.True(a.Host.Engine.Recovery.EventsReplayed < b.Host.Engine.Recovery.EventsReplayed,
            $"{a.Host.Engine.Recovery.EventsReplayed} events replayed after the snapshot, {b.Host.Engine.Recovery.EventsReplayed} in all");
        using var adminA = new AdminClient(a);
        using var adminB = new AdminClient(b);

        for (int i = 0; i < Institutions.Length; i++)
        {
            List<byte[]> feedA = await ReadFeedAsync(a, i, Institutions[i]), feedB = await ReadFeedAsync(b, i, Institutions[i]);
            Assert.True(feedA.Count > 0);
            Assert.Equal(feedB.Count, feedA.Count);
            for (int n = 0; n < feedA.Count; n++) Assert.True(feedA[n].AsSpan().SequenceEqual(feedB[n]), $"{Institutions[i]}: feed number {n + 1} differs");
        }
        await SameAsync(adminA, adminB, AdminMethods.GetMemberReport, new MemberReportRequest());
        await SameAsync(adminA, adminB, AdminMethods.GetMemberReport, new MemberReportRequest { Hourly = true });
        // The operators' entries and batch closes (reachability entries are the connectors', as they found the banks).
        await SameAsync(adminA, adminB, AdminMethods.ListAudit, new AuditRequest(), r => new AuditReply { Entries = { r.Entries.Where(e => e.OperatorId != "connector") } });
        await SameAsync(adminA, adminB, AdminMethods.ListBanks, new ListBanksRequest(), RoutingOnly);
        await SameAsync(adminA, adminB, AdminMethods.ListBatches, new ListBatchesRequest());
        Assert.Equal(2, (await adminA.CallAsync(AdminMethods.ListBatches, new ListBatchesRequest(), AdminClient.ViewerKey)).Batches.Count);

        // A close after the restart: the same settlement from both.
        await PayAsync(a, "five", 5);
        await PayAsync(b, "five", 5);
        foreach (AdminClient admin in new[] { adminA, adminB })
        {
            Assert.Equal(3, (await admin.CallAsync(AdminMethods.CloseBatch, new CloseBatchRequest { Reason = "third" })).BatchId);
        }
        Assert.True(a.Host.Clearing.Recorder.WaitForFiles(3, 30_000) && b.Host.Clearing.Recorder.WaitForFiles(3, 30_000));
        SettlementReply settleA = await adminA.CallAsync(AdminMethods.GetSettlement, new SettlementRequest { BatchId = 3 });
        SettlementReply settleB = await adminB.CallAsync(AdminMethods.GetSettlement, new SettlementRequest { BatchId = 3 });
        Assert.Equal(settleB.Lines, settleA.Lines);
        Assert.Contains(settleA.Lines, l => l.NetFen != 0);
        // Batch 3's records: cut back to the snapshot's length and appended from there, as the whole replay rewrote them.
        // (The 5 payments after the restart are each switch's own: compare the 20 of the journal.)
        byte[] recordsA = RecordsOf(fromSnapshot, 3), recordsB = RecordsOf(wholeReplay, 3);
        Assert.Equal(25 * Switch.Clearing.BatchRecord.Bytes, recordsA.Length);
        Assert.Equal(recordsB.Length, recordsA.Length);
        Assert.Equal(recordsB[..(20 * Switch.Clearing.BatchRecord.Bytes)], recordsA[..(20 * Switch.Clearing.BatchRecord.Bytes)]);
    }

    [Fact]
    public async Task The_viewer_key_may_not_take_a_snapshot_and_a_switch_without_snapshots_says_so()
    {
        await using (RunningSwitch sw = await RunningSwitch.StartAsync(Config(Data, snapshots: true), Data))
        {
            using var admin = new AdminClient(sw);
            RpcException denied = await AdminClient.FailsAsync(() => admin.CallAsync(AdminMethods.TakeSnapshot, new TakeSnapshotRequest(), AdminClient.ViewerKey),
                StatusCode.PermissionDenied);
            Assert.Contains("may not take snapshots", denied.Status.Detail);
            Assert.Empty(Directory.Exists(Path.Combine(Data, "snapshots")) ? Directory.GetFiles(Path.Combine(Data, "snapshots")) : []);
            (int status, string body, _) = await admin.PostJsonAsync("TakeSnapshot", "{}", AdminClient.ViewerKey);
            Assert.Equal(403, status);
            (status, body, _) = await admin.PostJsonAsync("TakeSnapshot", "{}", AdminClient.OpsKey);
            Assert.True(status == 200, body);
            Assert.Contains("\"file\"", body);
            string metrics = await admin.Http.GetStringAsync("/metrics");
            Assert.Contains("\nswitch_snapshots_taken_total 1\n", metrics);
            Assert.Contains("\nswitch_snapshots_failed_total 0\n", metrics);
            Assert.Matches(@"\nswitch_snapshot_last_position [1-9]\d*\n", metrics);
            Assert.Matches(@"\nswitch_snapshot_last_bytes [1-9]\d*\n", metrics);
            Assert.Matches(@"\nswitch_snapshot_last_age_seconds \d", metrics);
        }
        string other = Path.Combine(Data, "off");
        await using RunningSwitch off = await RunningSwitch.StartAsync(Config(other, snapshots: false), other);
        using var offAdmin = new AdminClient(off);
        RpcException refused = await AdminClient.FailsAsync(() => offAdmin.CallAsync(AdminMethods.TakeSnapshot, new TakeSnapshotRequest()), StatusCode.FailedPrecondition);
        Assert.StartsWith("SNAPSHOTS_DISABLED", refused.Status.Detail);
    }

    [Fact]
    public async Task The_views_a_start_takes_back_from_a_snapshot_are_recorded_again_byte_for_byte()
    {
        // Restored exactly and written deterministically: a snapshot taken right after a start from another, with no
        // output in between (ticks make none), holds the same view bytes (feeds, clearing, statistics, audit and a
        // ramp running in the routing view), wherever the journal's position has moved meanwhile.
        HostConfig config = Config(Data, snapshots: true) with
        {
            Snapshots = new SnapshotsConfig { EveryEvents = 0, AtBatchClose = false, AtStop = true, Keep = 4 },
        };
        await using (RunningSwitch sw = await RunningSwitch.StartAsync(config, Data))
        {
            using var admin = new AdminClient(sw);
            await admin.WaitAllTakeTrafficAsync("102");
            await PayAsync(sw, "one", 30);
            await admin.CallAsync(AdminMethods.SetWeights, Weights("103", "ramp", [2_000, 8_000], steps: 4, durationMs: 3_600_000));
            await admin.CallAsync(AdminMethods.CloseBatch, new CloseBatchRequest { Reason = "first" });
            await PayAsync(sw, "two", 20);
        }
        string stop = new Switch.Engine.Snapshots.SnapshotStore(Data).List()[0].Path;
        byte[] first = ViewsOf(File.ReadAllBytes(stop));
        await using RunningSwitch again = await RunningSwitch.StartAsync(config, Data);
        Assert.Equal(stop, again.Host.Engine.Recovery.SnapshotPath);
        long auditNo = again.Host.Audit.LastAuditNo;
        using var client = new AdminClient(again);
        TakeSnapshotReply retaken = await client.CallAsync(AdminMethods.TakeSnapshot, new TakeSnapshotRequest());
        Assert.Equal(auditNo, again.Host.Audit.LastAuditNo); // no output came between (a reachability change would be one)
        byte[] second = ViewsOf(File.ReadAllBytes(Path.Combine(Data, "snapshots", retaken.File)));
        Assert.True(first.Length > 1_000, $"{first.Length} bytes of views");
        Assert.True(first.AsSpan().SequenceEqual(second), $"views of {Path.GetFileName(stop)} ({first.Length} bytes) and of {retaken.File} ({second.Length}) differ");
    }

    /// <summary>The derived views' bytes of a snapshot file: the last section before the checksum, after its length.</summary>
    private static byte[] ViewsOf(byte[] file)
    {
        ReadOnlySpan<byte> head = [5, 0, 0, 0, (byte)'v', (byte)'i', (byte)'e', (byte)'w', (byte)'s'];
        int end = file.Length - 4; // the checksum
        for (int at = end - head.Length; at >= 8; at--)
        {
            if (!file.AsSpan(at, head.Length).SequenceEqual(head)) continue;
            long length = BitConverter.ToInt64(file, at - 8);
            if (at + length == end) return file[at..end];
        }
        throw new InvalidOperationException("no views section found");
    }

    internal static async Task PayAsync(RunningSwitch sw, string prefix, int count)
    {
        for (int i = 0; i < count; i++)
        {
            string key = Institutions[i % Institutions.Length];
            TransferRequest request = RunningSwitch.Payment($"{prefix}-{i}", 100 + i, bank: i % 3 == 0 ? "103" : "102", account: $"62220{prefix.Length:D2}{i:D10}");
            TransferResult result = await sw.PayAsync(request, key);
            Assert.True(result.Status is TransactionStatus.Succeeded or TransactionStatus.Failed, result.ToString());
        }
    }

    private static SetWeightsRequest Weights(string bank, string reason, int[] weights, int steps = 0, long durationMs = 0)
    {
        var request = new SetWeightsRequest { Bank = bank, Reason = reason, RampSteps = steps, RampDurationMs = durationMs };
        request.WeightsBps.AddRange(weights);
        return request;
    }

    /// <summary>The routing view only (live figures differ between two switches).</summary>
    private static ListBanksReply RoutingOnly(ListBanksReply reply)
    {
        var routing = new ListBanksReply();
        foreach (BankView bank in reply.Banks)
        {
            var view = new BankView { Bank = bank.Bank, Name = bank.Name, Ramp = bank.Ramp };
            foreach (EndpointView e in bank.Endpoints) view.Endpoints.Add(new EndpointView { Name = e.Name, WeightBps = e.WeightBps, State = e.State, Breaker = e.Breaker });
            routing.Banks.Add(view);
        }
        return routing;
    }

    private static async Task SameAsync<TReq, TResp>(AdminClient a, AdminClient b, GrpcMethod<TReq, TResp> method, TReq request, Func<TResp, TResp>? part = null)
        where TReq : class, IMessage<TReq> where TResp : class, IMessage<TResp>
    {
        part ??= r => r;
        TResp fromSnapshot = part(await a.CallAsync(method, request, AdminClient.ViewerKey));
        TResp whole = part(await b.CallAsync(method, request, AdminClient.ViewerKey));
        Assert.True(whole.Equals(fromSnapshot), $"{method.Name}: from the snapshot\n{fromSnapshot}\nfrom the whole journal\n{whole}");
        Assert.True(fromSnapshot.CalculateSize() > 0, $"{method.Name}: empty");
    }

    /// <summary>The institution's whole outcome feed, read over the wire from feed number 0.</summary>
    internal static async Task<List<byte[]>> ReadFeedAsync(RunningSwitch sw, int institutionIndex, string key)
    {
        long last = sw.Host.Feeds.For(institutionIndex).LastFeedNo;
        var outcomes = new List<byte[]>();
        if (last == 0) return outcomes;
        using var cts = new CancellationTokenSource(30_000);
        using ServerStreamingCall<TransferResult> feed = sw.Channel.ServerStreaming(InstitutionMethods.Outcomes,
            new OutcomesRequest { AfterFeedNo = 0 }, RunningSwitch.As(key) with { Timeout = null, CancellationToken = cts.Token });
        while (outcomes.Count < last)
        {
            TransferResult outcome = await feed.ResponseStream.ReadAsync() ?? throw new InvalidOperationException("the outcome feed ended early");
            Assert.Equal(outcomes.Count + 1, outcome.FeedNo);
            outcomes.Add(outcome.ToByteArray());
        }
        return outcomes;
    }

    private static byte[] RecordsOf(string dataDirectory, long batchId)
    {
        string path = Path.Combine(Switch.Engine.Clearing.ClearingFiles.BatchDirectory(dataDirectory, batchId), Switch.Engine.Clearing.ClearingFiles.RecordsFile);
        return File.Exists(path) ? File.ReadAllBytes(path) : [];
    }

    internal static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories)) Directory.CreateDirectory(dir.Replace(from, to));
        foreach (string file in Directory.GetFiles(from, "*", SearchOption.AllDirectories)) File.Copy(file, file.Replace(from, to));
    }
}
