using Switch.Host.Gateway;

namespace Switch.Host.Tests.Limits;

/// <summary>The limiters' arithmetic on a fake clock: exact, with no waiting.</summary>
public sealed class LimiterUnitTests
{
    private long _nowMs = 1_000_000;

    [Fact]
    public void An_address_that_keeps_failing_is_refused_until_it_earns_a_retry_and_others_are_untouched()
    {
        var limiter = new AuthFailureLimiter(burst: 3, perMinute: 60, maxAddresses: 16, () => _nowMs);
        Assert.False(limiter.AnyTracked);
        for (int i = 0; i < 3; i++)
        {
            Assert.False(limiter.IsRefused("ipv4:10.0.0.1", out _));
            limiter.RecordFailure("ipv4:10.0.0.1");
        }
        Assert.True(limiter.IsRefused("ipv4:10.0.0.1", out long retryAfterS));
        Assert.Equal(1, retryAfterS); // 60 per minute: one a second
        Assert.False(limiter.IsRefused("ipv4:10.0.0.2", out _));

        _nowMs += 999;
        Assert.True(limiter.IsRefused("ipv4:10.0.0.1", out _));
        _nowMs += 1;
        Assert.False(limiter.IsRefused("ipv4:10.0.0.1", out _)); // exactly one more try
        limiter.RecordFailure("ipv4:10.0.0.1");
        Assert.True(limiter.IsRefused("ipv4:10.0.0.1", out _));

        // Three seconds without failing refill the whole burst: the address is forgotten.
        _nowMs += 3_000;
        Assert.False(limiter.IsRefused("ipv4:10.0.0.1", out _));
        Assert.False(limiter.AnyTracked);
    }

    [Fact]
    public void The_address_table_is_bounded_and_forgets_the_least_recently_failing()
    {
        var limiter = new AuthFailureLimiter(burst: 1, perMinute: 1, maxAddresses: 2, () => _nowMs);
        limiter.RecordFailure("a");
        _nowMs++;
        limiter.RecordFailure("b");
        _nowMs++;
        limiter.RecordFailure("a"); // "a" is now the most recent
        _nowMs++;
        limiter.RecordFailure("c"); // evicts "b"
        Assert.Equal(2, limiter.Tracked);
        Assert.True(limiter.IsRefused("a", out _));
        Assert.False(limiter.IsRefused("b", out _));
        Assert.True(limiter.IsRefused("c", out long retryAfterS));
        Assert.Equal(60, retryAfterS);
    }

    [Theory]
    [InlineData("ipv4:127.0.0.1:50123", "ipv4:127.0.0.1")]
    [InlineData("ipv6:[::1]:50123", "ipv6:[::1]")]
    [InlineData("ipv6:[fe80::1%3]:7", "ipv6:[fe80::1%3]")]
    [InlineData("unknown", "unknown")]
    public void The_source_address_drops_the_port(string peer, string expected) =>
        Assert.Equal(expected, AuthFailureLimiter.SourceAddress(peer));

    [Fact]
    public void The_institution_rate_limit_admits_its_burst_then_its_rate_and_one_institution_never_uses_anothers()
    {
        var limiter = new InstitutionLimiter(2, new GatewayLimits { RequestsPerSecond = 10, BurstRequests = 5, MaxInFlight = 1_000 }, () => _nowMs);
        for (int i = 0; i < 5; i++) Assert.Equal(Admission.Admitted, limiter.TryAdmit(0));
        Assert.Equal(Admission.RateLimited, limiter.TryAdmit(0));
        Assert.Equal(100, limiter.MsUntilToken(0));
        for (int i = 0; i < 5; i++) Assert.Equal(Admission.Admitted, limiter.TryAdmit(1));
        _nowMs += 100;
        Assert.Equal(Admission.Admitted, limiter.TryAdmit(0));
        Assert.Equal(Admission.RateLimited, limiter.TryAdmit(0));
        Assert.Equal(6, limiter.InFlight(0));
        Assert.Contains("rate limit of 10 requests/s (burst 5)", limiter.Describe(Admission.RateLimited, 0));
    }

    [Fact]
    public void The_in_flight_cap_counts_unanswered_requests_and_a_refusal_takes_no_token()
    {
        var limiter = new InstitutionLimiter(1, new GatewayLimits { RequestsPerSecond = 1, BurstRequests = 3, MaxInFlight = 2 }, () => _nowMs);
        Assert.Equal(Admission.Admitted, limiter.TryAdmit(0));
        Assert.Equal(Admission.Admitted, limiter.TryAdmit(0));
        Assert.Equal(Admission.InFlightFull, limiter.TryAdmit(0));
        Assert.Equal(Admission.Admitted, limiter.TryAdmit(0, holdsInFlight: false)); // the third and last token
        limiter.Release(0);
        Assert.Equal(Admission.RateLimited, limiter.TryAdmit(0));
        Assert.Equal(1, limiter.InFlight(0));
        limiter.Release(0);
        Assert.Throws<InvalidOperationException>(() => limiter.Release(0));
        Assert.Contains("in-flight limit of 2", limiter.Describe(Admission.InFlightFull, 0));
    }

    [Fact]
    public void Out_of_range_limits_are_refused_naming_the_field()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new GatewayLimits { MaxInFlight = 0 }.Validated());
        Assert.Contains("MaxInFlight", e.Message);
        e = Assert.Throws<ArgumentOutOfRangeException>(() => new GatewayLimits { RequestsPerSecond = -1 }.Validated());
        Assert.Contains("RequestsPerSecond", e.Message);
    }
}
