using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;

namespace Switch.Host.Banks;

/// <summary>All endpoint links, by bank index and endpoint index as the engine numbers them.</summary>
public sealed class BankConnector : IAsyncDisposable
{
    private readonly EndpointLink[][] _links;

    public BankConnector(SwitchEngine engine, SwitchConfig config, Func<int, int, Uri> addressOf, int maxQueuedPerEndpoint, int probeIntervalMs, Log log)
    {
        _links = config.Banks.Select((bank, b) => bank.Endpoints.Select((endpoint, e) =>
            new EndpointLink(engine, bank.Code, e, endpoint.Name, addressOf(b, e), maxQueuedPerEndpoint,
                config.Rules.BankTimeoutMs, probeIntervalMs, log)).ToArray()).ToArray();
    }

    public IEnumerable<EndpointLink> Links => _links.SelectMany(l => l);

    public void Dispatch(in OutputEvent request) => _links[request.BankIndex][request.EndpointIndex].Enqueue(request);

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
