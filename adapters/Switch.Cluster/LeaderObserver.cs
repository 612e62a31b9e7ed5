using System.Diagnostics;
using dotnet_etcd;
using Etcdserverpb;
using Google.Protobuf;
using Mvccpb;

namespace Switch.Cluster;

/// <summary>What a node knows of the leader key at etcd revision <see cref="Revision"/>: the leader, or none
/// (<see cref="Leader"/> null, no fault), or a fault (etcd unreachable, a value that is not ours). <see cref="Seq"/>
/// counts the views this node has published.</summary>
public sealed record LeaderView(LeaderInfo? Leader, long Revision, LeadershipFault? Fault, long Seq);

/// <summary>One job: keep <see cref="Current"/> equal to the leader key as etcd has it. Reads the key, then watches
/// it from the next revision; a progress request every renew interval proves etcd still answers, and a stream silent
/// past the etcd timeout is <c>ETCD_UNAVAILABLE</c> (etcd stopped or cut off) and is opened again.</summary>
internal sealed class LeaderObserver : IAsyncDisposable
{
    readonly EtcdClient _etcd;
    readonly EtcdCalls _calls;
    readonly LeadershipOptions _options;
    readonly ByteString _key;
    readonly CancellationTokenSource _stop = new();
    readonly Lock _gate = new();
    readonly List<(Func<LeaderView, bool> Match, TaskCompletionSource<LeaderView> Done)> _waiters = [];
    LeaderView? _current;
    long _seq;
    Task? _loop;

    public LeaderObserver(EtcdClient etcd, EtcdCalls calls, LeadershipOptions options)
    {
        _etcd = etcd;
        _calls = calls;
        _options = options;
        _key = ByteString.CopyFromUtf8(options.LeaderKey);
    }

    /// <summary>Raised on the observer's thread when the leader or the fault changes.</summary>
    public event Action<LeaderView>? Changed;

    public LeaderView? Current => Volatile.Read(ref _current);

    public void Start()
    {
        lock (_gate) _loop ??= Task.Run(RunAsync);
    }

