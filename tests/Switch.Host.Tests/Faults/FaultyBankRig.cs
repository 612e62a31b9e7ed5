using System.Diagnostics;
using System.Globalization;
using Switch.BankSim;
using Switch.Contracts.V1;
using Switch.Engine.Business;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Configuration;
using Switch.Host.Tests.EndToEnd;
using EngineTransaction = Switch.Engine.Business.Transaction;
using WireBreaker = Switch.Contracts.V1.BreakerState;

namespace Switch.Host.Tests.Faults;

/// <summary>
/// A real switch host whose banks are real simulators on loopback that the test controls: bank 102 (ICBC) has a
/// DC1 that will misbehave and a healthy DC2, bank 103 (ABC) is healthy throughout. Each bank's endpoints front one
/// set of books (a bank's data centres share its core system), which also survive an endpoint's restart, so the
/// books say what each bank executed however its endpoints came and went. Deadlines and breaker windows are short.
/// </summary>
internal sealed class FaultyBankRig : IAsyncDisposable
{
    public const int FaultyBank = 102;
    public const int HealthyBank = 103;
    public const string FaultyEndpoint = "ICBC-DC1";
    /// <summary>Short for a quick test, long enough that a loaded machine still delivers a healthy request in time.</summary>
    public const int BankTimeoutMs = 2_000;
    /// <summary>Every wait of the scenarios: a condition polled, never a sleep.</summary>
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private readonly BankSimulatorServer _faultyDc2;
    private readonly BankSimulatorServer _healthyDc1;
    private readonly BankSimulatorServer _healthyDc2;

    private FaultyBankRig(RunningSwitch sw, BankSimulatorServer faultyDc1, BankSimulatorServer faultyDc2,
        BankSimulatorServer healthyDc1, BankSimulatorServer healthyDc2)
    {
        Switch = sw;
        FaultyDc1 = faultyDc1;
        FaultyPort = faultyDc1.Address.Port;
        _faultyDc2 = faultyDc2;
        _healthyDc1 = healthyDc1;
        _healthyDc2 = healthyDc2;
    }

    public RunningSwitch Switch { get; }
    /// <summary>The faulty endpoint's current incarnation (a restart replaces it on the same port and books).</summary>
    public BankSimulatorServer FaultyDc1 { get; private set; }
    public int FaultyPort { get; }
    public BankLedger FaultyBooks => _faultyDc2.Ledger;
    public BankLedger HealthyBooks => _healthyDc1.Ledger;
    public int Restarts { get; private set; }

    public static async Task<FaultyBankRig> StartAsync()
    {
        var faultyBooks = new BankLedger();
        var healthyBooks = new BankLedger();
        var started = new List<BankSimulatorServer>();
        try
        {
            foreach ((int code, BankLedger books, int seed) in new[] { (FaultyBank, faultyBooks, 1), (FaultyBank, faultyBooks, 2), (HealthyBank, healthyBooks, 3), (HealthyBank, healthyBooks, 4) })
            {
                // A few ms of latency, as real banks have: work is in flight at any moment, so a stop loses some.
                var options = new BankSimulatorOptions { Latency = new LatencyModel.Uniform(1, 20), Seed = seed, BankCodes = [code] };
                started.Add(await BankSimulatorServer.StartAsync(options, ledger: books).WaitAsync(Bound));
            }
            HostConfig config = RunningSwitch.TestConfig("", rules: r => r with
            {
                BankTimeoutMs = BankTimeoutMs,
                QueryBackoffInitialMs = 200,
                QueryBackoffMaxMs = 800,
                BatchCloseTimes = [],
                BreakerWindowMs = 3_000,
                BreakerMinCalls = 10,
                BreakerErrorRatePct = 30,
                BreakerOpenMs = 1_500,
                BreakerProbeEvery = 4,
                BreakerProbeSuccesses = 3,
            });
            BankConfig Bank(int code, BankSimulatorServer dc1, BankSimulatorServer dc2)
            {
                BankConfig bank = config.Switch.Banks.Single(b => b.Code == code);
                string prefix = bank.Endpoints[0].Name[..^1]; // "ICBC-DC"
                return bank with
                {
                    Endpoints =
                    [
                        bank.Endpoints[0] with { Name = prefix + "1", Address = dc1.Address.ToString(), WeightBps = 5_000 },
                        bank.Endpoints[1] with { Name = prefix + "2", Address = dc2.Address.ToString(), WeightBps = 5_000 },
                    ],
                };
            }
            config = config with
            {
                SimulatedBanks = null,
                Switch = config.Switch with { Banks = [Bank(FaultyBank, started[0], started[1]), Bank(HealthyBank, started[2], started[3])] },
            };
            RunningSwitch sw = await RunningSwitch.StartAsync(config);
            var rig = new FaultyBankRig(sw, started[0], started[1], started[2], started[3]);
            await WaitUntilAsync(() => rig.Endpoints().All(e => e.Reachable), "every endpoint reachable at start");
            return rig;
        }
        catch
        {
            foreach (BankSimulatorServer s in started) await s.DisposeAsync();
            throw;
        }
    }

