using Switch.Host;
using Switch.Host.Configuration;

namespace Switch.LoadGen.Tests;

/// <summary>
/// The harness given several addresses follows the primary: two real switches in this process on loopback, one set
/// standby naming the other. Each run must end with every request answered exactly once.
/// </summary>
public sealed class FailoverTests(Xunit.Abstractions.ITestOutputHelper output)
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
            await BanksUpAsync(pair.First);
            await BanksUpAsync(pair.Second);
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

    /// <summary>Until the switch's connector has reached every bank endpoint (a standby cannot be probed by a payment).</summary>
    private static async Task BanksUpAsync(SwitchHost host)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (!host.Connector.Links.All(l => l.IsUp)) await Task.Delay(20, timeout.Token);
    }

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
            Archive = new ArchiveConfig { IndexMiB = 1, MemoryMiB = 2, PageMiB = 1, FilterMiB = 1 },
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

    /// <param name="rate">Open loop at this rate; 0: closed loop (a window of 32 per stream) for the seconds.</param>
    private static RunOptions Options(Uri first, Uri second, Transport transport, double rate, double seconds) => new()
    {
        Target = first,
        FailoverTargets = [second],
        Transport = transport,
        Profile = rate > 0 ? new ConstantProfile(rate, seconds) : null,
        ClosedSeconds = seconds,
        Lanes = 2,
        Window = rate > 0 ? 256 : 32,
        MaxUnaryInFlight = 256,
        GraceSeconds = 60,
        // Payments only: the two switches here share no journal, so a refund or query of an order the other one took
        // would be refused for a reason that has nothing to do with following.
        Workload = new WorkloadOptions { MixWeights = [1, 0, 0, 0] },
    };

    /// <summary>A run started, once payments succeed on the first switch and half a second more has passed (payments in flight).</summary>
    private static async Task<Task<RunOutcome>> UnderWayAsync(RunOptions options)
    {
        var runner = new LoadRunner(options, null);
        Task<RunOutcome> running = runner.RunAsync();
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
        {
            while (runner.Recorder.LastSuccessTicks() == 0) await Task.Delay(20, timeout.Token);
        }
        await Task.Delay(500);
        return running;
    }

    /// <summary>Outcomes on a switch's feeds, over every institution.</summary>
    private static long Outcomes(SwitchHost host) =>
        Enumerable.Range(0, host.Engine.Logic.Config.Institutions.Count).Sum(i => host.Feeds.For(i).LastFeedNo);

    /// <summary>Every request answered once, each a success; the headline goes to the test's output (the switch-over's figures).</summary>
    private void AssertEachAnsweredOnce(RunOutcome run, RunOptions options, string what)
    {
        Report report = Report.Build(options, run, null, [], "none");
        what = $"{what}: {report.Headline()}";
        output.WriteLine(what);
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
    [InlineData(Transport.Stream, 200)]
    [InlineData(Transport.Stream, 0)]
    [InlineData(Transport.Unary, 200)]
    public async Task A_switch_over_under_load_is_followed_and_every_request_is_settled_once(Transport transport, double rate)
    {
        // Banks that take 150 ms: at the switch-over many payments are in flight on the old primary's streams.
        await using Pair pair = await Pair.StartAsync("fixed:150");
        RunOptions options = Options(pair.First.InstitutionAddress, pair.Second.InstitutionAddress, transport, rate, seconds: 4);
        Task<RunOutcome> running = await UnderWayAsync(options);
        Pair.SwitchOver(pair.First, pair.Second);
        RunOutcome run = await running.WaitAsync(TimeSpan.FromMinutes(3));

        AssertEachAnsweredOnce(run, options, transport.ToString());
        Assert.True(run.Failovers == 1, $"failovers {run.Failovers}, begun by: {string.Join("; ", run.FailoverCauses)}");
        Assert.Single(run.FailoverGapsMs);
        // Streams: what was in flight on the old primary when its streams ended was asked about on the new one, which
        // (sharing no journal here) never took it, so it was sent again. Unary: calls under way finish where they are,
        // and the next ones, refused by the old primary, go again to the new one.
        Assert.True(run.SentAgain > 0, $"sent again {run.SentAgain}");
        if (transport == Transport.Stream) Assert.True(run.SettledByQuery == 0 && run.SentAgain > 0, $"{run.SettledByQuery} / {run.SentAgain}");
        Assert.True(Outcomes(pair.Second) > 0, "the new primary took the rest");
    }

    [Theory]
    [InlineData(Transport.Stream)]
    [InlineData(Transport.Unary)]
    public async Task A_primary_killed_under_load_is_passed_over_for_the_next_address_which_takes_office(Transport transport)
    {
        // The primary is the real switch process, killed with SIGKILL mid-run: no refusal names anyone. The standby (in
        // this process) takes office a little later; the harness moves on by itself and settles what the first left
        // unanswered (the two share no journal here, so it is sent again there).
        await using SwitchProcess first = await SwitchProcess.StartAsync(new SwitchSetup { BankLatency = "fixed:150" }, TextWriter.Null);
        var payments = new WorkloadOptions { MixWeights = [1, 0, 0, 0] };
        await Readiness.WaitForBanksAsync(first.InstitutionAddress!, payments, TextWriter.Null);
        string data = Path.Combine(Path.GetTempPath(), "switch-loadgen-failover-" + Guid.NewGuid().ToString("N"));
        SwitchHost second = await SwitchHost.StartAsync(Config(data, "fixed:150"), Quiet,
            role: NodeRole.StartingAsStandby(new PrimaryAddresses(first.InstitutionAddress, null, first.AdminAddress)));
        try
        {
            await BanksUpAsync(second);
            RunOptions options = Options(first.InstitutionAddress!, second.InstitutionAddress, transport, rate: 200, seconds: 4);
            Task<RunOutcome> running = await UnderWayAsync(options);
            await first.DisposeAsync(); // SIGKILL
            await Task.Delay(200);
            second.Role.BecomePrimary();
            RunOutcome run = await running.WaitAsync(TimeSpan.FromMinutes(3));

            AssertEachAnsweredOnce(run, options, transport.ToString());
            Assert.True(run.Failovers == 1 && run.TargetMoves >= 1, $"failovers {run.Failovers}, moves {run.TargetMoves}, begun by: {string.Join("; ", run.FailoverCauses)}");
            Assert.Single(run.FailoverGapsMs);
            Assert.True(run.SentAgain > 0, $"sent again {run.SentAgain}");
            Assert.True(Outcomes(second) > 0, "the new primary took the rest");
        }
        finally
        {
            await second.DisposeAsync();
            try { Directory.Delete(data, recursive: true); } catch (IOException) { }
        }
    }

    [Fact]
    public async Task What_a_broken_stream_left_unanswered_is_settled_by_query_when_the_primary_took_it()
    {
        // The primary steps down and takes office again (an election it won twice): the payments in flight on its
        // streams were taken, so a Query there gives each one's outcome (only what its streams had not read yet is sent again).
        await using Pair pair = await Pair.StartAsync("fixed:150");
        RunOptions options = Options(pair.First.InstitutionAddress, pair.Second.InstitutionAddress, Transport.Stream, rate: 200, seconds: 3);
        Task<RunOutcome> running = await UnderWayAsync(options);
        pair.First.Role.BecomeStandby(null); // election under way: the standby names nobody either
        pair.Second.Role.BecomeStandby(null);
        await Task.Delay(300);
        pair.First.Role.BecomePrimary();
        RunOutcome run = await running.WaitAsync(TimeSpan.FromMinutes(3));

        AssertEachAnsweredOnce(run, options, "stream");
        Assert.True(run.Failovers == 1 && run.TargetMoves >= 1, $"failovers {run.Failovers}, moves {run.TargetMoves}, begun by: {string.Join("; ", run.FailoverCauses)}");
        Assert.True(run.SettledByQuery > 0, $"settled by query {run.SettledByQuery}, sent again {run.SentAgain}");
        Assert.Equal(0, Outcomes(pair.Second));
    }
}

