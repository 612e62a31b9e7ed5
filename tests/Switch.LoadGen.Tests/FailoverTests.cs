using Switch.Host;
using Switch.Host.Configuration;

namespace Switch.LoadGen.Tests;

/// <summary>
/// The harness given several addresses follows the primary: two real switches in this process on loopback, one set
/// standby naming the other. Each run must end with every request answered exactly once.
/// </summary>
public sealed class FailoverTests
{
    /// <summary>Two switches on loopback with their own journals; the second starts as a standby naming the first.</summary>
    private sealed class Pair : IAsyncDisposable
    {
        private readonly string _data = Path.Combine(Path.GetTempPath(), "switch-loadgen-failover-" + Guid.NewGuid().ToString("N"));

        public SwitchHost First { get; private set; } = null!;
        public SwitchHost Second { get; private set; } = null!;

        public static async Task<Pair> StartAsync(string bankLatency)
        {
            var pair = new Pair();
            pair.First = await SwitchHost.StartAsync(Config(Path.Combine(pair._data, "a"), bankLatency), Quiet);
            pair.Second = await SwitchHost.StartAsync(Config(Path.Combine(pair._data, "b"), bankLatency), Quiet,
                role: NodeRole.StartingAsStandby(AddressesOf(pair.First)));
            return pair;
        }

        public static PrimaryAddresses AddressesOf(SwitchHost host) => new(host.InstitutionAddress, host.AdminGrpcAddress, host.AdminAddress);

        /// <summary>Hands office from one to the other, as the leadership does: the old one steps down first.</summary>
        public static void SwitchOver(SwitchHost from, SwitchHost to)
        {
            from.Role.BecomeStandby(AddressesOf(to));
            to.Role.BecomePrimary();
        }

        public async ValueTask DisposeAsync()
        {
            if (Second is not null) await Second.DisposeAsync();
            if (First is not null) await First.DisposeAsync();
            try { Directory.Delete(_data, recursive: true); } catch (IOException) { }
        }
    }

    private static readonly Log Quiet = new(TextWriter.Null, TextWriter.Null);

    /// <summary>The embedded configuration on free ports with small tables (two switches share this test process).</summary>
    private static HostConfig Config(string dataDirectory, string bankLatency)
    {
        HostConfig config = HostConfig.EmbeddedDefault();
        return config with
        {
            DataDirectory = dataDirectory,
            InstitutionPort = 0,
            AdminPort = 0,
            AdminGrpcPort = 0,
            ShutdownGraceMs = 2_000,
            Archive = new ArchiveConfig { IndexMiB = 8, MemoryMiB = ArchiveConfig.MinMemoryMiB, FilterMiB = 8 },
            SimulatedBanks = new SimulatedBanksConfig { Latency = bankLatency, FailureRate = 0 },
            Switch = config.Switch with
            {
                Rules = config.Switch.Rules with
                {
                    TransactionCapacity = 1 << 14, MaxTrackedAccounts = 1 << 14, MaxUnresolvedPerBank = 1 << 14, BankTimeoutMs = 60_000,
                },
            },
        };
    }

    private static RunOptions Options(Uri first, Uri second, Transport transport, double rate, double seconds) => new()
    {
        Target = first,
        FailoverTargets = [second],
        Transport = transport,
        Profile = new ConstantProfile(rate, seconds),
        Lanes = 2,
        Window = 256,
        MaxUnaryInFlight = 256,
        GraceSeconds = 60,
        // Payments only: the two switches here share no journal, so a refund or query of an order the other one took
        // would be refused for a reason that has nothing to do with following.
        Workload = new WorkloadOptions { MixWeights = [1, 0, 0, 0] },
    };

    /// <summary>Outcomes on a switch's feeds, over every institution.</summary>
    private static long Outcomes(SwitchHost host) =>
        Enumerable.Range(0, host.Engine.Logic.Config.Institutions.Count).Sum(i => host.Feeds.For(i).LastFeedNo);

    private static void AssertEachAnsweredOnce(RunOutcome run, RunOptions options, string what)
    {
        Report report = Report.Build(options, run, null, [], "none");
        what = $"{what}: {report.Headline()}";
        Assert.True(run.Sent > 0 && report.Completed == run.Sent, what);
        Assert.True(run.Lost == 0 && run.Duplicated == 0 && run.Unexpected == 0, what);
        Assert.True(report.Outcomes.Keys.All(k => k == nameof(Outcome.Succeeded)), what);
        Assert.Equal(report.ToJson(), Report.FromJson(report.ToJson(), "failover").ToJson());
    }

