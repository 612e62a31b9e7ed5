using System.Diagnostics;
using dotnet_etcd;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client.Configuration;

namespace Switch.Cluster;

/// <summary>One job: hold or follow the leadership of a cluster in etcd (README "Leadership (etcd)").
///
/// The leader holds <c>/switch/&lt;cluster&gt;/leader</c> with a lease; the value names it and its addresses
/// (<see cref="LeaderRecord"/>). A campaign waits until the key is absent, grants a lease and creates the key in one
/// transaction that succeeds only if the key still does not exist; etcd, not this code, decides who wins.
///
/// The term is the leader key's create revision. etcd's revision counts every change to its store, only grows, and
/// is never reused (compaction drops old versions, never lowers the counter), so every new leader key has a larger
/// create revision than every earlier one: the terms of successive leaders grow without any counter of ours. It goes
/// back only if etcd's data directory is wiped and the cluster started afresh, which a standby's journal would then
/// refuse (its newest term would be ahead).
///
/// While leading, <see cref="MayAct"/> (read before each acknowledgement) is true only before the fence deadline
/// (<see cref="LeaseFence"/>); <see cref="Fenced"/> fires once when the term ends for any reason.</summary>
public sealed class EtcdLeadership : IAsyncDisposable
{
    readonly LeadershipOptions _options;
    readonly EtcdClient _etcd;
    readonly EtcdClient[] _members;
    readonly EtcdCalls _calls;
    readonly LeaderObserver _observer;
    readonly ByteString _key;
    readonly ByteString _value;
    readonly SemaphoreSlim _campaigning = new(1, 1);
    volatile HeldTerm? _term;

