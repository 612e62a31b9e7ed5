using Switch.Clearing;
using Switch.Engine.Business;
using Switch.Engine.Client;
using Switch.Engine.Pipeline;
using Switch.Engine.Events;
using Switch.Host.Admin;
using Switch.Host.Banks;
using Switch.Host.Gateway;
using Switch.Ring;

namespace Switch.Host;

/// <summary>
/// The one routing of the engine's outputs, live and in replay. Live (the engine's output thread): hands each effect
/// to the adapter that carries it out; nothing here blocks: bank requests go to bounded per-endpoint queues, answers to
/// waiting calls, outcomes to the feeds and to the clearing records (a buffered append), closed batches to the clearing
/// worker (bounded queue), audit entries to the audit log and routing view; bank requests, answers and outcomes are also
/// counted in the live statistics. Replaying (recovery, before the threads run): the same routing with the effects
/// on the world left out (no bank request sent, no answer, no live statistics); the derived views (audit, clearing
/// records, feeds) are fed exactly as live, so they come out as the journal says. Following (a hot standby's engine,
/// applying what the primary journaled: <see cref="Following"/>): the views as live, the world's effects left out, as
/// in replay; the primary carried those out.
/// </summary>
public sealed class OutputDispatcher(AnswerRouter answers, OutcomeFeeds feeds, ClearingRecorder clearing, AuditLog audit) : IEventHandler<OutputEvent>
{
    private volatile BankConnector? _connector;
    private volatile LiveStats? _stats;
    private volatile SnapshotViews? _views;
    private long _undeliverable;

    /// <summary>Live bank requests with no connector attached: 0 unless the host ran the engine before attaching it.</summary>
    public long Undeliverable => Interlocked.Read(ref _undeliverable);

    public void Attach(BankConnector connector) => _connector = connector;

    /// <summary>The live statistics exist once the journal's configuration is known; outputs before that are not counted.</summary>
    public void Attach(LiveStats stats) => _stats = stats;

    /// <summary>The derived views a snapshot records at its mark.</summary>
    public void Attach(SnapshotViews views) => _views = views;

    /// <summary>For <see cref="EngineOptions.ReplaySink"/>: the replayed outputs, routed with replaying set.</summary>
    public IOutputSink ReplaySink() => new Replaying(this);

    public void OnEvent(ref OutputEvent evt, long sequence, bool endOfBatch) => Route(ref evt, Routing.Live, endOfBatch);

    /// <summary>A standby's output handler (see the type's summary); the engine swaps it for this dispatcher when it takes office.</summary>
    public IEventHandler<OutputEvent> Following() => new FollowingHandler(this);

    /// <param name="routing">Live, or recovery's replay or a standby's following: derived views only (see the type's summary).</param>
    /// <param name="endOfBatch">Live or following: the last output of the engine's batch (the feeds are flushed once per batch).</param>
    private void Route(ref OutputEvent evt, Routing routing, bool endOfBatch)
    {
        bool replaying = routing != Routing.Live;
        switch (evt.Kind)
        {
            case OutputKind.BankRequest:
                if (replaying) break;
                _stats?.Record(evt);
                BankConnector? connector = _connector;
                if (connector is null) Interlocked.Increment(ref _undeliverable);
                else connector.Dispatch(evt);
                break;
            case OutputKind.Answer:
                if (replaying) break;
                _stats?.Record(evt);
                answers.Route(evt);
                break;
            case OutputKind.Feed:
                if (routing == Routing.Replaying)
                {
                    feeds.AppendReplayed(evt);
                }
                else
                {
                    if (routing == Routing.Live) _stats?.Record(evt);
                    feeds.Append(evt);
                }
                clearing.Record(evt);
                break;
            case OutputKind.CommandAnswer:
                if (!replaying) answers.Route(evt);
                break;
            case OutputKind.BatchPosition:
            case OutputKind.BatchClosed:
                clearing.Record(evt);
                break;
            case OutputKind.Audit:
                audit.Record(evt);
                break;
            case OutputKind.SnapshotMark:
                // Live only (never replayed): every output before it is in the views, none after.
                (_views ?? throw new InvalidOperationException("output dispatcher: a snapshot mark with no views attached")).Mark(evt.CorrelationId);
                break;
            default:
                throw new InvalidOperationException($"output dispatcher: unexpected output kind {evt.Kind}");
        }
        // The batch's bank requests wake their links' writers, once each; one write per feed per batch makes the batch's
        // outcomes readable and wakes the followers (after the replay, the host's EndReplay does it once for all); the
        // streams answered in the batch are handed their answers.
        if (endOfBatch && routing != Routing.Replaying)
        {
            _connector?.EndBatch(); // First: the bank requests go while the rest is flushed.
            feeds.Flush();
            answers.Flush();
        }
    }

    private enum Routing { Live, Replaying, Following }

    private sealed class FollowingHandler(OutputDispatcher dispatcher) : IEventHandler<OutputEvent>
    {
        public void OnEvent(ref OutputEvent evt, long sequence, bool endOfBatch) => dispatcher.Route(ref evt, Routing.Following, endOfBatch);
    }

    /// <summary>The logic writes each replayed output here; it is routed at once.</summary>
    private sealed class Replaying(OutputDispatcher dispatcher) : IOutputSink
    {
        private OutputEvent _scratch;

        public ref OutputEvent Begin()
        {
            _scratch.Reset();
            return ref _scratch;
        }

        public void End() => dispatcher.Route(ref _scratch, Routing.Replaying, endOfBatch: false);
    }
}
