namespace Switch.LoadGen.Tests;

/// <summary>
/// The harness's choice of address across switch-overs. A run that goes round a standby slow to take office and a dead
/// primary many times must keep one set of channels per address: a new set at each visit once held 8+ connections of one
/// institution open on the standby, which refused the next with CONNECTION_LIMIT (seen in CI on a loaded machine).
/// </summary>
public sealed class TargetsTests
{
    private static readonly Uri Primary = new("http://127.0.0.1:1");
    private static readonly Uri Standby = new("http://127.0.0.1:2");

    [Fact]
    public void Going_round_two_addresses_many_times_uses_one_set_of_channels_each()
    {
        const int ChannelsPerTarget = 4;
        using var targets = new Targets([Primary, Standby], ChannelsPerTarget);
        TargetGeneration first = targets.Current;
        var unnamed = new FailoverSignal(NotPrimary: false, Primary: null);
        var namesPrimary = new FailoverSignal(NotPrimary: true, Primary: Primary);

        TargetGeneration current = first;
        for (int visit = 0; visit < 20; visit++)
        {
            // The primary does not answer: on to the standby, which (not in office yet) names the dead primary again.
            current = targets.Failed(current, unnamed);
            Assert.Equal(Standby, current.Address);
            current = targets.Failed(current, namesPrimary);
            Assert.Equal(Primary, current.Address);
            Assert.Same(first.Channels, current.Channels);
        }

        Assert.Equal(40, targets.Moves);
        Assert.Equal(40, current.Number);
        Assert.Equal(2 * ChannelsPerTarget, targets.ChannelsOpened);
    }

    [Fact]
    public void A_primary_named_that_was_not_given_gets_its_own_set_once()
    {
        var named = new Uri("http://127.0.0.1:3");
        using var targets = new Targets([Primary], channelsPerTarget: 2);
        TargetGeneration toNamed = targets.Failed(targets.Current, new FailoverSignal(true, named));
        TargetGeneration back = targets.Failed(toNamed, new FailoverSignal(false, null));
        TargetGeneration again = targets.Failed(back, new FailoverSignal(true, named));

        Assert.Equal(named, again.Address);
        Assert.Same(toNamed.Channels, again.Channels);
        Assert.Equal(4, targets.ChannelsOpened);
    }

    [Fact]
    public void A_success_on_an_address_left_behind_brings_the_target_back_to_it_once()
    {
        using var targets = new Targets([Primary, Standby], channelsPerTarget: 1);
        var unnamed = new FailoverSignal(NotPrimary: false, Primary: null);
        TargetGeneration toStandby = targets.Failed(targets.Current, unnamed);
        TargetGeneration backToPrimary = targets.Failed(toStandby, unnamed);
        // The primary took office; a call begun on it just before was refused after: the target moved on to the standby.
        TargetGeneration movedOn = targets.Failed(backToPrimary, unnamed);
        Assert.Equal(Standby, movedOn.Address);

        TargetGeneration returned = targets.Answered(backToPrimary); // a payment succeeded there meanwhile
        Assert.Equal((Primary, movedOn.Number + 1), (returned.Address, returned.Number));
        Assert.Same(backToPrimary.Channels, returned.Channels);
        Assert.Same(returned, targets.Answered(backToPrimary)); // once
        Assert.Same(returned, targets.Answered(returned)); // the current one: no move
        Assert.Same(returned, targets.Failed(movedOn, unnamed)); // the standby's refusal is old news now
        Assert.Equal(4, targets.Moves);
    }

    [Fact]
    public void Only_a_success_on_an_address_chosen_after_the_switch_over_began_ends_it()
    {
        var log = new FailoverLog();
        Assert.False(log.Ends(5)); // none under way
        using var targets = new Targets([Primary, Standby], channelsPerTarget: 1);
        TargetGeneration first = targets.Current;
        log.Began(first, () => 0, "a test's call", new Switch.Grpc.RpcException(Switch.Grpc.StatusCode.Unavailable, "gone"));
        Assert.False(log.Ends(first.Number)); // an answer still coming from the old primary
        Assert.True(log.Ends(first.Number + 1));
        log.Succeeded(first.Number + 1, System.Diagnostics.Stopwatch.GetTimestamp());
        Assert.False(log.Ends(first.Number + 1));
        Assert.Equal(1, log.Snapshot().Count);
    }
}
