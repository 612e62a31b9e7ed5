using Google.Protobuf;
using Switch.Contracts.V1;
using Switch.Engine.Pipeline;
using Switch.Engine.Replication;
using Switch.Grpc;
using Switch.Grpc.Server;

namespace Switch.Host.Cluster;

/// <summary>
/// The primary's side of replication.proto's Follow: checks the standby's hello (its journal must be a prefix of this
/// one), then streams the committed journal from the record it needs, while the standby's acknowledgements go to the
/// engine's replication gate. One standby at a time: a second is refused while the first is attached. A node that is
/// not the primary has no engine to give (<paramref name="primary"/> returns null): UNAVAILABLE.
/// </summary>
public sealed class ReplicationService(Func<SwitchEngine?> primary, Log log)
{
    private int _attached;

    /// <summary>The attached standby's node name, or null.</summary>
    public string? AttachedNode => Volatile.Read(ref _attachedNode);
    private string? _attachedNode;

    public GrpcRouter Map(GrpcRouter router) => router
        .MapUnary(ReplicationMethods.Handshake, HandshakeAsync)
        .MapDuplexStreaming(ReplicationMethods.Follow, FollowAsync);

    private SwitchEngine Primary() =>
        primary() ?? throw new RpcException(StatusCode.Unavailable, "NOT_PRIMARY: this node is not the primary; follow the one etcd names");

    private static void Check(FollowerHello? hello)
    {
        if (hello is null) throw new RpcException(StatusCode.InvalidArgument, "FOLLOW_HELLO_MISSING: the first message of Follow must be a hello");
        if (string.IsNullOrEmpty(hello.Node) || hello.RecordCount < 0)
            throw new RpcException(StatusCode.InvalidArgument, $"FOLLOW_HELLO_INVALID: node '{hello.Node}', {hello.RecordCount} records");
    }

    private ValueTask<HandshakeReply> HandshakeAsync(FollowerHello hello, ServerCallContext context)
    {
        Check(hello);
        SwitchEngine engine = Primary();
        // An empty journal is the prefix of every journal: it begins with the genesis below.
        HandshakeAnswer answer = hello.RecordCount == 0
            ? new HandshakeAnswer(Engine.Replication.HandshakeVerdict.Resume, 0, 0, "the standby's journal is empty: it begins with the primary's genesis record")
            : engine.AnswerReplica(new ReplicaPosition(hello.RecordCount, hello.LastRecordCrc));
        var reply = new HandshakeReply
        {
            Verdict = answer.Verdict switch
            {
                Engine.Replication.HandshakeVerdict.Resume => Contracts.V1.HandshakeVerdict.Resume,
                Engine.Replication.HandshakeVerdict.Truncate => Contracts.V1.HandshakeVerdict.Truncate,
                _ => Contracts.V1.HandshakeVerdict.Rebuild,
            },
            RecordNo = answer.RecordNo,
            Checksum = answer.Checksum,
            Detail = answer.Detail,
            Term = engine.NewestTerm,
        };
        // An empty journal (or one to rebuild) begins with the primary's configuration record; one that holds it checks it.
        reply.Genesis = ByteString.CopyFrom(engine.GenesisRecord());
        log.Info("standby_handshake", answer.Detail, ("node", hello.Node), ("peer", context.Peer), ("verdict", answer.Verdict.ToString()),
            ("records", hello.RecordCount));
        return ValueTask.FromResult(reply);
    }

    private async ValueTask FollowAsync(ServerRequestStream<FollowerMessage> requests, ServerResponseStream<JournalBatch> responses,
        ServerCallContext context)
    {
        SwitchEngine engine = Primary();
        FollowerHello? hello = (await requests.ReadAsync())?.Hello;
        Check(hello);
        HandshakeAnswer answer = engine.AnswerReplica(new ReplicaPosition(hello!.RecordCount, hello.LastRecordCrc));
        if (answer.Verdict != Engine.Replication.HandshakeVerdict.Resume)
            throw new RpcException(StatusCode.FailedPrecondition, $"HANDSHAKE_{answer.Verdict.ToString().ToUpperInvariant()}: {answer.Detail}");
        if (Interlocked.CompareExchange(ref _attached, 1, 0) != 0)
            throw new RpcException(StatusCode.AlreadyExists, $"STANDBY_ATTACHED: a standby already follows this primary; {hello.Node} is refused");
        try
        {
            JournalFeed feed;
            try
            {
                feed = engine.OpenFeed(hello.RecordCount);
            }
            catch (ReplicationRefusedException e)
            {
                log.Warn("standby_refused", e.Message, ("node", hello.Node), ("records", hello.RecordCount));
                throw new RpcException(StatusCode.FailedPrecondition, e.Message);
            }
            Volatile.Write(ref _attachedNode, hello.Node);
            log.Info("standby_attached", "a standby follows this primary's journal", ("node", hello.Node), ("peer", context.Peer),
                ("from_record", hello.RecordCount));
            using var ended = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
            Task acks = ReadAcknowledgementsAsync(engine, requests, hello.Node, ended);
            try
            {
                while (!ended.IsCancellationRequested)
                {
                    ReplicationBatch batch = await feed.ReadAsync(ended.Token);
                    var message = new JournalBatch
                    {
                        Term = batch.Term,
                        FirstRecordNo = batch.FirstRecordNo,
                        PrimaryRecords = batch.CommittedRecords,
                        // Copied: the feed's buffer is refilled by its next read, while this message may still be buffered.
                        Records = ByteString.CopyFrom(batch.Frames.Span),
                    };
                    await responses.WriteAndFlushAsync(message, ended.Token);
                }
            }
            catch (OperationCanceledException) when (ended.IsCancellationRequested)
            {
            }
            catch (ReplicationRefusedException e)
            {
                throw new RpcException(StatusCode.FailedPrecondition, e.Message);
            }
            catch (Exception e) when (e is not RpcException && !ReferenceEquals(primary(), engine))
            {
                // This node left office under the stream (a graceful stop, a fence): its journal closed. The standby hears
                // that, not an unexplained handler failure.
                throw new RpcException(StatusCode.Unavailable,
                    $"NOT_PRIMARY: this node left office while streaming (its journal closed: {e.GetType().Name}); follow the primary etcd names");
            }
            finally
            {
                ended.Cancel();
                await acks;
            }
        }
        finally
        {
            Volatile.Write(ref _attachedNode, null);
            Volatile.Write(ref _attached, 0);
            log.Warn("standby_detached", "the standby's stream ended", ("node", hello.Node));
        }
    }

    /// <summary>Each acknowledgement raises what the gate lets pass; the stream's end (or a bad message) ends the call.</summary>
    private async Task ReadAcknowledgementsAsync(SwitchEngine engine, ServerRequestStream<FollowerMessage> requests, string node, CancellationTokenSource ended)
    {
        try
        {
            while (await requests.ReadAsync(ended.Token) is { } message)
            {
                if (message.Ack is not { } ack)
                {
                    log.Warn("standby_message_refused", "after the hello only acknowledgements may come", ("node", node));
                    break;
                }
                engine.StandbyAcknowledged(ack.DurableRecordCount);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or RpcException)
        {
        }
        catch (ReplicationRefusedException e)
        {
            log.Error("standby_ack_refused", e.Message, ("node", node));
        }
        finally
        {
            ended.Cancel();
        }
    }
}
