using System.Collections.Concurrent;
using System.Diagnostics;
using dotnet_etcd;
using Etcdserverpb;
using Grpc.Core;

namespace Switch.Cluster;

/// <summary>One job: keep one lease alive for one term and fence the term the moment it may no longer act. Sends a
/// renewal every renew interval on etcd's keepalive stream (opened again when it breaks) and moves the
/// <see cref="LeaseFence"/> by the send time of each answered renewal; a stream that leaves a renewal unanswered for
/// an interval is given up for the next member's. A watchdog timer, independent of the stream, fences when the
/// deadline passes. etcd answering TTL 0 fences at once.</summary>
internal sealed class LeaseKeeper : IAsyncDisposable
{
    readonly IReadOnlyList<EtcdClient> _members;
    readonly LeadershipOptions _options;
    readonly long _leaseId;
    readonly long _ttlMs;
    readonly LeaseFence _fence;
    readonly Action<LeadershipFault> _onFenced;
    readonly CancellationTokenSource _stop = new();
    readonly Timer _watchdog;
    volatile string? _lastError;
    int _member;
    Task? _loop;

    /// <param name="members">One client per etcd member: a stream given up goes to the next one.</param>
    public LeaseKeeper(IReadOnlyList<EtcdClient> members, LeadershipOptions options, long leaseId, long ttlMs, LeaseFence fence, Action<LeadershipFault> onFenced)
    {
        if (members.Count == 0) throw new ArgumentException("no etcd member", nameof(members));
        _members = members;
        _options = options;
        _leaseId = leaseId;
        _ttlMs = ttlMs;
        _fence = fence;
        _onFenced = onFenced;
        _watchdog = new Timer(_ => OnWatchdog(), null, Timeout.Infinite, Timeout.Infinite);
    }

