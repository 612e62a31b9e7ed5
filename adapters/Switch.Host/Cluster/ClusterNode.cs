using System.Net;
using Switch.Cluster;
using Switch.Contracts.V1;
using Switch.Engine.Pipeline;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Grpc.Server;
using Switch.Host.Configuration;

namespace Switch.Host.Cluster;

/// <summary>
/// A switch node of a primary/standby pair (README "Hot standby"). One process, several lives: each life starts the
/// switch on the data directory either as the primary (it won the leader key in etcd) or as a standby of the node that
/// holds it (after a handshake that may cut its journal's tail or rebuild it), and ends when its role can no longer
/// hold: fenced (the lease could not be renewed in time), or a standby told to cut or rebuild. Then the next life
/// begins. The ports stay bound across lives: a caller meets NOT_PRIMARY, never a closed port.
/// </summary>
public sealed class ClusterNode
{
    /// <summary>How a node waits for etcd, a primary to follow, or a free leader key, between looks.</summary>
    private const int RetryDelayMs = 200;

    private readonly HostConfig _config;
    private readonly ClusterConfig _cluster;
    private readonly Log _log;
    private readonly NodeRole _role = NodeRole.StartingAsStandby(null);
    private readonly EtcdLeadership _leadership;
    private readonly ReplicationService _replication;
    private volatile SwitchHost? _host;
    private string? _notEligibleLogged;
    private string? _handshakeFailureLogged;
    private string? _campaignFailureLogged;
    /// <summary>A node that may not campaign looks at the in-sync record again this often.</summary>
    private const int NotEligibleRetryMs = 1_000;
    /// <summary>The primary checks whether its standby is in sync (and says so in etcd) this often.</summary>
    private const int InSyncCheckMs = 100;
    /// <summary>How long the gate waits for etcd to record that this primary acknowledges alone before it may degrade.</summary>
    private const int MayDegradeTimeoutMs = 2_000;
    /// <summary>A graceful stop waits this long for each of its parts that waits on etcd or a peer (the leadership's
    /// watch and lease keeper, the replication port's streams); past it the part is logged and left.</summary>
    private const int StopPartLimitMs = 10_000;
    /// <summary>A graceful stop waits this long for the engine's stop snapshot, drain and journal close, beyond the host's
    /// grace (twice: calls in flight, then the engine idle).</summary>
    private const int EngineStopLimitMs = 30_000;

    private ClusterNode(HostConfig config, Log log)
    {
        _config = config;
        _cluster = config.Cluster ?? throw new ArgumentException("not a cluster configuration", nameof(config));
        _log = log;
        _leadership = new EtcdLeadership(LeadershipOptionsOf(config));
        _replication = new ReplicationService(() => _role.IsPrimary && _host is { } host ? host.Engine : null, log);
    }

    public NodeRole Role => _role;
    public SwitchHost? Host => _host;

    public static LeadershipOptions LeadershipOptionsOf(HostConfig config)
    {
        ClusterConfig cluster = config.Cluster!;
        string host = cluster.AdvertisedHost ?? config.ListenAddress;
        return new LeadershipOptions
        {
            Endpoints = cluster.Etcd,
            ClusterName = cluster.Name,
            NodeName = cluster.Node,
            AdvertisedAddress = $"{host}:{config.InstitutionPort}",
            AdvertisedAdminAddress = $"{host}:{config.AdminGrpcPort}",
            ReplicationAddress = $"{host}:{cluster.ReplicationPort}",
            LeaseTtlMs = cluster.LeaseTtlMs,
            EtcdTimeoutMs = cluster.EtcdTimeoutMs,
            // Fence half a second before the lease can expire (less for a short lease), and renew at least twice within
            // what is left, so one lost renewal never fences.
            FenceMarginMs = Math.Min(500, cluster.LeaseTtlMs / 2),
            RenewIntervalMs = Math.Min(500, (cluster.LeaseTtlMs - Math.Min(500, cluster.LeaseTtlMs / 2)) / 2),
        };
    }

