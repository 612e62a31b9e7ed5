using System.Diagnostics;
using Switch.Host.Gateway;

namespace Switch.Host.Tests.Limits;

/// <summary>
/// A connection counted under its institution's cap when several first calls on it come at once: HTTP/2 carries a
/// burst on one connection, and a standby that takes office gets every waiting client's calls together.
/// </summary>
public sealed class ConnectionAttributionTests
{
    private const int Rounds = 20_000;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public void Calls_at_once_on_a_new_connection_count_it_once_and_none_is_refused_below_the_cap()
    {
        // The institution has one connection open and may have two: each round's new connection is its second, so every
        // call on it is admitted. Two threads make its first calls at the same moment; then it closes.
        var limiter = new InstitutionLimiter(1, GatewayLimits.Default with { MaxConnectionsPerInstitution = 2 });
        var connections = new InstitutionConnections(limiter);
        using var open = new CancellationTokenSource();
        Assert.True(connections.TryAttribute("open", open.Token, 0));

        // Each round's connection: the one token Kestrel gives every call on it, canceled when it closes.
        CancellationTokenSource[] closing = Enumerable.Range(0, Rounds).Select(_ => new CancellationTokenSource()).ToArray();
        int refused = 0, miscounted = 0;
        int arrived = 0, called = 0, closed = 0;
        var started = Stopwatch.StartNew();
        Exception? failed = null;
        // Spins, yielding but never sleeping (the two calls must start close together), bounded: a failed caller ends the other.
        void Until(Func<bool> done)
        {
            var spin = new SpinWait();
            while (!done())
            {
                if (Volatile.Read(ref failed) is not null || started.Elapsed > Bound) throw new TimeoutException("the other caller stopped");
                spin.SpinOnce(sleep1Threshold: -1);
            }
        }
        void Caller(int me)
        {
            try
            {
                for (int r = 0; r < Rounds; r++)
                {
                    Interlocked.Increment(ref arrived);
                    Until(() => Volatile.Read(ref arrived) >= 2 * (r + 1)); // both start the round together
                    if (!connections.TryAttribute("new-" + r, closing[r].Token, 0)) Interlocked.Increment(ref refused);
                    Interlocked.Increment(ref called);
                    if (me == 0)
                    {
                        Until(() => Volatile.Read(ref called) >= 2 * (r + 1));
                        if (limiter.OpenConnections(0) != 2 || connections.Count != 2) miscounted++;
                        closing[r].Cancel(); // the connection closes: as Kestrel's close callback does, it gives its place back
                        Volatile.Write(ref closed, r + 1);
                    }
                    else
                    {
                        Until(() => Volatile.Read(ref closed) >= r + 1);
                    }
                }
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref failed, e, null);
            }
        }
        var threads = new[] { new Thread(() => Caller(0)), new Thread(() => Caller(1)) };
        foreach (Thread t in threads) t.Start();
        foreach (Thread t in threads) t.Join();

        Assert.Null(failed);
        Assert.True(refused == 0 && miscounted == 0,
            $"{Rounds} new connections, each below the cap: {refused} calls refused CONNECTION_LIMIT, {miscounted} rounds miscounted");
        Assert.Equal(1, limiter.OpenConnections(0));
        Assert.Equal(1, connections.Count);
        foreach (CancellationTokenSource c in closing) c.Dispose();
    }
}