    sealed record HeldTerm(long Number, long LeaseId, LeaseFence Fence, LeaseKeeper Keeper)
    {
        /// <summary>Completed once, when the term ends, with why: it stays completed for whoever looks later.</summary>
        public TaskCompletionSource<LeadershipFault> Ended { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public EtcdLeadership(LeadershipOptions options)
    {
        options.Validate();
        _options = options;
        // No automatic retries: a call either answers within cluster.etcdTimeoutMs or is ETCD_UNAVAILABLE, and the
        // fence deadline, not a retry policy, decides how long a leader waits for etcd.
        _etcd = Client(string.Join(",", options.Endpoints));
        // The keepalive stream has a client per member, so it can leave a hung one for the next (LeaseKeeper).
        _members = options.Endpoints.Count == 1 ? [_etcd] : options.Endpoints.Select(Client).ToArray();
        _calls = new EtcdCalls(options);
        _observer = new LeaderObserver(_etcd, _calls, options);
        _observer.Changed += OnLeaderView;
        _key = ByteString.CopyFromUtf8(options.LeaderKey);
        _value = ByteString.CopyFrom(LeaderRecord.Of(options).ToUtf8Json());
    }

    static EtcdClient Client(string endpoints) => new(endpoints,
        configureChannelOptions: o => o.ServiceConfig = new ServiceConfig { LoadBalancingConfigs = { new RoundRobinConfig() } });

    public LeadershipOptions Options => _options;

    /// <summary>Fires once per term when it ends: fence deadline passed (<c>ETCD_UNAVAILABLE</c>), lease expired
    /// (<c>LEASE_EXPIRED</c>), key lost (<c>LEADER_KEY_LOST</c>) or resigned (<c>RESIGNED</c>). By then
    /// <see cref="MayAct"/> is already false. Raised on a timer or stream thread: keep handlers short.</summary>
    public event Action<LeadershipFault>? Fenced;

    /// <summary>Completes when term <paramref name="term"/> (the one this node won last) ends, with the fault
    /// <see cref="Fenced"/> reported, also when it ended before this was asked. Why not the event alone: a host that
    /// subscribed only once its engine had started missed a fence that fell meanwhile (a loaded machine, etcd away) and
    /// took office with its gate fenced, its logic frozen.</summary>
    public Task<LeadershipFault> TermEnded(long term) => _term is { } held && held.Number == term
        ? held.Ended.Task
        : throw new InvalidOperationException($"term {term} is not the term this node won last ({Term})");

    /// <summary>Every change of leader the watch sees (also faults: etcd unreachable, a value not ours).</summary>
    public event Action<LeaderView>? LeaderChanged
    {
        add => _observer.Changed += value;
        remove => _observer.Changed -= value;
    }

    /// <summary>Who leads now as the watch last saw it; null before the first read (see <see cref="StartObserving"/>).</summary>
    public LeaderView? Observed => _observer.Current;

    /// <summary>Starts watching the leader key without campaigning (a campaign starts it too).</summary>
    public void StartObserving() => _observer.Start();

    /// <summary>The view that first matches <paramref name="match"/>, the current one included.</summary>
    public Task<LeaderView> WaitForViewAsync(Func<LeaderView, bool> match, CancellationToken ct)
    {
        _observer.Start();
        return _observer.WaitAsync(match, ct);
    }

    /// <summary>The term this node won last (0 before any); it stays after the term is fenced, for the log.</summary>
    public long Term => _term?.Number ?? 0;

    /// <summary>True while this node leads and its fence deadline lies ahead.</summary>
    public bool MayAct => _term is { } t && t.Fence.MayAct;

    /// <summary>The fence deadline in <see cref="Stopwatch"/> ticks; <see cref="long.MinValue"/> when not leading.</summary>
    public long FenceDeadlineTicks => _term?.Fence.DeadlineTicks ?? long.MinValue;

    /// <summary>When the newest answered renewal (or the grant) of the current term was sent, in <see cref="Stopwatch"/>
    /// ticks; etcd cannot expire the lease before this + TTL.</summary>
    public long LastRenewalSentTicks => _term?.Fence.LastRenewalSentTicks ?? 0;

    /// <summary>Waits until the leader key is free, then tries to take it; returns the new term once this node leads.
    /// Throws <see cref="LeadershipException"/>: <c>ETCD_UNAVAILABLE</c> (the caller retries), <c>ETCD_REFUSED</c>,
    /// <c>LEADER_VALUE_MALFORMED</c> or <c>LEADER_KEY_WITHOUT_LEASE</c> (the key holds what no campaign can replace).</summary>
    public async Task<long> CampaignAsync(CancellationToken ct)
    {
        if (!await _campaigning.WaitAsync(0, ct).ConfigureAwait(false))
            throw new InvalidOperationException("a campaign is already running on this node");
        try
        {
            if (_term is { Fence.IsFenced: false } held)
                throw new InvalidOperationException($"this node already leads term {held.Number}");
            _observer.Start();
            // The key may still hold this node's own fenced term (its revoke failed while etcd was away): the
            // campaign ends that lease rather than wait out its TTL. A leader's lease is never 0.
            var staleLeaseId = _term?.LeaseId ?? 0;
            var firstSeq = _observer.Current?.Seq ?? 0;
            var minRevision = 0L;
            while (true)
            {
                // A fault counts only when seen after the campaign began: an old one may be healed already.
                var view = await WaitForOpeningAsync(v => (v.Fault is not null && v.Seq > firstSeq)
                    || (v.Fault is null && (v.Leader is null || v.Leader.LeaseId == staleLeaseId) && v.Revision >= minRevision),
                    staleLeaseId, ct).ConfigureAwait(false);
                if (view.Fault is { } fault) throw new LeadershipException(fault.Code, fault.Message);
                if (view.Leader is { } stale)
                {
                    await RevokeAsync(stale.LeaseId, ct).ConfigureAwait(false);
                    minRevision = view.Revision + 1;
                    continue;
                }
                var (won, revision) = await TryTakeAsync(ct).ConfigureAwait(false);
                if (won) return _term!.Number;
                minRevision = revision + 1;
            }
        }
        finally
        {
            _campaigning.Release();
        }
    }

    /// <summary>
    /// The first view <paramref name="match"/> accepts; or, when none came within the etcd timeout, the current view if
    /// it is healthy and shows the key free (or held by <paramref name="staleLeaseId"/>). Why: the watch reports a newer
    /// revision only when something happens after it, and a loaded machine could see the key's deletion before the
    /// revision the campaign waits for was set, so waiting on the watch alone once hung a campaign for good with the
    /// key free. The creating transaction decides who wins, so trying again is always safe.
    /// </summary>
    async Task<LeaderView> WaitForOpeningAsync(Func<LeaderView, bool> match, long staleLeaseId, CancellationToken ct)
    {
        while (true)
        {
            using var patience = CancellationTokenSource.CreateLinkedTokenSource(ct);
            patience.CancelAfter(_options.EtcdTimeoutMs);
            try
            {
                return await _observer.WaitAsync(match, patience.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                if (_observer.Current is { Fault: null } now && (now.Leader is null || now.Leader.LeaseId == staleLeaseId)) return now;
            }
        }
    }

    /// <summary>One attempt: a lease, then "create the key if absent". Returns whether this node won, and otherwise
    /// the revision at which another held the key.</summary>
    async Task<(bool Won, long Revision)> TryTakeAsync(CancellationToken ct)
    {
        var kv = _etcd.GetConnection().KVClient;
        var ttlSeconds = _options.LeaseTtlMs / 1_000;
        var grantSentTicks = Stopwatch.GetTimestamp();
        var grant = await _calls.Run(d => _etcd.GetConnection().LeaseClient.LeaseGrantAsync(
            new LeaseGrantRequest { TTL = ttlSeconds }, deadline: d, cancellationToken: ct).ResponseAsync, "grant a lease", ct).ConfigureAwait(false);
        if (!string.IsNullOrEmpty(grant.Error))
            throw new LeadershipException(LeadershipCodes.EtcdRefused, $"etcd refused a lease of {ttlSeconds} s: {grant.Error}");
        TxnResponse txn;
        try
        {
            var read = new RequestOp { RequestRange = new RangeRequest { Key = _key } };
            var request = new TxnRequest
            {
                Compare = { new Compare { Key = _key, Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Equal, CreateRevision = 0 } },
                Success = { new RequestOp { RequestPut = new PutRequest { Key = _key, Value = _value, Lease = grant.ID } }, read },
                Failure = { read },
            };
            txn = await _calls.Run(d => kv.TxnAsync(request, deadline: d, cancellationToken: ct).ResponseAsync,
                $"create {_options.LeaderKey}", ct).ConfigureAwait(false);
        }
        catch (Exception)
        {
            await RevokeQuietlyAsync(grant.ID).ConfigureAwait(false);
            throw;
        }
        if (!txn.Succeeded)
        {
            await RevokeQuietlyAsync(grant.ID).ConfigureAwait(false);
            var holder = txn.Responses[0].ResponseRange.Kvs;
            // A value that is not ours, or ours without a lease, throws here: waiting could never end.
            if (holder.Count > 0) LeaderObserver.Describe(holder[0], _options.LeaderKey);
            return (false, txn.Header.Revision);
        }
        var created = txn.Responses[1].ResponseRange.Kvs[0];
        if (created.Lease != grant.ID || created.CreateRevision != txn.Header.Revision)
            throw new InvalidOperationException($"etcd created {_options.LeaderKey} at revision {created.CreateRevision} with lease {created.Lease:x}, " +
                                                $"not at {txn.Header.Revision} with {grant.ID:x}, in one transaction");
        // Never trust a longer TTL than asked for: a shorter one only fences earlier.
        var ttlMs = Math.Min(grant.TTL * 1_000, _options.LeaseTtlMs);
        var fence = new LeaseFence(ttlMs, _options.FenceMarginMs, grantSentTicks);
        HeldTerm? term = null;
        var keeper = new LeaseKeeper(_members, _options, grant.ID, ttlMs, fence, f => OnFenced(term!, f));
        term = new HeldTerm(created.CreateRevision, grant.ID, fence, keeper);
        var previous = _term;
        _term = term;
        if (previous is not null) await previous.Keeper.DisposeAsync().ConfigureAwait(false);
        keeper.Start();
        return (true, txn.Header.Revision);
    }

    /// <summary>Gives leadership up at once: <see cref="MayAct"/> turns false, <see cref="Fenced"/> fires with
    /// <c>RESIGNED</c>, and the lease is revoked, which deletes the key, so a standby takes over now rather than after
    /// the TTL. Throws <c>ETCD_UNAVAILABLE</c> when etcd cannot be told (the key then goes with the lease's TTL).</summary>
    public async Task ResignAsync(CancellationToken ct)
    {
        if (_term is not { } term) return;
        term.Keeper.FenceNow(new LeadershipFault(LeadershipCodes.Resigned, $"node '{_options.NodeName}' resigned term {term.Number}"));
        await term.Keeper.DisposeAsync().ConfigureAwait(false);
        await RevokeAsync(term.LeaseId, ct).ConfigureAwait(false);
    }

    /// <summary>Revokes a lease, which deletes the keys attached to it; one already gone is no error.</summary>
    async Task RevokeAsync(long leaseId, CancellationToken ct)
    {
        try
        {
            await _calls.Run(d => _etcd.GetConnection().LeaseClient.LeaseRevokeAsync(new LeaseRevokeRequest { ID = leaseId },
                deadline: d, cancellationToken: ct).ResponseAsync, $"revoke lease {leaseId:x}", ct).ConfigureAwait(false);
        }
        catch (LeadershipException e) when (e.InnerException is RpcException { StatusCode: StatusCode.NotFound })
        {
            // Expired or revoked already: the key went with it.
        }
    }

    void OnFenced(HeldTerm term, LeadershipFault fault)
    {
        term.Ended.TrySetResult(fault); // first: a subscriber that throws must not keep it from those who wait
        try
        {
            Fenced?.Invoke(fault);
        }
        finally
        {
            // Stop holding a key we may no longer act on, so another node need not wait out the TTL (harmless when
            // the lease is gone already; a resignation revokes it itself and reports the outcome).
            if (fault.Code is not (LeadershipCodes.Resigned or LeadershipCodes.LeaseExpired))
                _ = RevokeQuietlyAsync(term.LeaseId);
        }
    }

    /// <summary>The watch saw the key at or after this term's creation without this term in it: someone deleted or
    /// replaced it, and another node may win, so this one stops.</summary>
    void OnLeaderView(LeaderView view)
    {
        if (_term is not { } term || term.Fence.IsFenced || view.Fault is not null || view.Revision < term.Number) return;
        if (view.Leader?.Term == term.Number) return;
        var now = view.Leader is { } other ? $"node '{other.Record.NodeName}' term {other.Term}" : "nobody";
        term.Keeper.FenceNow(new LeadershipFault(LeadershipCodes.LeaderKeyLost,
            $"{_options.LeaderKey} no longer holds term {term.Number} at revision {view.Revision} (it names {now})"));
    }

    async Task RevokeQuietlyAsync(long leaseId)
    {
        try
        {
            await RevokeAsync(leaseId, CancellationToken.None).ConfigureAwait(false);
        }
        catch (LeadershipException)
        {
            // Best effort: an unrevoked lease ends by its TTL.
        }
    }

    /// <summary>Which nodes hold every acknowledged payment, as the last primary wrote it (null: a new cluster).</summary>
    public Task<InSyncRecord?> ReadInSyncAsync(CancellationToken ct) => InSyncRecord.ReadAsync(_etcd, _options, ct);

    /// <summary>While this node leads: it and <paramref name="standby"/> (empty: none in sync) hold every acknowledged
    /// payment. False when this node no longer holds the key, or its fence deadline has passed (it must not act), without
    /// asking etcd: etcd still holds the key a while after the fence (the lease expires there a margin later, and an etcd
    /// back from a pause revokes overdue leases only a moment after it answers again), and a fenced node once wrote its
    /// in-sync record in that while and took office.</summary>
    public Task<bool> PublishInSyncAsync(string standby, CancellationToken ct) => _term is { } term && term.Fence.MayAct
        ? new InSyncRecord(_options.NodeName, standby, term.Number).PublishAsync(_etcd, _options, ct)
        : Task.FromResult(false);

    /// <summary>Stops watching and renewing without revoking, as a dead process would: the lease runs out at etcd by
    /// its TTL (call <see cref="ResignAsync"/> first for a graceful stop).</summary>
    public async ValueTask DisposeAsync()
    {
        await _observer.DisposeAsync().ConfigureAwait(false);
        if (_term is { } term)
        {
            term.Fence.Fence();
            await term.Keeper.DisposeAsync().ConfigureAwait(false);
        }
        foreach (var member in _members) if (member != _etcd) member.Dispose();
        _etcd.Dispose();
    }
}