    /// <summary>Runs the node until <paramref name="stop"/>; a graceful stop resigns the leadership so the standby takes
    /// over at once. Exit code 0, or 1 when a life could not start for a reason no retry cures.</summary>
    public static async Task<int> RunAsync(HostConfig config, Log log, CancellationToken stop)
    {
        var node = new ClusterNode(config, log);
        GrpcServer replication = await GrpcServer.StartAsync(node._replication.Map(new GrpcRouter()),
            new GrpcEndpointOptions { Address = IPAddress.Parse(config.ListenAddress), Port = config.Cluster!.ReplicationPort });
        log.Info("listening", "replication (gRPC, h2c): a standby follows the primary's journal here", ("api", "replication"), ("address", replication.Address));
        try
        {
            try
            {
                node._leadership.StartObserving();
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        await node.LiveAsync(stop);
                    }
                    catch (OperationCanceledException) when (stop.IsCancellationRequested)
                    {
                    }
                }
            }
            finally
            {
                await StopPart.WaitAsync(log, "the etcd leadership (its watch and lease keeper)", () => node._leadership.DisposeAsync().AsTask(), StopPartLimitMs);
            }
        }
        finally
        {
            await StopPart.WaitAsync(log, "the replication port (a standby's stream)", () => replication.DisposeAsync().AsTask(), StopPartLimitMs);
        }
        return 0;
    }

    /// <summary>One life: standby or primary, until stopped, fenced, or told to cut or rebuild its journal.</summary>
    private async Task LiveAsync(CancellationToken stop)
    {
        LeaderView view = await _leadership.WaitForViewAsync(v => v.Fault is null, stop);
        if (view.Leader is { } leader && leader.Record.NodeName != _cluster.Node)
        {
            await LiveAsStandbyAsync(leader, stop);
            return;
        }
        if (view.Leader is not null)
        {
            // Our own key from a previous life of this node: its lease dies with its TTL; only then may a campaign win.
            await _leadership.WaitForViewAsync(v => v.Fault is not null || v.Leader?.Record.NodeName != _cluster.Node, stop);
            return;
        }
        // Campaign until this node wins, or another does (then the next life follows it).
        using var otherWon = CancellationTokenSource.CreateLinkedTokenSource(stop);
        Task<LeaderView> other = _leadership.WaitForViewAsync(v => v.Leader is { } l && l.Record.NodeName != _cluster.Node, otherWon.Token);
        // Only when another did win; a win seen as this life moves on finds the source disposed, and nothing to stop.
        _ = other.ContinueWith(_ =>
        {
            try { otherWon.Cancel(); } catch (ObjectDisposedException) { }
        }, CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
        long term;
        try
        {
            term = await CampaignAsync(otherWon.Token);
        }
        catch (OperationCanceledException) when (!stop.IsCancellationRequested)
        {
            return;
        }
        finally
        {
            otherWon.Cancel();
        }
        if (term == 0) return; // etcd failed, or this node may not lead: look again
        SwitchHost host = await StartHostAsync(genesis: null);
        host.RunAsPrimary();
        await TakeOfficeAsync(host, term, stop);
    }

    private async Task LiveAsStandbyAsync(LeaderInfo leader, CancellationToken stop)
    {
        Uri primary = Address(leader.Record.ReplicationAddress);
        HandshakeReply answer;
        try
        {
            // Before anything is recovered: where this journal ends, read from the journal alone.
            Engine.Replication.ReplicaPosition mine = SwitchEngine.ReadReplicaPosition(JournalOptions());
            answer = await HandshakeAsync(primary, new FollowerHello { Node = _cluster.Node, RecordCount = mine.RecordCount, LastRecordCrc = mine.LastRecordChecksum }, stop);
        }
        catch (Exception e) when (e is RpcException or IOException or HttpRequestException && !stop.IsCancellationRequested)
        {
            // Said once per distinct failure: a primary still recovering refuses every 200 ms.
            if (e.Message != _handshakeFailureLogged) _log.Warn("handshake_failed", "the primary did not answer the handshake; trying again", ("primary", primary), ("error", e.Message));
            _handshakeFailureLogged = e.Message;
            _role.BecomeStandby(PrimaryOf(leader));
            await Task.Delay(RetryDelayMs, stop);
            return;
        }
        _handshakeFailureLogged = null;
        ApplyVerdict(answer);
        _role.BecomeStandby(PrimaryOf(leader));
        SwitchHost host;
        try
        {
            host = await StartHostAsync(answer.Genesis.ToByteArray());
        }
        catch (Exception e) when (e is InvalidDataException or Engine.Replication.ReplicationRefusedException)
        {
            // The data left after a cut does not start (views past the cut: an old primary that ran asynchronous), or
            // began with another configuration: rebuilt from empty, as the handshake would have said for a diverged one.
            SetDataAside($"the data directory did not start as the primary's standby: {e.Message}");
            return;
        }
        JournalFollower? follower = null;
        host.Follow(count => follower?.Durable(count));
        follower = new JournalFollower(host.Engine, _cluster.Node, CurrentReplicationAddress, _log);
        using var campaignStop = CancellationTokenSource.CreateLinkedTokenSource(stop);
        Task<long> campaign = CampaignWhenFreeAsync(campaignStop.Token);
        Task ended = await Task.WhenAny(follower.Ended, campaign);
        if (ended == campaign && campaign is { IsCompletedSuccessfully: true, Result: > 0 })
        {
            await follower.DisposeAsync();
            await TakeOfficeAsync(host, campaign.Result, stop, promote: true);
            return;
        }
        campaignStop.Cancel();
        try { await campaign; } catch (OperationCanceledException) { }
        await follower.DisposeAsync();
        string? refusal = follower.Ended.IsCompletedSuccessfully ? follower.Ended.Result : null;
        if (refusal is not null) _log.Warn("standby_restarting", "following ended with a refusal; the next life handshakes again", ("reason", refusal));
        await EndLifeAsync(host, stopping: stop.IsCancellationRequested);
    }

    /// <summary>Cuts the tail or sets the data directory aside, as the primary answered; nothing for RESUME.</summary>
    private void ApplyVerdict(HandshakeReply answer)
    {
        EngineOptions journal = JournalOptions();
        switch (answer.Verdict)
        {
            case HandshakeVerdict.Resume:
                return;
            case HandshakeVerdict.Truncate:
                try
                {
                    var cut = SwitchEngine.TruncateJournal(journal, answer.RecordNo, answer.Checksum);
                    long cutRecords = cut?.RecordsCut ?? 0;
                    // The cut falls where the primary's newest term began: everything before it both nodes had from
                    // earlier terms' primaries, so no record of a term both share is cut.
                    _log.Warn("journal_tail_cut", $"this journal held records {answer.RecordNo} to {answer.RecordNo + cutRecords - 1}, which the primary never had " +
                        $"(its term {answer.Term} began at record {answer.RecordNo}): they are cut", ("kept_records", answer.RecordNo),
                        ("cut_records", cutRecords), ("first_cut_record", answer.RecordNo), ("last_cut_record", answer.RecordNo + cutRecords - 1),
                        ("primary_term", answer.Term), ("reason", answer.Detail));
                    return;
                }
                catch (Engine.Replication.ReplicationRefusedException e)
                {
                    _log.Warn("journal_tail_not_cut", e.Message);
                }
                break;
        }
        SetDataAside(answer.Detail);
    }

    /// <summary>The data directory moved aside whole (never deleted: it may hold what a person must look at); the node
    /// starts empty and catches up from the primary's genesis.</summary>
    private void SetDataAside(string reason)
    {
        string aside = $"{Path.GetFullPath(_config.DataDirectory).TrimEnd('/')}.rebuilt-{DateTime.UtcNow:yyyyMMddTHHmmssfffZ}";
        if (Directory.Exists(_config.DataDirectory)) Directory.Move(_config.DataDirectory, aside);
        _log.Warn("standby_rebuilt", "this node's data cannot follow the primary's journal: set aside whole (never deleted), the node starts empty",
            ("set_aside", aside), ("reason", reason));
    }

    /// <summary>The primary's life from the moment it holds the key: term journaled, ports serving, until fenced or stopped.</summary>
    private async Task TakeOfficeAsync(SwitchHost host, long term, CancellationToken stop, bool promote = false)
    {
        void OnFenced(LeadershipFault fault)
        {
            // The lease's fence is down already (MayAct is false). The ports answer NOT_PRIMARY and the log says why at
            // once: the engine's fence (its flags are set first, so nothing more passes its gate) may then wait for the
            // gate's thread, which can be asking etcd for up to a second, and the life's end for etcd calls in flight.
            _role.BecomeStandby(null);
            _log.Alert("fenced", $"leadership lost ({fault.Code}): this node stopped acknowledging and serving; it starts again as a standby",
                ("term", term), ("code", fault.Code), ("reason", fault.Message));
            host.Engine.Fence();
        }
        // The term's end is a task, not an event: a fence that fell before this line (etcd away while the engine started,
        // on a loaded machine) has completed it already and OnFenced runs at once. An event raised then was lost: the node
        // took office with its gate fenced, its logic frozen, and that life never ended.
        Task<LeadershipFault> ended = _leadership.TermEnded(term);
        using var lifeOver = new CancellationTokenSource();
        Task fenced = ended.ContinueWith(t => OnFenced(t.Result), lifeOver.Token, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        try
        {
            // Before anything is acknowledged in this term: only this node holds what it will acknowledge alone.
            bool published;
            try
            {
                published = await PublishInSyncAsync("", ended, stop);
            }
            catch (OperationCanceledException)
            {
                await EndLifeAsync(host, stopping: true); // stopped while etcd was being told: the journal still closes cleanly
                throw;
            }
            if (!published || ended.IsCompleted)
            {
                // Fenced (or the key lost) before the term acknowledged anything. The life ends like any fenced one: left
                // running, its engine would hold the journal's lock and the next life could never open it.
                if (ended.IsCompleted) await fenced; // its engine fenced and its ports refusing before the engine closes
                _log.Alert("fenced", "leadership lost before this term began: this node starts again as a standby", ("term", term),
                    ("code", ended.IsCompleted ? ended.Result.Code : LeadershipCodes.LeaderKeyLost));
                await EndLifeAsync(host);
                return;
            }
            if (promote) host.TakeOffice();
            if (_cluster.OnStandbyLost == ClusterConfig.StandbyLostDegrade && _cluster.Durability == ClusterConfig.DurabilitySynchronous
                && _replication.AttachedNode is null)
            {
                // Said in etcd above: no standby is in sync, so waiting the standby timeout first would only add to the RTO.
                host.Engine.DegradeReplication("took office with no standby attached: acknowledging alone until one catches up");
            }
            host.Engine.BeginTerm(term);
            _role.BecomePrimary();
            _log.Info("took_office", "this node is the primary", ("term", term), ("node", _cluster.Node));
            using var officeOver = CancellationTokenSource.CreateLinkedTokenSource(stop);
            Task watch = WatchStandbyAsync(host, ended, officeOver.Token);
            Task stopped = Task.Delay(Timeout.Infinite, stop);
            Task over = await Task.WhenAny(fenced, stopped);
            officeOver.Cancel();
            try { await watch; } catch (OperationCanceledException) { }
            if (over == fenced)
            {
                await EndLifeAsync(host);
                return;
            }
            // A graceful stop: finish in-flight work, then give the key up at once (its fence is no alert).
            lifeOver.Cancel();
            _role.BecomeStandby(null);
            await EndLifeAsync(host, stopping: true);
            try
            {
                await _leadership.ResignAsync(CancellationToken.None);
            }
            catch (LeadershipException e)
            {
                _log.Warn("resign_failed", "the leader key could not be given up; it expires with its lease", ("error", e.Message));
            }
        }
        finally
        {
            lifeOver.Cancel(); // the life is over: a fence from here on (its term's end) has no engine to stop
        }
    }

    /// <summary>Campaigns once the key is free, if this node holds every acknowledged payment (<see cref="InSyncRecord"/>);
    /// 0 when it may not or the campaign failed (look again).</summary>
    private async Task<long> CampaignAsync(CancellationToken stop)
    {
        try
        {
            InSyncRecord? inSync = await _leadership.ReadInSyncAsync(stop);
            if (!InSyncRecord.MayCampaign(inSync, _cluster.Node))
            {
                string why = $"the primary of term {inSync!.Term}, {inSync.Primary}, and its in-sync standby '{inSync.Standby}' hold every acknowledged payment; this node may lack some";
                if (why != _notEligibleLogged) _log.Warn("not_eligible", $"this node does not campaign: {why}; waiting for one of them", ("primary", inSync.Primary), ("standby", inSync.Standby));
                _notEligibleLogged = why;
                await Task.Delay(NotEligibleRetryMs, stop);
                return 0;
            }
            long term = await _leadership.CampaignAsync(stop);
            _campaignFailureLogged = null;
            return term;
        }
        catch (LeadershipException e)
        {
            // Said once per code: while etcd is away every retry fails the same way.
            if (e.Code != _campaignFailureLogged) _log.Warn("campaign_failed", e.Message, ("code", e.Code));
            _campaignFailureLogged = e.Code;
            await Task.Delay(RetryDelayMs, stop);
            return 0;
        }
    }

    /// <summary>The replication gate's question before it degrades (on its thread): true once etcd says this primary
    /// alone holds every acknowledged payment; false (keep waiting) when etcd cannot be told in time.</summary>
    private bool MayDegrade()
    {
        using var timeout = new CancellationTokenSource(MayDegradeTimeoutMs);
        try
        {
            bool published = _leadership.PublishInSyncAsync("", timeout.Token).GetAwaiter().GetResult();
            if (published) _log.Info("in_sync_published", "this primary alone holds every acknowledged payment (its standby stopped acknowledging)",
                ("primary", _cluster.Node), ("standby", ""), ("term", _leadership.Term));
            return published;
        }
        catch (Exception e) when (e is LeadershipException or OperationCanceledException)
        {
            _log.Alert("degrade_refused", "the standby stopped acknowledging and etcd could not be told that this primary acknowledges alone: waiting for the standby",
                ("error", e.Message));
            return false;
        }
    }

    /// <summary>Says in etcd which standby is in sync (empty: none); true once written, false when fenced meanwhile.</summary>
    private async Task<bool> PublishInSyncAsync(string standby, Task fenced, CancellationToken stop)
    {
        while (!fenced.IsCompleted)
        {
            try
            {
                if (await _leadership.PublishInSyncAsync(standby, stop))
                {
                    _log.Info("in_sync_published", standby.Length == 0 ? "this primary alone holds every acknowledged payment" : "this primary and its standby hold every acknowledged payment",
                        ("primary", _cluster.Node), ("standby", standby), ("term", _leadership.Term));
                    return true;
                }
                return false; // the key is no longer ours: the fence follows
            }
            catch (LeadershipException e)
            {
                _log.Warn("in_sync_not_published", e.Message, ("code", e.Code));
                await Task.Delay(RetryDelayMs, stop);
            }
        }
        return false;
    }

    /// <summary>The primary's watch on its standby: once one is attached with the gate synchronous and nothing owed, it
    /// is named in sync (it may then take office); once the gate is not synchronous, no standby is.</summary>
    private async Task WatchStandbyAsync(SwitchHost host, Task fenced, CancellationToken stop)
    {
        string published = "";
        while (!stop.IsCancellationRequested && !fenced.IsCompleted)
        {
            await Task.Delay(InSyncCheckMs, stop);
            Engine.Replication.ReplicationStatus? status = host.Engine.Replication;
            string? attached = _replication.AttachedNode;
            bool synchronous = status is { State: Engine.Replication.ReplicationState.Synchronous } && attached is not null;
            // Named once it owes nothing; a lag between two acknowledgements later is not a loss of sync.
            string inSync = !synchronous ? "" : published == attached || status!.Value.LagRecords == 0 ? attached! : published;
            if (inSync == published) continue;
            if (await PublishInSyncAsync(inSync, fenced, stop)) published = inSync;
        }
    }

    /// <summary>A standby's campaign: waits for the key to be free, then tries; again after each failure.</summary>
    private async Task<long> CampaignWhenFreeAsync(CancellationToken stop)
    {
        while (true)
        {
            long term = await CampaignAsync(stop);
            if (term > 0) return term;
        }
    }

    private async Task<SwitchHost> StartHostAsync(byte[]? genesis)
    {
        long startedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        SwitchHost host = await SwitchHost.StartAsync(_config, _log, role: _role, standbyGenesis: genesis, mayDegrade: MayDegrade,
            mayAct: () => _leadership.MayAct);
        // Each life says what it started from: a rejoining standby, which snapshot and how much of its own journal.
        RecoveryLog.Write(_log, host.Engine.Recovery, _config.DataDirectory, (long)System.Diagnostics.Stopwatch.GetElapsedTime(startedAt).TotalMilliseconds);
        _host = host;
        return host;
    }

    /// <summary>The life's engine closed. Within a graceful stop (<paramref name="stopping"/>) bounded: an engine that
    /// cannot stop in time is fenced (nothing more passes its gate once the key is given up) and left to the process's
    /// exit. Otherwise the next life needs the journal, so the close is waited for.</summary>
    private async Task EndLifeAsync(SwitchHost host, bool stopping = false)
    {
        _host = null;
        if (!stopping)
        {
            await host.DisposeAsync();
            return;
        }
        int limitMs = 2 * _config.ShutdownGraceMs + EngineStopLimitMs;
        if (!await StopPart.WaitAsync(_log, "the engine (stop snapshot, drain, journal close)", () => host.DisposeAsync().AsTask(), limitMs))
            host.Engine.Fence();
    }

    private Uri? CurrentReplicationAddress() =>
        _leadership.Observed?.Leader is { } leader && leader.Record.NodeName != _cluster.Node ? Address(leader.Record.ReplicationAddress) : null;

    private static async Task<HandshakeReply> HandshakeAsync(Uri primary, FollowerHello hello, CancellationToken stop)
    {
        using var channel = GrpcChannel.ForAddress(primary, new GrpcChannelOptions { ConnectTimeout = TimeSpan.FromSeconds(2) });
        return await channel.UnaryAsync(ReplicationMethods.Handshake, hello, new CallOptions { Timeout = TimeSpan.FromSeconds(10), CancellationToken = stop });
    }

    /// <summary>The journal's place and segment size, as the host's engine opens it.</summary>
    private EngineOptions JournalOptions() => new() { DataDirectory = _config.DataDirectory };

    private static PrimaryAddresses PrimaryOf(LeaderInfo leader) =>
        new(Address(leader.Record.Address), Address(leader.Record.AdminAddress), null);

    private static Uri Address(string hostPort) => new($"http://{hostPort}");
}
