using System.Runtime.CompilerServices;
using Switch.Engine.Client;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;

namespace Switch.Engine.Tests.Support;

/// <summary>A whole event as a test builds it, copied into the claimed slot (the adapters fill through a Prepare method).</summary>
public readonly struct EventCopy(InputEvent e) : IInputFill
{
    public void Fill(ref InputEvent slot, long correlationId)
    {
        slot = e;
        slot.CorrelationId = correlationId;
    }
}

/// <summary>Tests publish as the adapters do: through the engine's one client (claim, fill, publish guaranteed).</summary>
public static class EngineClients
{
    private static readonly ConditionalWeakTable<SwitchEngine, EngineClient> Clients = new();

    /// <summary>The engine's client in tests: one per engine; a full ring waits the longest the policy allows (a loaded
    /// test machine can stall the journal for a while).</summary>
    public static EngineClient Client(this SwitchEngine engine) =>
        Clients.GetValue(engine, e => new EngineClient(e, fullRingWaitMs: EngineClient.MaxFullRingWaitMs));

    /// <summary>Publishes a copy of a whole event, with its own correlation id.</summary>
    public static void PublishCopy(this EngineClient client, in InputEvent e)
    {
        var fill = new EventCopy(e);
        client.Publish(ref fill, e.CorrelationId);
    }
}
