using Switch.Engine.Pipeline;
using Switch.Engine.Replication;

namespace Switch.Engine.Tests.Replication;

/// <summary>
/// The transport in one process: the handshake, then the primary's feed read and applied to the standby on a
/// background task; the standby's durable counts go back to the primary (<see cref="Acknowledge"/>, the standby's
/// Follow callback). What a gRPC stream does between two hosts, minus the network.
/// </summary>
internal sealed class ReplicationPump : IDisposable
{
    private readonly SwitchEngine _primary;
    private readonly SwitchEngine _standby;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _task;
    private volatile bool _connected = true;

    public Exception? Failure { get; private set; }
    public long Batches { get; private set; }

    private ReplicationPump(SwitchEngine primary, SwitchEngine standby, long fromRecordNo)
    {
        _primary = primary;
        _standby = standby;
        JournalFeed feed = primary.OpenFeed(fromRecordNo);
        _task = Task.Run(async () =>
        {
            try
            {
                while (!_stop.IsCancellationRequested)
                {
                    ReplicationBatch batch = await feed.ReadAsync(_stop.Token);
                    _standby.ApplyReplicated(batch.Term, batch.FirstRecordNo, batch.Frames.Span);
                    Batches++;
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
            }
            catch (Exception e)
            {
                Failure = e;
            }
        });
    }

    /// <summary>Connects a following standby to a primary: handshake (which must say resume), first acknowledgement, feed.</summary>
    public static ReplicationPump Connect(SwitchEngine primary, SwitchEngine standby)
    {
        ReplicaPosition position = standby.ReplicaPosition;
        HandshakeAnswer answer = primary.AnswerReplica(position);
        Assert.True(answer.Verdict == HandshakeVerdict.Resume, answer.Detail);
        primary.StandbyAcknowledged(position.RecordCount);
        return new ReplicationPump(primary, standby, answer.RecordNo);
    }

    /// <summary>The standby's Follow callback, forwarded while connected.</summary>
    public void Acknowledge(long durableRecordCount)
    {
        if (_connected) _primary.StandbyAcknowledged(durableRecordCount);
    }

    /// <summary>Waits until the standby has applied everything the primary journaled so far.</summary>
    public void WaitCaughtUp(int timeoutMs = 60_000)
    {
        long deadline = Environment.TickCount64 + timeoutMs;
        while (true)
        {
            Assert.Null(Failure);
            long target = _primary.Replication!.Value.JournalRecords;
            if (_standby.ReplicaPosition.RecordCount >= target && _standby.WaitUntilIdle(1_000)) return;
            Assert.True(Environment.TickCount64 < deadline, $"standby at {_standby.ReplicaPosition.RecordCount} of {target} records");
            Thread.Sleep(5);
        }
    }

    public void Dispose()
    {
        _connected = false;
        _stop.Cancel();
        try { _task.Wait(30_000); } catch (AggregateException) { }
    }
}

/// <summary>Forwards acknowledgements to whichever pump is connected now (a standby's Follow callback is set once).</summary>
internal sealed class AckRelay
{
    private volatile ReplicationPump? _pump;
    public ReplicationPump Attach(ReplicationPump pump) => _pump = pump;
    public void Detach() => _pump = null;
    public void Durable(long count) => _pump?.Acknowledge(count);
}