/// <summary>Which failed calls mean "find the primary", and which are the switch's own answers.</summary>
public sealed class FailoverSignalTests
{
    [Fact]
    public void A_standby_refusal_names_the_primary_and_says_nothing_was_taken()
    {
        var e = new Switch.Grpc.RpcException(Switch.Grpc.StatusCode.Unavailable, "NOT_PRIMARY: this node is a standby; the primary is http://10.0.0.2:7001",
            new Switch.Grpc.Metadata().Add("x-switch-primary", "http://10.0.0.2:7001"));
        Assert.Equal(new FailoverSignal(true, new Uri("http://10.0.0.2:7001")), FailoverSignal.Of(e));
        var unknown = new Switch.Grpc.RpcException(Switch.Grpc.StatusCode.Unavailable, "NOT_PRIMARY: this node is a standby; the primary is unknown (election under way)");
        Assert.Equal(new FailoverSignal(true, null), FailoverSignal.Of(unknown));
    }

    [Theory]
    [InlineData(Switch.Grpc.StatusCode.Unavailable, "Error talking to the server: Connection refused (127.0.0.1:7001)", true)]
    [InlineData(Switch.Grpc.StatusCode.Unavailable, "UNAVAILABLE: the switch is recovering its journal; retry shortly", true)]
    [InlineData(Switch.Grpc.StatusCode.Unavailable, "ENGINE_STOPPED: the switch engine has stopped (IOException: disk)", true)]
    [InlineData(Switch.Grpc.StatusCode.Unavailable, "BANK_UNAVAILABLE: bank has no endpoint taking traffic", false)]
    [InlineData(Switch.Grpc.StatusCode.InvalidArgument, "INVALID_FIELD: account is malformed", false)]
    [InlineData(Switch.Grpc.StatusCode.DeadlineExceeded, "Deadline Exceeded", false)]
    [InlineData(Switch.Grpc.StatusCode.Internal, "HTTP/2 error 2: the server's own", false)]
    public void Only_a_switch_that_did_not_answer_is_a_reason_to_move(Switch.Grpc.StatusCode code, string detail, bool moves)
    {
        FailoverSignal? signal = FailoverSignal.Of(new Switch.Grpc.RpcException(code, detail));
        Assert.Equal(moves, signal is not null);
        if (signal is not null) Assert.Equal(new FailoverSignal(false, null), signal);
    }
}
