using System.Diagnostics;

namespace Switch.Cluster.Tests;

/// <summary>The fence deadline's arithmetic, without etcd.</summary>
public sealed class LeaseFenceTests
{
    static readonly long Second = Stopwatch.Frequency;

    [Fact]
    public void The_deadline_is_the_send_time_of_the_newest_answered_renewal_plus_the_ttl_less_the_margin()
    {
        var grant = Stopwatch.GetTimestamp();
        var fence = new LeaseFence(ttlMs: 2_000, marginMs: 500, grantSentTicks: grant);
        Assert.Equal(grant + Second * 3 / 2, fence.DeadlineTicks);
        Assert.True(fence.MayAct);

        Assert.True(fence.Renewed(grant + Second));
        Assert.Equal(grant + Second * 5 / 2, fence.DeadlineTicks);
        Assert.Equal(grant + Second, fence.LastRenewalSentTicks);

        // An older renewal answered late never moves the deadline back.
        Assert.True(fence.Renewed(grant + Second / 2));
        Assert.Equal(grant + Second * 5 / 2, fence.DeadlineTicks);
        Assert.Equal(grant + Second, fence.LastRenewalSentTicks);
    }

    [Fact]
    public void A_deadline_in_the_past_forbids_acting()
    {
        var fence = new LeaseFence(ttlMs: 2_000, marginMs: 500, grantSentTicks: Stopwatch.GetTimestamp() - 2 * Second);
        Assert.False(fence.MayAct);
        Assert.False(fence.IsFenced);
    }

    [Fact]
    public void Once_fenced_no_renewal_revives_the_term_and_the_fence_reports_once()
    {
        var fence = new LeaseFence(ttlMs: 2_000, marginMs: 500, grantSentTicks: Stopwatch.GetTimestamp());
        Assert.True(fence.Fence());
        Assert.False(fence.Fence());
        Assert.False(fence.Renewed(Stopwatch.GetTimestamp()));
        Assert.False(fence.MayAct);
        Assert.True(fence.IsFenced);
    }

    [Theory]
    [InlineData(2_000, 0)]
    [InlineData(2_000, 2_000)]
    [InlineData(0, 100)]
    public void A_margin_outside_the_ttl_is_refused(long ttlMs, long marginMs) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new LeaseFence(ttlMs, marginMs, 0));
}