    /// <summary>The engine's view of bank 102's endpoints (DC1, DC2).</summary>
    public IReadOnlyList<Switch.Engine.Business.EndpointView> Endpoints() =>
        [Switch.Host.Engine.Logic.ViewEndpoint(FaultyBank, 0), Switch.Host.Engine.Logic.ViewEndpoint(FaultyBank, 1)];

    /// <summary>DC1 goes away: connections are refused from now on (its held work ends unanswered).</summary>
    public ValueTask StopFaultyAsync() => FaultyDc1.DisposeAsync();

    /// <summary>DC1 comes back on its port and the bank's books, behaving as it did.</summary>
    public async Task RestartFaultyAsync()
    {
        BankSimulatorOptions options = FaultyDc1.Options with { Port = FaultyPort };
        await FaultyDc1.DisposeAsync();
        FaultyDc1 = await BankSimulatorServer.StartAsync(options, ledger: FaultyBooks).WaitAsync(Bound);
        Restarts++;
    }

    public static Task WaitUntilAsync(Func<bool> condition, string what) => WaitUntilAsync(() => Task.FromResult(condition()), what);

    public static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        long deadline = Environment.TickCount64 + (long)Bound.TotalMilliseconds;
        while (!await condition())
        {
            if (Environment.TickCount64 > deadline) throw new TimeoutException($"timed out after {Bound.TotalSeconds} s waiting for: {what}");
            await Task.Delay(20);
        }
    }

    /// <summary>The audit entries about DC1, oldest first.</summary>
    public List<AuditEntry> FaultyAudit() =>
        Switch.Host.Audit.Entries(0, 10_000, FaultyBank.ToString("D3")).Where(e => e.Endpoint == FaultyEndpoint).ToList();

    public int CountAudit(string kind) => FaultyAudit().Count(e => e.Kind == kind);

    /// <summary>
    /// The end of a scenario: every transaction final within the bound (polled by Query, as an institution would),
    /// positions summing to zero, each bank's books agreeing with the switch's outcomes, and nothing routed to DC1
    /// while the switch had it out (unreachable or breaker open). Returns what was found, for the report.
    /// </summary>
    public async Task<Settled> SettleAndCheckAsync(IReadOnlyList<Traffic.Sent> sent)
    {
        Assert.All(sent, s => Assert.True(s.Answer is not null, $"{s.OrderNo}: no answer but {s.Error}"));
        List<Traffic.Sent> healthy = sent.Where(s => s.Bank == HealthyBank).ToList();
        List<Traffic.Sent> faulty = sent.Where(s => s.Bank == FaultyBank).ToList();
        Assert.All(healthy, s => Assert.Equal(TransactionStatus.Succeeded, s.Answer!.Status));
        Assert.All(faulty, s => Assert.Contains(s.Answer!.Status, new[] { TransactionStatus.Succeeded, TransactionStatus.Failed, TransactionStatus.Unknown }));

        // Final within the bound: the unknown ones are asked about until the switch has their outcome.
        var final = sent.ToDictionary(s => s.OrderNo, s => s.Answer!);
        long started = Stopwatch.GetTimestamp();
        await WaitUntilAsync(async () =>
        {
            foreach (string orderNo in final.Where(p => !IsFinal(p.Value.Status)).Select(p => p.Key).ToList())
            {
                final[orderNo] = await Switch.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = orderNo },
                    RunningSwitch.As(RunningSwitch.AlipayKey));
            }
            return final.Values.All(r => IsFinal(r.Status));
        }, "every transaction final");
        TimeSpan settledIn = Stopwatch.GetElapsedTime(started);

        Assert.Equal(0, Switch.Host.Engine.Logic.PositionSumFen());
        AssertBooksAgree(HealthyBooks, healthy, final);
        AssertBooksAgree(FaultyBooks, faulty, final);

        // Traffic follows the switch's view of DC1: nothing dispatched to it while it was out.
        var transactions = faulty.Select(s => Transaction(s.OrderNo)).ToList();
        List<(long FromUs, long ToUs)> outIntervals = OutIntervals(FaultyAudit());
        int dispatchedWhileOut = 0;
        foreach (EngineTransaction tx in transactions)
        {
            if (!outIntervals.Any(i => tx.DispatchedUs > i.FromUs && tx.DispatchedUs < i.ToUs)) continue;
            dispatchedWhileOut++;
            Assert.True(tx.EndpointIndex == 1, $"transaction {tx.Id} went to {FaultyEndpoint} while the switch had it out");
        }
        return new Settled(
            Unknown: faulty.Count(s => s.Answer!.Status == TransactionStatus.Unknown),
            Succeeded: faulty.Count(s => final[s.OrderNo].Status == TransactionStatus.Succeeded),
            Failed: faulty.Count(s => final[s.OrderNo].Status == TransactionStatus.Failed),
            SettledIn: settledIn,
            DispatchedWhileOut: dispatchedWhileOut,
            ToHealthyEndpoint: transactions.Count(t => t.EndpointIndex == 1),
            Transactions: transactions,
            Final: final,
            HealthyLatency: Percentiles(healthy.Select(s => s.LatencyUs)));
    }

    /// <summary>What a scenario ended with: counts over the faulty bank's payments, and the healthy bank's round trips.</summary>
    public sealed record Settled(int Unknown, int Succeeded, int Failed, TimeSpan SettledIn, int DispatchedWhileOut, int ToHealthyEndpoint,
        IReadOnlyList<EngineTransaction> Transactions, IReadOnlyDictionary<string, TransferResult> Final, string HealthyLatency)
    {
        public string Summary(int sentFaulty) => string.Create(CultureInfo.InvariantCulture,
            $"{Unknown} ICBC payments unknown at the deadline; every one final {SettledIn.TotalSeconds:F1} s after the last answer at the latest ({Succeeded} succeeded, {Failed} failed); " +
            $"{DispatchedWhileOut} ICBC payments made while DC1 was out, all sent to DC2 ({ToHealthyEndpoint} of {sentFaulty} on DC2 in all); " +
            $"positions sum to 0; both banks' books agree with the switch, each transaction executed at most once");
    }

    public EngineTransaction Transaction(string orderNo)
    {
        Assert.True(Switch.Host.Engine.Logic.TryGetOrder("ALIPAY", orderNo, out EngineTransaction tx), $"{orderNo} unknown to the switch");
        return tx;
    }

    private static bool IsFinal(TransactionStatus status) => status is TransactionStatus.Succeeded or TransactionStatus.Failed;

    /// <summary>
    /// The bank executed exactly what the switch calls succeeded, once each, and holds nothing else: every record is
    /// one of this bank's transactions, and the money it moved is the sum the switch says succeeded.
    /// </summary>
    private static void AssertBooksAgree(BankLedger books, List<Traffic.Sent> sent, Dictionary<string, TransferResult> final)
    {
        var byId = sent.ToDictionary(s => s.Answer!.TransactionId, s => final[s.OrderNo]);
        IReadOnlyList<BankLedgerEntry> entries = books.Snapshot();
        foreach (BankLedgerEntry entry in entries)
        {
            Assert.True(byId.ContainsKey(entry.TransactionId), $"the bank holds {entry.TransactionId}, not one of its transactions");
        }
        var executed = entries.Where(e => e.Outcome == BankOutcome.Succeeded && !e.Reversed).Select(e => e.TransactionId).ToHashSet();
        foreach ((long id, TransferResult result) in byId)
        {
            bool succeeded = result.Status == TransactionStatus.Succeeded;
            Assert.True(succeeded == executed.Contains(id),
                $"transaction {id} ({result.OrderNo}): the switch says {result.Status} ({result.BankReason}), the bank {(executed.Contains(id) ? "executed it" : "did not")}");
        }
        Assert.Equal(executed.Count, books.Counts.Executed); // no id executed twice
        Assert.Equal(-byId.Values.Where(r => r.Status == TransactionStatus.Succeeded).Sum(r => r.AmountFen), books.NetFen());
    }

    /// <summary>Event-time intervals in which DC1 took no new traffic: unreachable, or its breaker open (each audit
    /// entry carries the endpoint's state after the change, stamped with the event that made it).</summary>
    private static List<(long FromUs, long ToUs)> OutIntervals(List<AuditEntry> entries)
    {
        var intervals = new List<(long, long)>();
        long outSince = -1;
        bool reachable = true;
        WireBreaker breaker = WireBreaker.Closed;
        foreach (AuditEntry e in entries)
        {
            if (e.Kind is "REACHABILITY" or "BREAKER_OPEN" or "BREAKER_HALF_OPEN" or "BREAKER_CLOSED" or "STATE")
            {
                reachable = e.Reachable;
                breaker = e.Breaker;
            }
            bool isOut = !reachable || breaker == WireBreaker.Open;
            if (isOut && outSince < 0) outSince = e.AtUnixUs;
            else if (!isOut && outSince >= 0)
            {
                intervals.Add((outSince, e.AtUnixUs));
                outSince = -1;
            }
        }
        if (outSince >= 0) intervals.Add((outSince, long.MaxValue));
        return intervals;
    }

    private static string Percentiles(IEnumerable<long> latenciesUs)
    {
        long[] sorted = latenciesUs.Order().ToArray();
        if (sorted.Length == 0) return "no calls";
        double At(double q) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)] / 1000.0;
        return string.Create(CultureInfo.InvariantCulture, $"p50 {At(0.50):F1} ms, p99 {At(0.99):F1} ms");
    }

    public async ValueTask DisposeAsync()
    {
        await Switch.DisposeAsync();
        await FaultyDc1.DisposeAsync();
        await _faultyDc2.DisposeAsync();
        await _healthyDc1.DisposeAsync();
        await _healthyDc2.DisposeAsync();
    }
}