    public void Start()
    {
        ArmWatchdog();
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Ends the term now with <paramref name="fault"/>; reports it once (false when already fenced).</summary>
    public bool FenceNow(LeadershipFault fault)
    {
        if (!_fence.Fence()) return false;
        _stop.Cancel();
        SetWatchdog(Timeout.Infinite);
        try
        {
            _onFenced(fault);
        }
        catch (Exception)
        {
            // A subscriber's failure must not keep the fence from holding; the fence is already down.
        }
        return true;
    }

    // A broken stream is opened again soon: the deadline, not a retry count, decides when to give up.
    Task RunAsync() => Reconnecting.RunAsync(StreamAsync,
        e => _lastError = e is RpcException r ? $"{r.StatusCode} {r.Status.Detail}" : $"{e.GetType().Name}: {e.Message}",
        Math.Max(LeadershipOptions.MinIntervalMs, _options.RenewIntervalMs / 4), _stop.Token);

    async Task StreamAsync(CancellationToken ct)
    {
        using var stream = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var member = _member;
        using var call = _members[member].GetConnection().LeaseClient.LeaseKeepAlive(cancellationToken: stream.Token);
        var sentTicks = new ConcurrentQueue<long>();
        var reader = ReadAsync(call.ResponseStream, sentTicks, stream.Token);
        // With several members, a renewal unanswered for a whole interval gives the stream up for the next member's:
        // at most half the fence window is spent on a hung member (cluster.renewIntervalMs ≤ (TTL − margin) / 2).
        // With one, a slow answer is still worth waiting for: a new stream would reach the same member.
        var stall = _members.Count > 1 ? CancelWhenStalledAsync(sentTicks, stream) : Task.CompletedTask;
        var request = new LeaseKeepAliveRequest { ID = _leaseId };
        try
        {
            while (true)
            {
                // The send time is taken BEFORE the request leaves: the deadline counts from it (see LeaseFence).
                sentTicks.Enqueue(Stopwatch.GetTimestamp());
                await call.RequestStream.WriteAsync(request, stream.Token).ConfigureAwait(false);
                var next = Task.Delay(_options.RenewIntervalMs, stream.Token);
                if (await Task.WhenAny(reader, next).ConfigureAwait(false) == reader)
                {
                    await reader.ConfigureAwait(false);
                    return;
                }
                await next.ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            _member = (member + 1) % _members.Count;
            throw new TimeoutException($"etcd member {_options.Endpoints[member]} answered no renewal for {_options.RenewIntervalMs} ms; the next goes to {_options.Endpoints[_member]}");
        }
        finally
        {
            await stream.CancelAsync().ConfigureAwait(false);
            // Their own ends (cancelled, or the stream's failure already thrown) need no report.
            await Task.WhenAll(reader, stall).ContinueWith(static _ => { }, TaskScheduler.Default).ConfigureAwait(false);
        }
    }

    /// <summary>Cancels <paramref name="stream"/> once its oldest renewal has gone unanswered for a renew interval.</summary>
    async Task CancelWhenStalledAsync(ConcurrentQueue<long> sentTicks, CancellationTokenSource stream)
    {
        var limitTicks = LeaseFence.MsToTicks(_options.RenewIntervalMs);
        var checkMs = Math.Max(LeadershipOptions.MinIntervalMs, _options.RenewIntervalMs / 4);
        while (true)
        {
            await Task.Delay(checkMs, stream.Token).ConfigureAwait(false);
            if (sentTicks.TryPeek(out var oldest) && Stopwatch.GetTimestamp() - oldest >= limitTicks)
            {
                await stream.CancelAsync().ConfigureAwait(false);
                return;
            }
        }
    }

    async Task ReadAsync(IAsyncStreamReader<LeaseKeepAliveResponse> answers, ConcurrentQueue<long> sentTicks, CancellationToken ct)
    {
        while (await answers.MoveNext(ct).ConfigureAwait(false))
        {
            var answer = answers.Current;
            // etcd answers a keepalive stream's requests one for one, in order.
            if (!sentTicks.TryDequeue(out var sent))
                throw new InvalidOperationException($"etcd answered a renewal of lease {_leaseId:x} that was not sent");
            if (answer.TTL <= 0)
            {
                FenceNow(new LeadershipFault(LeadershipCodes.LeaseExpired,
                    $"etcd says lease {_leaseId:x} has expired (renewal answered TTL 0): leadership is lost"));
                return;
            }
            if (_fence.Renewed(sent)) ArmWatchdog();
        }
        throw new IOException("etcd ended the keepalive stream");
    }

    void OnWatchdog()
    {
        if (_fence.IsFenced) return;
        var now = Stopwatch.GetTimestamp();
        if (now < _fence.DeadlineTicks)
        {
            ArmWatchdog();
            return;
        }
        var sinceMs = LeaseFence.TicksToMs(now - _fence.LastRenewalSentTicks);
        FenceNow(new LeadershipFault(LeadershipCodes.EtcdUnavailable,
            $"etcd answered no renewal of lease {_leaseId:x} in time: the newest answered one was sent {sinceMs:F0} ms ago, " +
            $"so the lease ({_ttlMs} ms) can expire at etcd {_ttlMs - sinceMs:F0} ms from now at the earliest " +
            $"(fence margin {_options.FenceMarginMs} ms); last error: {_lastError ?? "none, etcd did not answer"}"));
    }

    void ArmWatchdog()
    {
        var remainingTicks = _fence.DeadlineTicks - Stopwatch.GetTimestamp();
        SetWatchdog(remainingTicks <= 0 ? 0 : (long)Math.Ceiling(LeaseFence.TicksToMs(remainingTicks)) + 1);
    }

    void SetWatchdog(long dueMs)
    {
        try
        {
            _watchdog.Change(dueMs, Timeout.Infinite);
        }
        catch (ObjectDisposedException)
        {
            // Disposed with its term.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _watchdog.DisposeAsync().ConfigureAwait(false);
        if (_loop is { } loop) await loop.ConfigureAwait(false);
        // _stop stays undisposed: FenceNow may still cancel it from a late answer; it holds no timer.
    }
}
