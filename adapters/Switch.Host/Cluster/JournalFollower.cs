using Switch.Contracts.V1;
using Switch.Engine.Pipeline;
using Switch.Engine.Replication;
using Switch.Grpc;
using Switch.Grpc.Client;

namespace Switch.Host.Cluster;

/// <summary>
/// The standby's side of replication.proto's Follow: connects to the primary etcd names, says where its journal ends,
/// hands every batch to its following engine (which journals and applies it) and acknowledges what its journal made
/// durable. A broken stream is retried (the primary may be restarting, or changing); a refusal that no retry can cure
/// (this journal is not a prefix of the primary's, or too far behind) ends the follower with that refusal, for the node
/// to rebuild its data.
/// </summary>
public sealed class JournalFollower : IAsyncDisposable
{
    private const int RetryDelayMs = 200;
    private readonly SwitchEngine _engine;
    private readonly string _node;
    private readonly Func<Uri?> _primary;
    private readonly Log _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _acked = new(0, 1);
    private long _durable = -1;
    private readonly Task<string?> _run;

    /// <param name="primary">The primary's replication address as etcd names it now, or null while none is known.</param>
    public JournalFollower(SwitchEngine engine, string node, Func<Uri?> primary, Log log)
    {
        _engine = engine;
        _node = node;
        _primary = primary;
        _log = log;
        _run = Task.Run(RunAsync);
    }

    /// <summary>Completes when following ends: null when stopped, else the refusal that ended it.</summary>
    public Task<string?> Ended => _run;


    /// <summary>From the engine's journal thread after each local commit: never blocks.</summary>
    public void Durable(long durableRecordCount)
    {
        Interlocked.Exchange(ref _durable, durableRecordCount);
        if (_acked.CurrentCount != 0) return; // a wake-up is pending: the writer reads the newest count when it runs
        try { _acked.Release(); } catch (SemaphoreFullException) { }
    }

    private async Task<string?> RunAsync()
    {
        CancellationToken stop = _stop.Token;
        string? lastFailure = null;
        while (!stop.IsCancellationRequested)
        {
            Uri? primary = _primary();
            if (primary is null)
            {
                await DelayAsync(stop);
                continue;
            }
            try
            {
                await FollowAsync(primary, stop);
            }
            catch (Exception) when (stop.IsCancellationRequested)
            {
                return null;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.FailedPrecondition && IsIncurable(e.Status.Detail))
            {
                _log.Error("follow_refused", e.Status.Detail, ("primary", primary));
                return e.Status.Detail;
            }
            catch (ReplicationRefusedException e) when (e.Refusal is not (ReplicationRefusal.TermStale or ReplicationRefusal.NotFollowing))
            {
                _log.Error("follow_refused", e.Message, ("primary", primary));
                return e.Message;
            }
            catch (Exception e) when (e is RpcException or IOException or HttpRequestException or OperationCanceledException or ReplicationRefusedException)
            {
                string failure = e is RpcException r ? $"{r.StatusCode}: {r.Status.Detail}" : e.Message;
                if (failure != lastFailure) _log.Warn("follow_interrupted", "the stream from the primary ended; following again", ("primary", primary), ("error", failure));
                lastFailure = failure;
            }
            await DelayAsync(stop);
        }
        return null;
    }

    /// <summary>Refusals only a new handshake (a restart of this node's life) can answer: a cut, a rebuild.</summary>
    private static bool IsIncurable(string detail) =>
        detail.StartsWith("HANDSHAKE_", StringComparison.Ordinal) || detail.StartsWith("REPLICA_", StringComparison.Ordinal)
        || detail.StartsWith("GENESIS_MISMATCH", StringComparison.Ordinal);

    private async Task FollowAsync(Uri primary, CancellationToken stop)
    {
        using var channel = GrpcChannel.ForAddress(primary, new GrpcChannelOptions { ConnectTimeout = TimeSpan.FromSeconds(2) });
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stop);
        using DuplexStreamingCall<FollowerMessage, JournalBatch> call = channel.DuplexStreaming(ReplicationMethods.Follow,
            new CallOptions { CancellationToken = linked.Token });
        ReplicaPosition position = _engine.ReplicaPosition;
        await call.RequestStream.WriteAndFlushAsync(new FollowerMessage
        {
            Hello = new FollowerHello { Node = _node, RecordCount = position.RecordCount, LastRecordCrc = position.LastRecordChecksum },
        }, linked.Token);
        _log.Info("following", "following the primary's journal", ("primary", primary), ("from_record", position.RecordCount));
        // What this journal holds durable already counts: a primary waiting at its gate for records this standby
        // journaled before the stream broke need not wait for the next commit.
        Durable(Math.Max(Interlocked.Read(ref _durable), position.RecordCount));
        Task acks = AcknowledgeAsync(call, linked.Token);
        long startedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        bool caughtUp = false;
        try
        {
            while (await call.ResponseStream.ReadAsync(linked.Token) is { } batch)
            {
                long accepted = _engine.ApplyReplicated(batch.Term, batch.FirstRecordNo, batch.Records.Span);
                if (!caughtUp && accepted >= batch.PrimaryRecords)
                {
                    // Once per stream: how far behind this node was, and how long streaming the gap took.
                    caughtUp = true;
                    _log.Info("caught_up", $"reached the primary's journal end: {accepted - position.RecordCount} records streamed from record {position.RecordCount}",
                        ("primary", primary), ("from_record", position.RecordCount), ("records_streamed", accepted - position.RecordCount),
                        ("primary_records", batch.PrimaryRecords), ("elapsed_ms", (long)System.Diagnostics.Stopwatch.GetElapsedTime(startedAt).TotalMilliseconds));
                }
            }
            throw new IOException("the primary ended the stream");
        }
        finally
        {
            linked.Cancel();
            try { await acks; } catch (Exception) { }
        }
    }

    /// <summary>The newest durable count, whenever it grows: acknowledgements coalesce, never queue.</summary>
    private async Task AcknowledgeAsync(DuplexStreamingCall<FollowerMessage, JournalBatch> call, CancellationToken cancel)
    {
        long sent = -1;
        while (!cancel.IsCancellationRequested)
        {
            await _acked.WaitAsync(cancel);
            long durable = Interlocked.Read(ref _durable);
            if (durable <= sent) continue;
            await call.RequestStream.WriteAndFlushAsync(new FollowerMessage { Ack = new FollowerAck { DurableRecordCount = durable } }, cancel);
            sent = durable;
        }
    }

    private static async Task DelayAsync(CancellationToken stop)
    {
        try { await Task.Delay(RetryDelayMs, stop); } catch (OperationCanceledException) { }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try { await _run; } catch (Exception) { }
        _stop.Dispose();
    }
}