    [Theory]
    [InlineData(Transport.Stream)]
    [InlineData(Transport.Unary)]
    public async Task Given_the_standby_first_it_moves_to_the_primary_it_names_and_loses_nothing(Transport transport)
    {
        await using Pair pair = await Pair.StartAsync("0");
        RunOptions options = Options(pair.Second.InstitutionAddress, pair.First.InstitutionAddress, transport, rate: 200, seconds: 1);
        RunOutcome run = await new LoadRunner(options, null).RunAsync();

        AssertEachAnsweredOnce(run, options, transport.ToString());
        Assert.Equal(1, run.Failovers);
        Assert.True(run.TargetMoves == 1, $"moves {run.TargetMoves}");
        Assert.Single(run.FailoverGapsMs);
        // Everything went to the primary: the standby took nothing.
        Assert.Equal(0, Outcomes(pair.Second));
        Assert.True(Outcomes(pair.First) > 0);
    }

    [Theory]
    [InlineData(Transport.Stream)]
    [InlineData(Transport.Unary)]
    public async Task A_switch_over_under_load_is_followed_and_every_request_is_settled_once(Transport transport)
    {
        // Banks that take 150 ms: at the switch-over many payments are in flight on the old primary's streams.
        await using Pair pair = await Pair.StartAsync("fixed:150");
        RunOptions options = Options(pair.First.InstitutionAddress, pair.Second.InstitutionAddress, transport, rate: 200, seconds: 4);
        var runner = new LoadRunner(options, null);
        Task<RunOutcome> running = runner.RunAsync();
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
        {
            while (runner.Recorder.LastSuccessTicks() == 0) await Task.Delay(20, timeout.Token); // traffic flows on the first
        }
        await Task.Delay(500);
        Pair.SwitchOver(pair.First, pair.Second);
        RunOutcome run = await running.WaitAsync(TimeSpan.FromMinutes(3));

        AssertEachAnsweredOnce(run, options, transport.ToString());
        Assert.True(run.Failovers == 1, $"failovers {run.Failovers}");
        Assert.Single(run.FailoverGapsMs);
        // Streams: what was in flight on the old primary when its streams ended was asked about on the new one, which
        // (sharing no journal here) never took it, so it was sent again. Unary: calls under way finish where they are,
        // and the next ones, refused by the old primary, go again to the new one.
        Assert.True(run.SentAgain > 0, $"sent again {run.SentAgain}");
        if (transport == Transport.Stream) Assert.True(run.SettledByQuery == 0 && run.SentAgain > 0, $"{run.SettledByQuery} / {run.SentAgain}");
        Assert.True(Outcomes(pair.Second) > 0, "the new primary took the rest");
    }

    [Fact]
    public async Task What_a_broken_stream_left_unanswered_is_settled_by_query_when_the_primary_took_it()
    {
        // The primary steps down and takes office again (an election it won twice): the payments in flight on its
        // streams were taken, so a Query there gives each one's outcome (only what its streams had not read yet is sent again).
        await using Pair pair = await Pair.StartAsync("fixed:150");
        RunOptions options = Options(pair.First.InstitutionAddress, pair.Second.InstitutionAddress, Transport.Stream, rate: 200, seconds: 3);
        var runner = new LoadRunner(options, null);
        Task<RunOutcome> running = runner.RunAsync();
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
        {
            while (runner.Recorder.LastSuccessTicks() == 0) await Task.Delay(20, timeout.Token);
        }
        await Task.Delay(500);
        pair.First.Role.BecomeStandby(null); // election under way: the standby names nobody either
        pair.Second.Role.BecomeStandby(null);
        await Task.Delay(300);
        pair.First.Role.BecomePrimary();
        RunOutcome run = await running.WaitAsync(TimeSpan.FromMinutes(3));

        AssertEachAnsweredOnce(run, options, "stream");
        Assert.True(run.Failovers == 1 && run.TargetMoves >= 1, $"failovers {run.Failovers}, moves {run.TargetMoves}");
        Assert.True(run.SettledByQuery > 0, $"settled by query {run.SettledByQuery}, sent again {run.SentAgain}");
        Assert.Equal(0, Outcomes(pair.Second));
    }
}
