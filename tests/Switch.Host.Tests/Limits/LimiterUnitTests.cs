using Switch.Host.Gateway;

namespace Switch.Host.Tests.Limits;

/// <summary>The limiters' arithmetic on a fake clock: exact, with no waiting.</summary>
public sealed class LimiterUnitTests
{
    private long _nowMs = 1_000_000;

    [Fact]
    public void Within_its_budget_an_address_is_free_past_it_a_bounded_tarpit_then_refusal_and_others_are_untouched()
    {
        var limiter = new AuthFailureLimiter(burst: 3, perMinute: 60, maxAddresses: 16, delayMs: 1_000, maxDelayed: 2, () => _nowMs);
        Assert.False(limiter.AnyTracked);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(AuthAdmission.Free, limiter.Admit("ipv4:10.0.0.1", out _));
            limiter.RecordFailure("ipv4:10.0.0.1");
        }
        Assert.Equal(AuthAdmission.Tarpit, limiter.Admit("ipv4:10.0.0.1", out AuthFailureLimiter.Entry? first));
        Assert.Equal(AuthAdmission.Tarpit, limiter.Admit("ipv4:10.0.0.1", out AuthFailureLimiter.Entry? second));
        Assert.Equal(AuthAdmission.Refused, limiter.Admit("ipv4:10.0.0.1", out AuthFailureLimiter.Entry? none));
        Assert.Null(none);
        Assert.Equal(2, limiter.Delayed("ipv4:10.0.0.1"));
        Assert.Equal(AuthAdmission.Free, limiter.Admit("ipv4:10.0.0.2", out _));

        limiter.Leave(first!); // the first delayed answer is sent: one place again
        Assert.Equal(AuthAdmission.Tarpit, limiter.Admit("ipv4:10.0.0.1", out first));
        limiter.Leave(first!);
        limiter.Leave(second!);
        Assert.Throws<InvalidOperationException>(() => limiter.Leave(second!));

        _nowMs += 1_000; // 60 per minute: one more failure earned, answered at once
        Assert.Equal(AuthAdmission.Free, limiter.Admit("ipv4:10.0.0.1", out _));
        limiter.RecordFailure("ipv4:10.0.0.1");
        Assert.Equal(AuthAdmission.Tarpit, limiter.Admit("ipv4:10.0.0.1", out first));
        limiter.Leave(first!);