    /// <summary>The first view (the current one included) that <paramref name="match"/> accepts.</summary>
    public Task<LeaderView> WaitAsync(Func<LeaderView, bool> match, CancellationToken ct)
    {
        var done = new TaskCompletionSource<LeaderView>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (_current is { } now && match(now)) return Task.FromResult(now);
            _waiters.Add((match, done));
        }
        if (!ct.CanBeCanceled) return done.Task;
        var registration = ct.Register(() =>
        {
            lock (_gate) _waiters.RemoveAll(w => w.Done == done);
            done.TrySetCanceled(ct);
        });
        return done.Task.ContinueWith(t => { registration.Dispose(); return t; }, TaskScheduler.Default).Unwrap();
    }

    // Broken: published as a fault; the key is read again after a renew interval.
    Task RunAsync() => Reconnecting.RunAsync(WatchOnceAsync,
        e => Publish(null, Current?.Revision ?? 0, _calls.Failure(e, "answer the leader key's watch").ToFault()),
        _options.RenewIntervalMs, _stop.Token);

    async Task WatchOnceAsync(CancellationToken stop)
    {
        var range = await _calls.Run(d => _etcd.GetConnection().KVClient.RangeAsync(new RangeRequest { Key = _key },
            deadline: d, cancellationToken: stop).ResponseAsync, "read the leader key", stop).ConfigureAwait(false);
        var revision = range.Header.Revision;
        PublishKey(range.Kvs.Count == 0 ? null : range.Kvs[0], revision);

        using var silent = CancellationTokenSource.CreateLinkedTokenSource(stop);
        using var call = _etcd.GetConnection().WatchClient.Watch(cancellationToken: silent.Token);
        await call.RequestStream.WriteAsync(new WatchRequest
        {
            CreateRequest = new WatchCreateRequest { Key = _key, StartRevision = revision + 1 },
        }, silent.Token).ConfigureAwait(false);
        long lastHeardTicks = Stopwatch.GetTimestamp();
        var prober = ProbeAsync(call.RequestStream, () => Volatile.Read(ref lastHeardTicks), silent);
        try
        {
            while (await call.ResponseStream.MoveNext(silent.Token).ConfigureAwait(false))
            {
                Volatile.Write(ref lastHeardTicks, Stopwatch.GetTimestamp());
                var response = call.ResponseStream.Current;
                if (response.Canceled)
                {
                    // A compacted start revision or a watch etcd dropped: read the key again and watch from there.
                    return;
                }
                foreach (var e in response.Events)
                {
                    PublishKey(e.Type == Event.Types.EventType.Delete ? null : e.Kv, e.Kv.ModRevision);
                }
                if (response.Events.Count == 0 && response.Header.Revision > (Current?.Revision ?? 0) && Current is { Fault: null } same)
                {
                    // A progress answer: nothing changed on the key up to this revision.
                    Publish(same.Leader, response.Header.Revision, null);
                }
            }
            throw new IOException("etcd ended the watch of the leader key");
        }
        catch (OperationCanceledException) when (!stop.IsCancellationRequested)
        {
            throw new LeadershipException(LeadershipCodes.EtcdUnavailable,
                $"etcd ({string.Join(",", _options.Endpoints)}) did not answer the leader key's watch for {_options.EtcdTimeoutMs + _options.RenewIntervalMs} ms (cluster.etcdTimeoutMs + the renew interval)");
        }
        finally
        {
            await silent.CancelAsync().ConfigureAwait(false);
            try { await prober.ConfigureAwait(false); } catch (Exception) { /* the watch's own failure is the one reported */ }
        }
    }

    /// <summary>Asks etcd for a progress answer every renew interval; cancels the watch when nothing came for the etcd
    /// timeout plus one interval.</summary>
    async Task ProbeAsync(Grpc.Core.IClientStreamWriter<WatchRequest> requests, Func<long> lastHeardTicks, CancellationTokenSource silent)
    {
        var probe = new WatchRequest { ProgressRequest = new WatchProgressRequest() };
        var silenceTicks = LeaseFence.MsToTicks(_options.EtcdTimeoutMs + _options.RenewIntervalMs);
        while (!silent.IsCancellationRequested)
        {
            await Task.Delay(_options.RenewIntervalMs, silent.Token).ConfigureAwait(false);
            if (Stopwatch.GetTimestamp() - lastHeardTicks() > silenceTicks)
            {
                await silent.CancelAsync().ConfigureAwait(false);
                return;
            }
            await requests.WriteAsync(probe, silent.Token).ConfigureAwait(false);
        }
    }

    void PublishKey(KeyValue? kv, long revision)
    {
        if (kv is null)
        {
            Publish(null, revision, null);
            return;
        }
        try
        {
            Publish(Describe(kv, _options.LeaderKey), revision, null);
        }
        catch (LeadershipException e)
        {
            Publish(null, revision, e.ToFault());
        }
    }

    /// <summary>The leader a key-value shows, or the precise reason it shows none.</summary>
    public static LeaderInfo Describe(KeyValue kv, string key)
    {
        var record = LeaderRecord.Parse(kv.Value.Span, key);
        if (kv.Lease == 0)
            throw new LeadershipException(LeadershipCodes.LeaderKeyWithoutLease,
                $"{key} names node '{record.NodeName}' but has no lease, so it never expires; delete it by hand once that node is stopped");
        return new LeaderInfo(record, kv.CreateRevision, kv.Lease);
    }

    void Publish(LeaderInfo? leader, long revision, LeadershipFault? fault)
    {
        LeaderView view;
        bool changed;
        List<TaskCompletionSource<LeaderView>>? matched = null;
        lock (_gate)
        {
            view = new LeaderView(leader, revision, fault, ++_seq);
            // A newer revision alone (a progress answer) moves Current and wakes waiters, but is no change to report.
            changed = _current is not { } before || before.Leader != leader || before.Fault != fault;
            Volatile.Write(ref _current, view);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (!_waiters[i].Match(view)) continue;
                (matched ??= []).Add(_waiters[i].Done);
                _waiters.RemoveAt(i);
            }
        }
        if (matched is not null) foreach (var done in matched) done.TrySetResult(view);
        if (!changed) return;
        try
        {
            Changed?.Invoke(view);
        }
        catch (Exception)
        {
            // A subscriber's failure is its own; the observer keeps watching.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is { } loop) await loop.ConfigureAwait(false);
        List<(Func<LeaderView, bool> Match, TaskCompletionSource<LeaderView> Done)> left;
        lock (_gate)
        {
            left = [.. _waiters];
            _waiters.Clear();
        }
        // A campaign still waiting must not wait forever on a watch that is gone.
        foreach (var waiter in left) waiter.Done.TrySetException(new ObjectDisposedException(nameof(EtcdLeadership), "the node stopped observing the leader key"));
    }
}
