using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;

namespace Switch.Host.Banks;

/// <summary>All endpoint links, by bank index and endpoint index as the engine numbers them. Requests are dispatched
/// from one thread (the engine's output thread) and each link's writer is woken once per output batch
/// (<see cref="EndBatch"/>), not per request: the batch's requests for an endpoint then go in one Exchange message and
/// one flush, and the bank answers them in one (a wake per request let a writer on the other core take them a few at
/// a time: more messages, flushes and wake-ups on both sides).</summary>
public sealed class BankConnector : IAsyncDisposable
{
    private readonly EndpointLink[][] _links;
    /// <summary>Links given requests since the last <see cref="EndBatch"/>, each once (dispatching thread only).</summary>
    private readonly EndpointLink[] _toWake;
    private int _toWakeCount;
    /// <summary>Test hook only (see <see cref="LinkStall"/>): the stalled endpoint's link, and how long.</summary>
    private readonly EndpointLink? _stalled;
    private readonly int _stallMs;

    public BankConnector(Switch.Engine.Client.EngineClient engine, SwitchConfig config, Func<int, int, Uri> addressOf, int maxQueuedPerEndpoint, int probeIntervalMs, Log log,
        LinkStall? stall = null)
    {
        _links = config.Banks.Select((bank, b) => bank.Endpoints.Select((endpoint, e) =>
            new EndpointLink(engine, bank.Code, e, endpoint.Name, addressOf(b, e), maxQueuedPerEndpoint, probeIntervalMs, log)).ToArray()).ToArray();
        _toWake = new EndpointLink[_links.Sum(l => l.Length)];
        if (stall is not null)
        {
            _stalled = Links.FirstOrDefault(l => l.Name == stall.Endpoint)
                ?? throw new ArgumentException($"{LinkStall.EnvironmentVariable}: no endpoint named '{stall.Endpoint}'");
            _stallMs = stall.DelayMs;
        }
    }

    public IEnumerable<EndpointLink> Links => _links.SelectMany(l => l);

    /// <summary>Every endpoint's link connects from now on (the host starts them when the engine runs as the primary).</summary>
    public void Start()
    {
        foreach (EndpointLink link in Links) link.Start();
    }

    public void Dispatch(in OutputEvent request)
    {
        EndpointLink link = _links[request.BankIndex][request.EndpointIndex];
        if (link == _stalled && request.Operation is BankOperation.Debit or BankOperation.Credit)
        {
            Stall(link, request);
            return;
        }
        link.Enqueue(request);
        if (!link.WakeListed)
        {
            link.WakeListed = true;
            _toWake[_toWakeCount++] = link;
        }
    }

    /// <summary>The end of the dispatching thread's batch: every link given requests since the last call wakes its writer
    /// (if it waits). The requests of a batch are on their way only after this, so the caller calls it at every batch end.</summary>
    public void EndBatch()
    {
        for (int i = 0; i < _toWakeCount; i++)
        {
            EndpointLink link = _toWake[i];
            link.WakeListed = false;
            _toWake[i] = null!;
            link.WakeWriter();
        }
        _toWakeCount = 0;
    }

    /// <summary>Test hook only: the request goes to its link later. Apart from <see cref="Dispatch"/> because a lambda
    /// there made every call allocate its closure (the link and a copy of the request), taken or not: a quarter of what
    /// the switch allocated at 180,000/s.</summary>
    private void Stall(EndpointLink link, OutputEvent held) =>
        _ = Task.Delay(_stallMs).ContinueWith(_ =>
        {
            link.Enqueue(held);
            link.WakeWriter(); // On a pool thread, outside the dispatching thread's batches.
        }, TaskScheduler.Default);

    /// <summary>Requests sent and not yet answered, over all endpoints.</summary>
    public long Outstanding => Links.Sum(l => l.Sent - l.Answered);

    public async ValueTask DisposeAsync()
    {
        foreach (EndpointLink link in Links)
        {
            await link.DisposeAsync();
        }
    }
}
