using System.Diagnostics;
using Xunit.Abstractions;

namespace Switch.Cluster.Tests;

/// <summary>Repeated deaths of the leader, roles alternating: each time the other node wins with a larger term, no
/// sooner than the dead leader's TTL after its last renewal. Prints how long each takeover took; the README's figure
/// comes from <c>SWITCH_FAILOVER_ROUNDS=10</c> (3 rounds by default, to keep the suite short) and
/// <c>SWITCH_FAILOVER_TTL_MS</c> (the lease's TTL, default 2,000).</summary>
public sealed class FailoverTimingTests(SharedEtcd shared, ITestOutputHelper output) : IClassFixture<SharedEtcd>
{
    [Fact]
    public async Task The_follower_takes_over_from_each_dead_leader_with_a_larger_term()
    {
        var rounds = int.TryParse(Environment.GetEnvironmentVariable("SWITCH_FAILOVER_ROUNDS"), out var n) && n is > 0 and <= 100 ? n : 3;
        var ttlMs = int.TryParse(Environment.GetEnvironmentVariable("SWITCH_FAILOVER_TTL_MS"), out var t) ? t : 2_000;
        var cluster = Nodes.UniqueCluster("failover");
        var url = shared.Server.ClientUrl;
        var leader = new EtcdLeadership(Nodes.Options(url, cluster, "a", ttlMs));
        var term = await leader.CampaignAsync(CancellationToken.None).WaitAsync(Nodes.Patience);
        var follower = new EtcdLeadership(Nodes.Options(url, cluster, "b", ttlMs));
        var sinceRenewalMs = new List<double>();
        var sinceDeathMs = new List<double>();
        try
        {
            for (var round = 0; round < rounds; round++)
            {
                var campaign = follower.CampaignAsync(CancellationToken.None);
                await follower.WaitForViewAsync(v => v.Leader?.Term == term, CancellationToken.None).WaitAsync(Nodes.Patience);
                // A different phase against the renewal interval each round.
                await Task.Delay(600 + round * 137 % 500);

                var diedTicks = Stopwatch.GetTimestamp();
                await leader.DisposeAsync();
                var next = await campaign.WaitAsync(Nodes.Patience);
                var wonTicks = Stopwatch.GetTimestamp();
                var fromRenewal = LeaseFence.TicksToMs(wonTicks - leader.LastRenewalSentTicks);
                sinceRenewalMs.Add(fromRenewal);
                sinceDeathMs.Add(LeaseFence.TicksToMs(wonTicks - diedTicks));
                output.WriteLine($"round {round}: {leader.Options.NodeName} died, {follower.Options.NodeName} won term {next} " +
                                 $"{fromRenewal:F0} ms after the last renewal, {sinceDeathMs[^1]:F0} ms after the death");
                Assert.True(next > term, $"term {next} after {term}");
                Assert.True(fromRenewal >= leader.Options.LeaseTtlMs - 5, $"won {fromRenewal:F0} ms after the last renewal, within the TTL");
                Assert.True(follower.MayAct);

                term = next;
                var reborn = new EtcdLeadership(leader.Options);
                leader = follower;
                follower = reborn;
            }
        }
        finally
        {
            await leader.DisposeAsync();
            await follower.DisposeAsync();
        }
        output.WriteLine($"{rounds} takeovers, TTL {ttlMs} ms: last renewal → win " +
                         $"median {Median(sinceRenewalMs):F0} ms (min {sinceRenewalMs.Min():F0}, max {sinceRenewalMs.Max():F0}); " +
                         $"death → win median {Median(sinceDeathMs):F0} ms (min {sinceDeathMs.Min():F0}, max {sinceDeathMs.Max():F0})");
    }

    static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
