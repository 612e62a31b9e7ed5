using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;

namespace Switch.Host.Banks;

/// <summary>All endpoint links, by bank index and endpoint index as the engine numbers them.</summary>
public sealed class BankConnector : IAsyncDisposable
{
    private readonly EndpointLink[][] _links;
    /// <summary>Test hook only (see <see cref="LinkStall"/>): the stalled endpoint's link, and how long.</summary>
    private readonly EndpointLink? _stalled;
    private readonly int _stallMs;

    public BankConnector(Switch.Engine.Client.EngineClient engine, SwitchConfig config, Func<int, int, Uri> addressOf, int maxQueuedPerEndpoint, int probeIntervalMs, Log log,
        LinkStall? stall = null)
    {
        _links = config.Banks.Select((bank, b) => bank.Endpoints.Select((endpoint, e) =>
            new EndpointLink(engine, bank.Code, e, endpoint.Name, addressOf(b, e), maxQueuedPerEndpoint, probeIntervalMs, log)).ToArray()).ToArray();
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
    }

    /// <summary>Test hook only: the request goes to its link later. Apart from <see cref="Dispatch"/> because a lambda
    /// there made every call allocate its closure (the link and a copy of the request), taken or not: a quarter of what
    /// the switch allocated at 180,000/s.</summary>
    private void Stall(EndpointLink link, OutputEvent held) =>
        _ = Task.Delay(_stallMs).ContinueWith(_ => link.Enqueue(held), TaskScheduler.Default);

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
