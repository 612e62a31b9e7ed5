using Switch.Clearing;
using Switch.Engine.Events;
using Switch.Host.Admin;
using Switch.Host.Banks;
using Switch.Host.Gateway;
using Switch.Ring;

namespace Switch.Host;

/// <summary>
/// The engine's output thread: hands each effect to the adapter that carries it out. Nothing here blocks:
/// bank requests go to bounded per-endpoint queues, answers to waiting calls, outcomes to the feeds and to the
/// clearing records (a buffered append), closed batches to the clearing worker (bounded queue), audit entries to
/// the audit log and routing view; bank requests, answers and outcomes are also counted in the live statistics.
/// </summary>
public sealed class OutputDispatcher(AnswerRouter answers, OutcomeFeeds feeds, ClearingRecorder clearing, AuditLog audit) : IEventHandler<OutputEvent>
{
    private volatile BankConnector? _connector;
    private volatile LiveStats? _stats;
    private long _undeliverable;

    /// <summary>Bank requests emitted before the connector existed (right after recovery); resolved by follow-ups.</summary>
    public long Undeliverable => Interlocked.Read(ref _undeliverable);

    public void Attach(BankConnector connector) => _connector = connector;

    /// <summary>The live statistics exist once the journal's configuration is known; outputs before that are not counted.</summary>
    public void Attach(LiveStats stats) => _stats = stats;

    public void OnEvent(ref OutputEvent evt, long sequence, bool endOfBatch)
    {
        switch (evt.Kind)
        {
            case OutputKind.BankRequest:
                _stats?.Record(evt);
                BankConnector? connector = _connector;
                if (connector is null) Interlocked.Increment(ref _undeliverable);
                else connector.Dispatch(evt);
                break;
            case OutputKind.Answer:
                _stats?.Record(evt);
                answers.Route(evt);
                break;
            case OutputKind.Feed:
                _stats?.Record(evt);
                feeds.Append(evt);
                clearing.Record(evt);
                break;
            case OutputKind.CommandAnswer:
                answers.Route(evt);
                break;
            case OutputKind.BatchPosition:
            case OutputKind.BatchClosed:
                clearing.Record(evt);
                break;
            case OutputKind.Audit:
                audit.Record(evt);
                break;
            default:
                throw new InvalidOperationException($"output dispatcher: unexpected output kind {evt.Kind}");
        }
        // One write per feed per batch makes the batch's outcomes readable and wakes the followers.
        if (endOfBatch) feeds.Flush();
    }
}