        // Three seconds without failing refill the whole burst: the address is forgotten.
        _nowMs += 3_000;
        Assert.Equal(AuthAdmission.Free, limiter.Admit("ipv4:10.0.0.1", out _));
        Assert.False(limiter.AnyTracked);
    }

    [Fact]
    public void The_address_table_is_bounded_and_forgets_the_least_recently_failing()
    {
        var limiter = new AuthFailureLimiter(burst: 1, perMinute: 1, maxAddresses: 2, nowMs: () => _nowMs);
        limiter.RecordFailure("a");
        _nowMs++;
        limiter.RecordFailure("b");
        _nowMs++;
        limiter.RecordFailure("a"); // "a" is now the most recent
        _nowMs++;
        limiter.RecordFailure("c"); // evicts "b"
        Assert.Equal(2, limiter.Tracked);
        Assert.Equal(AuthAdmission.Tarpit, limiter.Admit("a", out _));
        Assert.Equal(AuthAdmission.Free, limiter.Admit("b", out _));
        Assert.Equal(AuthAdmission.Tarpit, limiter.Admit("c", out _));
    }

    /// <summary>
    /// A minute of fake time, millisecond by millisecond: a guesser at one address sends 50 calls every
    /// millisecond with wrong keys (a delayed answer comes back after the delay); a neighbour retries a stale key
    /// 50 ms after each answer; a correct client at the same address calls every 10 ms. The guesses judged (answered
    /// UNAUTHENTICATED, at once or late) stay within the budget plus the tarpit's rate; the correct client is only
    /// refused while the guesser holds every tarpit place, and never when only the neighbour fails.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Guesses_judged_per_address_are_bounded_and_a_correct_key_passes_beside_a_stale_neighbour(bool guesser)
    {
        const int burst = 20, perMinute = 30, delayMs = 1_000, maxDelayed = 32, minuteMs = 60_000;
        var limiter = new AuthFailureLimiter(burst, perMinute, maxAddresses: 16, delayMs, maxDelayed, () => _nowMs);
        const string address = "ipv4:192.0.2.7";
        var pending = new Queue<(long DueMs, AuthFailureLimiter.Entry Held, bool Neighbour)>();
        long judged = 0, refused = 0, correctRefused = 0, correctServed = 0, neighbourJudged = 0;
        long neighbourNextMs = _nowMs;
        bool neighbourWaiting = false;
        long end = _nowMs + minuteMs;

        // A wrong key: admitted, then judged at once (Free) or after the delay (Tarpit).
        bool Wrong(bool neighbour)
        {
            switch (limiter.Admit(address, out AuthFailureLimiter.Entry? held))
            {
                case AuthAdmission.Refused:
                    refused++;
                    return false;
                case AuthAdmission.Free:
                    limiter.RecordFailure(address);
                    judged++;
                    if (neighbour) neighbourJudged++;
                    return false;
                default:
                    limiter.RecordFailure(address);
                    pending.Enqueue((_nowMs + delayMs, held!, neighbour));
                    return true;
            }
        }

        for (; _nowMs < end; _nowMs++)
        {
            while (pending.Count > 0 && pending.Peek().DueMs <= _nowMs)
            {
                var (_, held, neighbour) = pending.Dequeue();
                limiter.Leave(held);
                judged++;
                if (neighbour)
                {
                    neighbourJudged++;
                    neighbourWaiting = false;
                    neighbourNextMs = _nowMs + 50;
                }
            }
            if (guesser)
            {
                for (int i = 0; i < 50; i++) Wrong(neighbour: false);
            }
            if (!neighbourWaiting && _nowMs >= neighbourNextMs)
            {
                neighbourWaiting = Wrong(neighbour: true);
                if (!neighbourWaiting) neighbourNextMs = _nowMs + 50;
            }
            if (_nowMs % 10 == 0)
            {
                // The correct key: checked and accepted; a tarpit place taken for the check is given straight back.
                AuthAdmission admission = limiter.Admit(address, out AuthFailureLimiter.Entry? held);
                if (admission == AuthAdmission.Refused) correctRefused++;
                else correctServed++;
                if (held is not null) limiter.Leave(held);
            }
        }

        long bound = burst + perMinute + (long)maxDelayed * (minuteMs / delayMs + 1);
        Assert.True(judged <= bound, $"{judged} guesses judged in a minute, bound {bound}");
        Assert.True(neighbourJudged > 0);
        if (guesser)
        {
            Assert.True(judged > bound / 2, $"the tarpit answers its places: {judged} judged");
            Assert.True(refused > 0);
        }
        else
        {
            // The neighbour alone: never refused, and the correct client beside it never refused either.
            Assert.Equal(0, refused);
            Assert.Equal(0, correctRefused);
            Assert.Equal(minuteMs / 10, correctServed);
        }
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
    public void A_message_is_admitted_as_far_as_its_tokens_and_in_flight_room_go_in_one_look()
    {
        var limiter = new InstitutionLimiter(1, new GatewayLimits { RequestsPerSecond = 10, BurstRequests = 8, MaxInFlight = 5 }, () => _nowMs);
        Assert.Equal(Admission.Admitted, limiter.TryAdmit(0, 3, out int admitted));
        Assert.Equal(3, admitted);
        Assert.Equal(Admission.Admitted, limiter.TryAdmit(0, 64, out admitted)); // the in-flight room left: 2 of 64
        Assert.Equal(2, admitted);
        Assert.Equal(Admission.InFlightFull, limiter.TryAdmit(0, 1, out admitted));
        Assert.Equal(0, admitted);
        limiter.Release(0, 5);
        Assert.Equal(0, limiter.InFlight(0));
        Assert.Equal(Admission.Admitted, limiter.TryAdmit(0, 64, out admitted)); // the tokens left: 3 of the burst of 8
        Assert.Equal(3, admitted);
        Assert.Equal(Admission.RateLimited, limiter.TryAdmit(0, 64, out admitted)); // a refusal takes nothing
        Assert.Equal(0, admitted);
        Assert.Equal(3, limiter.InFlight(0));
        _nowMs += 200; // 2 tokens at 10/s
        Assert.Equal(Admission.Admitted, limiter.TryAdmit(0, 64, out admitted));
        Assert.Equal(2, admitted);
        Assert.Throws<InvalidOperationException>(() => limiter.Release(0, 6)); // 5 held
        Assert.Equal(5, limiter.InFlight(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => limiter.TryAdmit(0, 0, out _));
    }

    [Fact]
    public void A_token_bucket_gives_as_many_tokens_as_it_has_up_to_the_ask()
    {
        var bucket = TokenBucket.PerSecond(1_000, 10, _nowMs);
        Assert.Equal(4, bucket.TryTake(_nowMs, 4));
        Assert.Equal(6, bucket.TryTake(_nowMs, 100));
        Assert.Equal(0, bucket.TryTake(_nowMs, 1));
        Assert.False(bucket.TryTake(_nowMs));
        _nowMs += 3;
        Assert.Equal(3, bucket.TryTake(_nowMs, 100));
        _nowMs += 1;
        Assert.True(bucket.TryTake(_nowMs));
    }

    [Fact]
    public void Out_of_range_limits_are_refused_naming_the_field()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new GatewayLimits { MaxInFlight = 0 }.Validated());
        Assert.Contains("MaxInFlight", e.Message);
        e = Assert.Throws<ArgumentOutOfRangeException>(() => new GatewayLimits { RequestsPerSecond = -1 }.Validated());
        Assert.Contains("RequestsPerSecond", e.Message);
        e = Assert.Throws<ArgumentOutOfRangeException>(() => new GatewayLimits { AuthDelayedPerAddress = 0 }.Validated());
        Assert.Contains("AuthDelayedPerAddress", e.Message);
        e = Assert.Throws<ArgumentOutOfRangeException>(() => new GatewayLimits { AuthFailureDelayMs = 60_001 }.Validated());
        Assert.Contains("AuthFailureDelayMs", e.Message);
    }
}