/// <summary>
/// Open-loop payments, one bank each way: each bank gets a payment every interval whatever happened to the last
/// ones (as institutions keep sending whatever a bank does), with a bound on those outstanding and on the total.
/// Each answer is kept with its round trip, measured from the send.
/// </summary>
internal sealed class Traffic
{
    public sealed record Sent(string OrderNo, int Bank, long AmountFen, TransferResult? Answer, StatusCode? Error, long LatencyUs);

    private const int IntervalMs = 15;
    private const int MaxOutstandingPerBank = 256;
    /// <summary>Well under the test switch's transaction table, so no transaction is evicted before it is checked.</summary>
    private const int MaxPerBank = 5_000;

    private readonly RunningSwitch _switch;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task<Sent>> _calls = new();
    private readonly Task[] _loops;
    private readonly int[] _answered = new int[2];
    private readonly int[] _banks;
    private readonly long _startedTicks = Stopwatch.GetTimestamp();

    private Traffic(RunningSwitch sw, int[] banks)
    {
        _switch = sw;
        _banks = banks;
        _loops = banks.Select((bank, i) => Task.Run(() => RunAsync(bank, i))).ToArray();
    }

    public static Traffic Start(RunningSwitch sw) => new(sw, [FaultyBankRig.FaultyBank, FaultyBankRig.HealthyBank]);

