using Switch.Host.Tests.EndToEnd;
using Switch.Host.Tests.Operator;
using static Switch.Host.Tests.Operator.OperatorTestKit;

namespace Switch.Host.Tests.Cluster;

/// <summary>switchctl given several admin addresses finds the primary: two real switches, the second a standby naming the first.</summary>
public sealed class SwitchCtlFollowsTests : IAsyncLifetime
{
    private RunningSwitch _primary = null!;
    private RunningSwitch _standby = null!;

    public async Task InitializeAsync()
    {
        _primary = await StartSwitchAsync();
        _standby = await StartSwitchAsync();
        _standby.Host.Role.BecomeStandby(new PrimaryAddresses(_primary.Host.InstitutionAddress, _primary.Host.AdminGrpcAddress, _primary.Host.AdminAddress));
    }

    public async Task DisposeAsync()
    {
        await _standby.DisposeAsync();
        await _primary.DisposeAsync();
    }

    private string Primary => RoleState.Address(_primary.Host.AdminGrpcAddress);
    private string Standby => RoleState.Address(_standby.Host.AdminGrpcAddress);

    [Fact]
    public async Task Given_the_standby_then_the_primary_it_answers_from_the_primary_and_says_so()
    {
        CtlRun run = await RawAsync(["--admin", $"{Standby},{Primary}", "--key", OperatorKey, "banks", "102"]);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("ICBC-DC1", run.Out);
        Assert.Contains($"switchctl: answered by {Primary}", run.Err);
    }

    [Fact]
    public async Task Given_only_the_standby_it_follows_the_primary_the_standby_names()
    {
        CtlRun run = await RawAsync(["--admin", Standby, "--key", OperatorKey, "whoami"]);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains($"switchctl: answered by {Primary}", run.Err);
    }

    [Fact]
    public async Task A_node_that_takes_no_connection_is_passed_over_and_a_change_is_made_once_on_the_primary()
    {
        CtlRun run = await RawAsync(["--admin", $"{ClosedAddress()},{Standby},{Primary}", "--key", OperatorKey,
            "drain", "102", "ICBC-DC2", "--reason", "follow test"]);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains($"switchctl: answered by {Primary}", run.Err);
        Assert.Equal(Contracts.V1.EndpointAdminState.Draining, (await BankAsync(_primary, "102")).Endpoints.Single(e => e.Name == "ICBC-DC2").State);

        // A stream finds the primary first, then streams from it.
        CtlRun watch = await RawAsync(["--admin", $"{Standby},{Primary}", "--key", OperatorKey, "stats", "102", "--watch", "--interval", "250ms"],
            (text, cts) => { if (text.Split("BANK").Length > 2) cts.Cancel(); });
        Assert.True(watch.ExitCode == 0, watch.ToString());
        Assert.Contains($"switchctl: answered by {Primary}", watch.Err);
    }

    [Fact]
    public async Task With_no_primary_among_them_it_exits_three_naming_the_refusal()
    {
        _standby.Host.Role.BecomeStandby(null);
        CtlRun run = await RawAsync(["--admin", Standby, "--key", OperatorKey, "banks"]);
        Assert.True(run.ExitCode == 3, run.ToString());
        Assert.StartsWith("switchctl: UNAVAILABLE: banks: NOT_PRIMARY: this node is a standby; the primary is unknown (election under way)", run.Err);
    }
}
