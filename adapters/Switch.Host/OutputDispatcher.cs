using Switch.Engine.Clearing;
using Switch.Engine.Events;
using Switch.Host.Banks;
using Switch.Host.Gateway;
using Switch.Ring;

namespace Switch.Host;

/// <summary>
/// The engine's output thread: hands each effect to the adapter that carries it out. Nothing here blocks:
/// bank requests go to bounded per-endpoint queues, answers to waiting calls, outcomes to the feeds and to the
/// clearing records (a buffered append), closed batches to the clearing worker (bounded queue).
/// </summary>
public sealed class OutputDispatcher(AnswerRouter answers, OutcomeFeeds feeds, ClearingRecorder clearing) : IEventHandler<OutputEvent>
{
    private volatile BankConnector? _connector;
    private long _undeliverable;

    /// <summary>Bank requests emitted before the connector existed (right after recovery); resolved by follow-ups.</summary>
    public long Undeliverable => Interlocked.Read(ref _undeliverable);

    public void Attach(BankConnector connector) => _connector = connector;

    public void OnEvent(ref OutputEvent evt, long sequence, bool endOfBatch)
    {
        switch (evt.Kind)
        {
            case OutputKind.BankRequest:
                BankConnector? connector = _connector;
                if (connector is null) Interlocked.Increment(ref _undeliverable);
                else connector.Dispatch(evt);
                break;
            case OutputKind.Answer:
                answers.Route(evt);
                break;
            case OutputKind.Feed:
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
            default:
                throw new InvalidOperationException($"output dispatcher: unexpected output kind {evt.Kind}");
        }
    }
}