    public int Answered(int bank) => Volatile.Read(ref _answered[Array.IndexOf(_banks, bank)]);

    /// <summary>Waits (bounded) until <paramref name="more"/> further payments to the bank have been answered.</summary>
    public async Task WaitForMoreAsync(int bank, int more)
    {
        int target = Answered(bank) + more;
        long deadline = Environment.TickCount64 + (long)FaultyBankRig.Bound.TotalMilliseconds;
        while (Answered(bank) < target)
        {
            if (Environment.TickCount64 > deadline) throw new TimeoutException($"bank {bank}: {Answered(bank)} of {target} payments answered");
            await Task.Delay(20);
        }
    }

    /// <summary>How long payments were sent for (set by <see cref="StopAsync"/>).</summary>
    public TimeSpan Duration { get; private set; }

    /// <summary>Stops sending, waits for every outstanding answer, and returns every payment sent.</summary>
    public async Task<IReadOnlyList<Sent>> StopAsync()
    {
        Duration = Stopwatch.GetElapsedTime(_startedTicks);
        _stop.Cancel();
        await Task.WhenAll(_loops);
        Task<Sent>[] calls;
        lock (_calls) calls = _calls.ToArray();
        Sent[] sent = await Task.WhenAll(calls).WaitAsync(FaultyBankRig.Bound);
        _stop.Dispose();
        return sent;
    }

