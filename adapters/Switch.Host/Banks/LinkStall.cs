using System.Globalization;

namespace Switch.Host.Banks;

/// <summary>
/// A test hook, never set in production: the first request (a debit or credit, not a query or reversal) of every
/// transaction routed to one endpoint is held this long between the engine's output and the endpoint's link, as an
/// output-thread stall (an fsync stall, a GC pause, a full ring) would hold it. The switch process takes it from the
/// environment variable SWITCH_TEST_LINK_STALL, e.g. <c>ICBC-DC1:2500</c>; the tests use it to show that the bank
/// deadline is the one the logic decided, whenever the request leaves.
/// </summary>
public sealed record LinkStall(string Endpoint, int DelayMs)
{
    public const string EnvironmentVariable = "SWITCH_TEST_LINK_STALL";
    private const int MaxDelayMs = 600_000;

    /// <summary>Parses <c>ENDPOINT:MS</c>; ArgumentException naming what is wrong.</summary>
    public static LinkStall Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int ms) || ms is < 1 or > MaxDelayMs)
        {
            throw new ArgumentException($"{EnvironmentVariable}: expected ENDPOINT:MS with MS from 1 to {MaxDelayMs}, got '{text}'");
        }
        return new LinkStall(text[..colon], ms);
    }

    public override string ToString() => $"{Endpoint}:{DelayMs.ToString(CultureInfo.InvariantCulture)}";
}