    private async Task RunAsync(int bank, int slot)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(IntervalMs));
        using var outstanding = new SemaphoreSlim(MaxOutstandingPerBank, MaxOutstandingPerBank);
        try
        {
            for (int n = 0; n < MaxPerBank && await timer.WaitForNextTickAsync(_stop.Token); n++)
            {
                await outstanding.WaitAsync(_stop.Token);
                Task<Sent> call = PayAsync(bank, n, slot, outstanding);
                lock (_calls) _calls.Add(call);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        // Every call releases its slot: wait for them before the semaphore goes.
        for (int i = 0; i < MaxOutstandingPerBank; i++) await outstanding.WaitAsync().WaitAsync(FaultyBankRig.Bound);
    }

    private async Task<Sent> PayAsync(int bank, int n, int slot, SemaphoreSlim outstanding)
    {
        string orderNo = $"F{bank}-{n:D5}";
        long amountFen = 100 + n % 900;
        TransferRequest request = RunningSwitch.Payment(orderNo, amountFen, bank: bank.ToString("D3"), account: $"6222{bank:D3}{n:D9}");
        long started = Stopwatch.GetTimestamp();
        try
        {
            TransferResult answer = await _switch.PayAsync(request);
            return new Sent(orderNo, bank, amountFen, answer, null, (long)Stopwatch.GetElapsedTime(started).TotalMicroseconds);
        }
        catch (RpcException e)
        {
            return new Sent(orderNo, bank, amountFen, null, e.StatusCode, (long)Stopwatch.GetElapsedTime(started).TotalMicroseconds);
        }
        finally
        {
            Interlocked.Increment(ref _answered[slot]);
            outstanding.Release();
        }
    }
}
