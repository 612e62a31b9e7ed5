using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using Switch.BankSim;
using Switch.Contracts.V1;
using Switch.Engine.Business;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Configuration;
using Switch.Host.Tests.Admin;
using Switch.Host.Tests.EndToEnd;

namespace Switch.Host.Tests.Crash;

/// <summary>
/// The client side of the crash and failover runs: the banks (simulated in the test process, one per bank code, so
/// their ledgers outlive every switch process), a client of several institutions sending load to whichever switch it
/// is connected to, and its own record of every order it sent and every answer it got. <see cref="VerifyAsync"/>
/// compares the switch's outcome feeds and settlement with that record and with the banks' ledgers. Everything random
/// comes from one seed.
/// </summary>
internal sealed class RecordedClient : IAsyncDisposable
{
    private static readonly (string Code, string Key)[] Institutions =
        [("ALIPAY", "demo-alipay-key"), ("TENPAY", "demo-tenpay-key"), ("YEEPAY", "demo-yeepay-key")];
    private const int StreamWindow = 12;        // requests in flight per Transact stream
    private const int AckedResendsPerRestart = 24;
    private const int ResolveConcurrency = 16;   // calls at once while resolving unanswered orders
    public const int WaitMs = 30_000;           // every wait on the switch is bounded by this

    private readonly Random _random;
    private readonly Dictionary<int, BankSimulatorServer> _banks = new();
    private readonly object _gate = new();
    private readonly List<ClientOrder> _orders = new();
    private readonly Dictionary<string, Queue<ClientOrder>> _refundable = Institutions.ToDictionary(i => i.Code, _ => new Queue<ClientOrder>());
    private readonly HashSet<ClientOrder> _unknownAtCrash = new();
    // Orders without a final answer, by how they were resolved (distinct orders, however many rounds it took).
    private readonly HashSet<ClientOrder> _queried = new();
    private readonly HashSet<ClientOrder> _neverJournaled = new();
    private readonly HashSet<ClientOrder> _resent = new();
    private readonly List<Acknowledgement> _acknowledgements = new();
    private long _accountSequence;
    private int _era;
    private Era? _running;
    private GrpcChannel? _institution;
    private GrpcChannel? _admin;
    private Uri? _connectedTo;

    private RecordedClient(int seed)
    {
        Seed = seed;
        _random = new Random(seed);
    }

    public int Seed { get; }
    /// <summary>The switch's configuration for these banks: quick probes, no scheduled batch close, room for the run.</summary>
    public HostConfig Config { get; private set; } = null!;
    /// <summary>The operator API of the switch connected to.</summary>
    public GrpcChannel Admin => _admin ?? throw new InvalidOperationException("not connected to a switch");

    // What was run, for the reliability report and the assertions on load.
    public int OrdersSent { get { lock (_gate) return _orders.Count; } }
    public int Acknowledged { get; private set; }
    public int AckedResent { get; private set; }
    public int UnknownResent { get { lock (_gate) return _resent.Count; } }
    public int UnknownQueried { get { lock (_gate) return _queried.Count; } }
    public int NeverJournaled { get { lock (_gate) return _neverJournaled.Count; } }
    public int UnknownAtCrash { get { lock (_gate) return _unknownAtCrash.Count; } }
    /// <summary>Every final answer to an order as sent (under load or a probe, not found later by query), in the order
    /// received: when and from which node.</summary>
    public List<Acknowledgement> Acknowledgements()
    {
        lock (_gate) return [.. _acknowledgements];
    }

    /// <summary>Final answers received under the current load (0 with none running).</summary>
    public int AcknowledgedThisEra => _running is { } era ? Volatile.Read(ref era.Acknowledged) : 0;

    /// <summary>Starts one simulated bank per bank code and makes the switch's configuration point at them.</summary>
    /// <param name="snapshots">When the switch takes snapshots (default: the configuration's default).</param>
    /// <param name="bankAddress">Where the banks listen (default loopback; a partition test's switches reach them from
    /// their own network namespaces).</param>
    public static async Task<RecordedClient> CreateAsync(int seed, SnapshotsConfig? snapshots = null, IPAddress? bankAddress = null)
    {
        var client = new RecordedClient(seed);
        try
        {
            HostConfig config = HostConfig.EmbeddedDefault();
            var banks = new List<BankConfig>();
            foreach (BankConfig bank in config.Switch.Banks)
            {
                // Fast, slightly unreliable banks: some declines (FAILED), some silences (UNKNOWN, resolved by query).
                BankSimulatorServer server = await BankSimulatorServer.StartAsync(new BankSimulatorOptions
                {
                    Latency = LatencyModel.Parse("fixed:2"),
                    FailureRate = 0.05,
                    NoAnswerRate = 0.01,
                    Seed = seed + bank.Code,
                    BankCodes = [bank.Code],
                    ListenAddress = bankAddress ?? IPAddress.Loopback,
                });
                client._banks[bank.Code] = server;
                // One endpoint per bank: a bank's data centres share one ledger in life; the simulator's do not.
                banks.Add(bank with
                {
                    Endpoints = [bank.Endpoints[0] with { Address = server.Address.ToString().TrimEnd('/'), WeightBps = 10_000 }],
                });
            }
            client.Config = config with
            {
                ProbeIntervalMs = 100,
                ShutdownGraceMs = 2_000,
                SimulatedBanks = null,
                Snapshots = snapshots ?? config.Snapshots,
                Switch = config.Switch with
                {
                    Banks = banks,
                    Rules = config.Switch.Rules with
                    {
                        TransactionCapacity = 1 << 17,
                        MaxTrackedAccounts = 1 << 17,
                        // Long enough that a starved machine's slow answers are not timeouts that open the breaker.
                        BankTimeoutMs = 3_000,
                        QueryBackoffInitialMs = 100,
                        QueryBackoffMaxMs = 500,
                        BatchCloseTimes = [],
                    },
                },
            };
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>Sends from now on to the switch at these addresses (the channels to the last one are dropped).</summary>
    public void Connect(Uri institution, Uri admin)
    {
        Assert.Null(_running);
        Disconnect();
        _institution = GrpcChannel.ForAddress(institution);
        _admin = GrpcChannel.ForAddress(admin);
        _connectedTo = institution;
    }

    private void Disconnect()
    {
        _institution?.Dispose();
        _admin?.Dispose();
        _institution = null;
        _admin = null;
    }

    /// <summary>Waits until the switch connected to reaches every bank (bounded).</summary>
    public Task WaitForBanksAsync(string what) => AdminClient.WaitUntilAsync(async () =>
    {
        ListBanksReply banks = await Admin.UnaryAsync(AdminMethods.ListBanks, new ListBanksRequest(), AdminClient.As(AdminClient.ViewerKey));
        return banks.Banks.All(b => b.Endpoints.All(e => e.TakesTraffic));
    }, what);

    /// <summary>
    /// Settles what the last death of a switch left open, on the switch connected to: resends a sample of acknowledged
    /// orders (each must come back as the same outcome) and resolves every order left without a final answer.
    /// </summary>
    public async Task SettleAsync()
    {
        await ResendAcknowledgedAsync();
        await ResolveUnansweredAsync();
    }

    /// <summary>Starts the load of every institution: one Transact stream and one unary caller each.</summary>
    public void StartLoad()
    {
        Assert.Null(_running);
        int era = ++_era;
        var running = new Era();
        for (int i = 0; i < Institutions.Length; i++)
        {
            var streamRandom = new Random(HashCode.Combine(Seed, era, i, 0));
            var unaryRandom = new Random(HashCode.Combine(Seed, era, i, 1));
            int institution = i;
            running.Workers.Add(Task.Run(() => StreamWorkerAsync(institution, era, streamRandom, running)));
            running.Workers.Add(Task.Run(() => UnaryWorkerAsync(institution, era, unaryRandom, running)));
        }
        _running = running;
    }

    /// <summary>Waits until this load has had <paramref name="count"/> final answers, or <paramref name="died"/> says
    /// the switch is gone (the caller asserts on that).</summary>
    public Task WaitForAcknowledgedAsync(int count, Func<bool> died) =>
        AdminClient.WaitUntilAsync(() => Task.FromResult(AcknowledgedThisEra >= count || died()), $"{count} acknowledged orders in this era");

    /// <summary>Stops sending, lets every answer in flight arrive (bounded), and ends the load with the switch still up.</summary>
    public async Task StopLoadAsync()
    {
        Era era = _running!;
        era.StopSending.Cancel();
        await AdminClient.WaitUntilAsync(() => Task.FromResult(era.Workers.All(w => w.IsCompleted)), "the load's answers in flight");
        await EndEraAsync(crashed: false);
    }

    /// <summary>The switch died (or stopped serving): the load ends at once, what it left unanswered is remembered as
    /// unknown at a crash, and the channels to that switch are dropped.</summary>
    public Task AbandonAsync() => EndEraAsync(crashed: true);

    /// <summary>
    /// One new order sent to the switch at <paramref name="institution"/> (not the one connected to), in the record like
    /// any other: true when it came back final (the switch serves), false when refused or unanswered (resolved later).
    /// </summary>
    public async Task<bool> TryOrderAsync(GrpcChannel institution, int timeoutMs)
    {
        var random = new Random(HashCode.Combine(Seed, Interlocked.Read(ref _accountSequence)));
        (string code, string key) = Institutions[random.Next(Institutions.Length)];
        ClientOrder order = NewOrder(code, random, "P");
        try
        {
            TransferResult result = await institution.UnaryAsync(MethodOf(order.Kind), order.Request, RunningSwitch.As(key, timeoutMs));
            Record(order, result, era: 0, from: institution.Address);
            return order.Final is not null;
        }
        catch (Exception e) when (e is RpcException or IOException or HttpRequestException or OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>
    /// The end of the run, on the switch connected to: every order resolved, then the checks. (1) Every acknowledged
    /// outcome is in the institution's outcome feed with the same transaction, status and amount, the feed numbered
    /// 1..n with no order twice. (2) Every order unknown at a crash became final. (3) Each bank's ledger: every entry is
    /// one of the client's orders (found by its own account and operation, so a second execution under another
    /// transaction id would show), under that order's transaction id, and money moved exactly for the orders that
    /// succeeded. (4) The operator closes the batch: the settlement nets to zero, each bank's net equals its ledger's
    /// movements, each institution's and the switch's equal what the client's record of successes and fees says.
    /// </summary>
    public async Task VerifyAsync()
    {
        await ResolveUnansweredAsync();
        await PollPendingAsync();
        lock (_gate)
        {
            Assert.All(_orders, o => Assert.True(o.Final is not null, $"{o.Institution} {o.Request.OrderNo} never became final"));
            Assert.All(_unknownAtCrash, o => Assert.NotNull(o.Final));
        }
        foreach ((string code, string key) in Institutions) await CheckOutcomeFeedAsync(code, key);
        CheckBankLedgers();
        await CheckSettlementAsync();
    }

    private async Task CheckOutcomeFeedAsync(string code, string key)
    {
        Dictionary<string, ClientOrder> finals;
        lock (_gate) finals = _orders.Where(o => o.Institution == code).ToDictionary(o => o.Request.OrderNo);
        using var cts = new CancellationTokenSource(WaitMs);
        using ServerStreamingCall<TransferResult> feed = _institution!.ServerStreaming(InstitutionMethods.Outcomes,
            new OutcomesRequest { AfterFeedNo = 0 }, RunningSwitch.As(key) with { Timeout = null, CancellationToken = cts.Token });
        var seen = new HashSet<string>();
        while (seen.Count < finals.Count)
        {
            TransferResult outcome = await feed.ResponseStream.ReadAsync() ?? throw new InvalidOperationException($"{code}: the outcome feed ended early");
            Assert.Equal(seen.Count + 1, outcome.FeedNo);
            Assert.True(seen.Add(outcome.OrderNo), $"{code} {outcome.OrderNo} twice in the outcome feed");
            Assert.True(finals.TryGetValue(outcome.OrderNo, out ClientOrder? order), $"{code} {outcome.OrderNo}: a final outcome for no order the client sent");
            TransferResult mine = order!.Final!;
            Assert.True(mine.TransactionId == outcome.TransactionId && mine.Status == outcome.Status && mine.AmountFen == outcome.AmountFen,
                $"{code} {outcome.OrderNo}: acknowledged {mine.Status} {mine.AmountFen} fen as transaction {mine.TransactionId}, " +
                $"the feed says {outcome.Status} {outcome.AmountFen} fen as transaction {outcome.TransactionId}");
        }
    }

    private void CheckBankLedgers()
    {
        Dictionary<(int Bank, string Account, BankOperation Operation), ClientOrder> byBankAccount;
        Dictionary<long, ClientOrder> byTransaction;
        lock (_gate)
        {
            byBankAccount = _orders.ToDictionary(o => (o.BankCode, o.Account, o.Operation));
            byTransaction = _orders.Where(o => o.Final!.TransactionId != 0).ToDictionary(o => o.Final!.TransactionId);
        }
        var executed = new HashSet<ClientOrder>();
        foreach ((int code, BankSimulatorServer bank) in _banks)
        {
            foreach (BankLedgerEntry entry in bank.Ledger.Snapshot())
            {
                if (entry.Outcome == BankOutcome.Barred)
                {
                    // A reversal that overtook its request: that transaction must have ended failed.
                    Assert.Equal(TransactionStatus.Failed, byTransaction[entry.TransactionId].Final!.Status);
                    continue;
                }
                Assert.True(byBankAccount.TryGetValue((code, entry.Account, entry.Operation), out ClientOrder? order),
                    $"bank {code} executed transaction {entry.TransactionId} ({entry.Operation} {entry.AmountFen} fen to {entry.Account}) for no order the client sent");
                Assert.True(executed.Add(order!), $"{order!.Institution} {order.Request.OrderNo} executed twice (bank {code}, transaction {entry.TransactionId})");
                TransferResult final = order.Final!;
                Assert.Equal(final.TransactionId, entry.TransactionId);
                Assert.Equal(order.Request.AmountFen, entry.AmountFen);
                Assert.True(entry.NetFen != 0 == (final.Status == TransactionStatus.Succeeded),
                    $"{order.Institution} {order.Request.OrderNo}: the switch says {final.Status}, bank {code} says {entry.Outcome}{(entry.Reversed ? " reversed" : "")}");
                if (entry.Outcome == BankOutcome.Failed) Assert.Equal(entry.Reason, final.BankReason);
            }
        }
        lock (_gate)
        {
            foreach (ClientOrder order in _orders.Where(o => o.Final!.Status == TransactionStatus.Succeeded))
                Assert.True(executed.Contains(order), $"{order.Institution} {order.Request.OrderNo} succeeded at the switch, its bank has no record");
        }
    }

    private async Task CheckSettlementAsync()
    {
        CloseBatchReply closed = await _admin!.UnaryAsync(AdminMethods.CloseBatch, new CloseBatchRequest { Reason = "crash test end" }, AdminClient.As(AdminClient.OpsKey));
        Assert.Equal(1, closed.BatchId); // the only batch: every transaction of the run is in it
        SettlementReply? settlement = null;
        await AdminClient.WaitUntilAsync(async () =>
        {
            try
            {
                settlement = await _admin.UnaryAsync(AdminMethods.GetSettlement, new SettlementRequest { BatchId = closed.BatchId }, AdminClient.As(AdminClient.ViewerKey));
                return true;
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.NotFound or StatusCode.FailedPrecondition or StatusCode.Unavailable)
            {
                return false; // the files are still being written
            }
        }, "the settlement of the closed batch");
        Assert.Equal(0, settlement!.SumNetFen);
        Assert.Equal(0, settlement.Lines.Sum(l => l.NetFen));
        foreach ((int code, BankSimulatorServer bank) in _banks)
        {
            // Every bank and institution had successes in a run of thousands of orders: each has its line.
            SettlementLine line = settlement.Lines.Single(l => l.ParticipantKind == "BANK" && l.ParticipantId == code.ToString("D3"));
            Assert.True(bank.Ledger.NetFen() == line.NetFen, $"bank {code}: its ledger moved {bank.Ledger.NetFen()} fen, the settlement says {line.NetFen}");
        }
        long feesTotal = 0;
        lock (_gate)
        {
            foreach ((string code, _) in Institutions)
            {
                var succeeded = _orders.Where(o => o.Institution == code && o.Final!.Status == TransactionStatus.Succeeded).ToList();
                long fees = succeeded.Sum(o => o.Final!.FeeFen);
                long net = succeeded.Sum(o => o.Kind == RequestKind.AgreementPayment ? o.Request.AmountFen : -o.Request.AmountFen) - fees;
                feesTotal += fees;
                SettlementLine line = settlement.Lines.Single(l => l.ParticipantKind == "INSTITUTION" && l.ParticipantId == code);
                Assert.True(net == line.NetFen, $"{code}: the client's successes and fees net {net} fen, the settlement {line.NetFen}");
            }
        }
        Assert.Equal(feesTotal, settlement.Lines.Single(l => l.ParticipantKind == "SWITCH").NetFen);
    }

    /// <summary>Resends some acknowledged orders: each must come back as the first outcome, never execute again.</summary>
    private async Task ResendAcknowledgedAsync()
    {
        List<ClientOrder> sample;
        lock (_gate)
        {
            var acked = _orders.Where(o => o.Acknowledged).ToList();
            sample = Enumerable.Range(0, Math.Min(AckedResendsPerRestart, acked.Count)).Select(_ => acked[_random.Next(acked.Count)]).Distinct().ToList();
        }
        foreach (ClientOrder order in sample)
        {
            TransferResult again = await _institution!.UnaryAsync(MethodOf(order.Kind), order.Request, RunningSwitch.As(KeyOf(order.Institution), WaitMs));
            TransferResult first = order.Final!;
            Assert.True(again.Duplicate && again.TransactionId == first.TransactionId && again.Status == first.Status && again.AmountFen == first.AmountFen,
                $"{order.Institution} {order.Request.OrderNo} resent after a restart: first {first.Status} {first.AmountFen} fen as {first.TransactionId}, " +
                $"now {again.Status} {again.AmountFen} fen as {again.TransactionId} (duplicate {again.Duplicate})");
            AckedResent++;
        }
    }

    /// <summary>
    /// Every order without a final answer (unanswered at a crash, or refused): half are sent again as they were (the
    /// switch returns the journaled transaction, or executes it if it never journaled it); the other half are
    /// queried first, and one the switch does not know must be unknown to its bank too, then is sent again.
    /// Concurrently, a bounded number at a time: a loaded machine answers each call slowly.
    /// </summary>
    private async Task ResolveUnansweredAsync()
    {
        long deadline = Environment.TickCount64 + 2 * WaitMs;
        while (true)
        {
            List<(ClientOrder Order, bool QueryFirst)> open;
            lock (_gate) open = _orders.Where(o => o.Final is null && !o.Pending).Select(o => (o, _random.Next(2) == 0)).ToList();
            if (open.Count == 0) return;
            Assert.True(Environment.TickCount64 < deadline,
                $"{open.Count} orders could not be resolved, e.g. {open[0].Order.Institution} {open[0].Order.Request.OrderNo}: {open[0].Order.LastRefusal ?? "no answer"}");
            await Parallel.ForEachAsync(open, new ParallelOptions { MaxDegreeOfParallelism = ResolveConcurrency },
                async (o, _) => await ResolveOneAsync(o.Order, o.QueryFirst));
            if (CountUnanswered() > 0) await Task.Delay(100); // refusals such as BANK_UNAVAILABLE last a while: pause before the next round
        }
    }

    private int CountUnanswered()
    {
        lock (_gate) return _orders.Count(o => o.Final is null && !o.Pending);
    }

    private async Task ResolveOneAsync(ClientOrder order, bool queryFirst)
    {
        string key = KeyOf(order.Institution);
        if (queryFirst)
        {
            try
            {
                TransferResult queried = await _institution!.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = order.Request.OrderNo }, RunningSwitch.As(key, WaitMs));
                lock (_gate) _queried.Add(order);
                Record(order, queried, era: null);
                return;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
            {
                // Never journaled: it must never have reached a bank. Now it is sent as new.
                Assert.False(_banks[order.BankCode].Ledger.Snapshot().Any(x => x.Account == order.Account && x.Operation == order.Operation),
                    $"{order.Institution} {order.Request.OrderNo} is unknown to the switch, yet its bank executed it");
                lock (_gate) _neverJournaled.Add(order);
            }
        }
        lock (_gate) _resent.Add(order);
        try
        {
            TransferResult result = await _institution!.UnaryAsync(MethodOf(order.Kind), order.Request, RunningSwitch.As(key, WaitMs));
            Record(order, result, era: null);
        }
        catch (RpcException e) when (IsReject(e))
        {
            // Refused for now (e.g. BANK_UNAVAILABLE): the next round tries again.
            lock (_gate) order.LastRefusal = e.Status.ToString();
        }
    }

    /// <summary>Orders the switch answered UNKNOWN or PROCESSING: polled until final, bounded.</summary>
    private async Task PollPendingAsync()
    {
        await AdminClient.WaitUntilAsync(async () =>
        {
            List<ClientOrder> pending;
            lock (_gate) pending = _orders.Where(o => o.Pending).ToList();
            await Parallel.ForEachAsync(pending, new ParallelOptions { MaxDegreeOfParallelism = ResolveConcurrency }, async (order, _) =>
            {
                TransferResult queried = await _institution!.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = order.Request.OrderNo },
                    RunningSwitch.As(KeyOf(order.Institution), WaitMs));
                Record(order, queried, era: null);
            });
            lock (_gate) return _orders.All(o => !o.Pending);
        }, "every pending order final", timeoutMs: 2 * WaitMs);
    }

    private async Task StreamWorkerAsync(int institution, int era, Random random, Era running)
    {
        (string code, string key) = Institutions[institution];
        var inFlight = new Dictionary<string, ClientOrder>();
        using var window = new SemaphoreSlim(StreamWindow);
        using DuplexStreamingCall<TransferRequest, TransferResult> call = _institution!.DuplexStreaming(InstitutionMethods.Transact,
            RunningSwitch.As(key, 300_000) with { CancellationToken = running.Abort.Token });
        Task reading = Task.Run(async () =>
        {
            try
            {
                while (await call.ResponseStream.ReadAsync(running.Abort.Token) is { } result)
                {
                    ClientOrder? order;
                    lock (inFlight) inFlight.Remove(result.OrderNo, out order);
                    // Exactly one answer per request, on the stream that sent it: anything else is someone else's answer.
                    Assert.True(order is not null, $"{code}'s stream received a result for {result.OrderNo} ({result.Status}), which it is not waiting for");
                    Record(order!, result, era);
                    if (order!.Acknowledged) Interlocked.Increment(ref running.Acknowledged);
                    window.Release();
                }
            }
            catch (Exception e) when (e is RpcException or IOException or OperationCanceledException or HttpRequestException or ObjectDisposedException)
            {
                // The switch died (or the era ended): what is in flight stays unanswered.
            }
        });
        try
        {
            while (!running.StopSending.IsCancellationRequested)
            {
                await window.WaitAsync(running.StopSending.Token);
                ClientOrder order = NewOrder(code, random, $"E{era}S");
                lock (inFlight) inFlight[order.Request.OrderNo] = order;
                await call.RequestStream.WriteAndFlushAsync(order.Request, running.Abort.Token);
            }
        }
        catch (Exception e) when (e is RpcException or IOException or OperationCanceledException or HttpRequestException or ObjectDisposedException)
        {
        }
        if (!running.Abort.IsCancellationRequested)
        {
            // A graceful end: let the answers in flight arrive (bounded), then close the stream.
            long deadline = Environment.TickCount64 + WaitMs;
            while (Environment.TickCount64 < deadline && !running.Abort.IsCancellationRequested)
            {
                lock (inFlight) if (inFlight.Count == 0) break;
                await Task.Delay(20);
            }
            try { await call.RequestStream.CompleteAsync(); } catch (Exception e) when (e is RpcException or IOException or OperationCanceledException or HttpRequestException or ObjectDisposedException) { }
        }
        await reading.WaitAsync(TimeSpan.FromMilliseconds(WaitMs)).ConfigureAwait(false);
    }

    private async Task UnaryWorkerAsync(int institution, int era, Random random, Era running)
    {
        (string code, string key) = Institutions[institution];
        while (!running.StopSending.IsCancellationRequested)
        {
            ClientOrder order = NewOrder(code, random, $"E{era}U");
            try
            {
                TransferResult result = await _institution!.UnaryAsync(MethodOf(order.Kind), order.Request,
                    RunningSwitch.As(key, WaitMs) with { CancellationToken = running.Abort.Token });
                Record(order, result, era);
                if (order.Acknowledged) Interlocked.Increment(ref running.Acknowledged);
            }
            catch (RpcException e) when (IsReject(e) && !e.Status.Detail.StartsWith(NotPrimary, StringComparison.Ordinal) && !running.Abort.IsCancellationRequested)
            {
                // Refused by the switch: no final outcome; resolved after the next restart like an unanswered one.
            }
            catch (Exception e) when (e is RpcException or IOException or OperationCanceledException or HttpRequestException or ObjectDisposedException)
            {
                return; // the switch died, left office (NOT_PRIMARY) or the era ended: this order stays unanswered
            }
        }
    }

    /// <summary>A refusal by the switch ("CODE: field ..."), as opposed to a broken connection.</summary>
    private static bool IsReject(RpcException e) => Regex.IsMatch(e.Status.Detail ?? "", "^[A-Z_]+: ");

    /// <summary>The refusal of a node that is not (or no longer) the primary: the client must go to the primary.</summary>
    private const string NotPrimary = "NOT_PRIMARY: ";

    private ClientOrder NewOrder(string institution, Random random, string prefix)
    {
        int[] banks = [.. _banks.Keys];
        int roll = random.Next(100);
        ClientOrder? original = null;
        if (roll >= 85)
        {
            lock (_gate) _refundable[institution].TryDequeue(out original);
        }
        long sequence = Interlocked.Increment(ref _accountSequence);
        string orderNo = $"{prefix}-{sequence}";
        ClientOrder order;
        if (original is not null)
        {
            order = new ClientOrder(institution, RequestKind.Refund, original.BankCode, original.Account, BankOperation.Credit, new TransferRequest
            {
                Kind = RequestKind.Refund, OrderNo = orderNo, AmountFen = random.NextInt64(1, original.Request.AmountFen + 1),
                Currency = "CNY", OriginalOrderNo = original.Request.OrderNo,
            });
        }
        else
        {
            bool payout = roll >= 60;
            int bank = banks[random.Next(banks.Length)];
            // An account of its own per order: the bank's ledger then tells the orders apart without the switch's ids.
            string account = (payout ? "63" : "61") + sequence.ToString("D12");
            order = new ClientOrder(institution, payout ? RequestKind.Payout : RequestKind.AgreementPayment, bank, account,
                payout ? BankOperation.Credit : BankOperation.Debit, new TransferRequest
                {
                    Kind = payout ? RequestKind.Payout : RequestKind.AgreementPayment, OrderNo = orderNo,
                    AmountFen = random.NextInt64(100, payout ? 50_001 : 100_001), Currency = "CNY", Bank = bank.ToString("D3"), Account = account,
                });
        }
        lock (_gate) _orders.Add(order);
        return order;
    }

    /// <summary>Takes an answer into the client's record. A final outcome is kept as first received; a later one must match it.</summary>
    /// <param name="from">The node that answered (default: the one connected to).</param>
    private void Record(ClientOrder order, TransferResult result, int? era, Uri? from = null)
    {
        long receivedTimestamp = Stopwatch.GetTimestamp();
        Assert.Equal(order.Request.OrderNo, result.OrderNo);
        lock (_gate)
        {
            switch (result.Status)
            {
                case TransactionStatus.Succeeded or TransactionStatus.Failed:
                    if (order.Final is { } first)
                    {
                        Assert.True(first.TransactionId == result.TransactionId && first.Status == result.Status && first.AmountFen == result.AmountFen,
                            $"{order.Institution} {order.Request.OrderNo}: final {first.Status} as {first.TransactionId}, later {result.Status} as {result.TransactionId}");
                        return;
                    }
                    order.Final = result;
                    order.Pending = false;
                    if (era is not null)
                    {
                        Acknowledged++;
                        _acknowledgements.Add(new Acknowledgement(receivedTimestamp, from ?? _connectedTo!, order.Request.OrderNo));
                    }
                    order.Acknowledged = era is not null;
                    if (result.Status == TransactionStatus.Succeeded && order.Kind == RequestKind.AgreementPayment) _refundable[order.Institution].Enqueue(order);
                    break;
                case TransactionStatus.Processing or TransactionStatus.Unknown:
                    Assert.Null(order.Final); // a final outcome never goes back
                    order.Pending = true;
                    break;
                default:
                    Assert.Equal(TransactionStatus.Rejected, result.Status); // refused: resolved like an unanswered order
                    order.LastRefusal = $"{result.RejectCode} {result.RejectField}";
                    break;
            }
        }
    }

    private async Task EndEraAsync(bool crashed)
    {
        Era era = _running!;
        _running = null;
        era.StopSending.Cancel();
        era.Abort.Cancel();
        await Task.WhenAll(era.Workers).WaitAsync(TimeSpan.FromMilliseconds(WaitMs));
        if (crashed)
        {
            Disconnect();
            lock (_gate)
            {
                foreach (ClientOrder order in _orders.Where(o => o.Final is null)) _unknownAtCrash.Add(order);
            }
        }
    }

    /// <summary>A seeded choice of the run.</summary>
    public int Next(int minInclusive, int maxExclusive) => _random.Next(minInclusive, maxExclusive);

    public byte[] NextBytes(int count)
    {
        var bytes = new byte[count];
        _random.NextBytes(bytes);
        return bytes;
    }

    /// <summary>The load stopped, the channels dropped, the banks stopped.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_running is not null)
        {
            _running.StopSending.Cancel();
            _running.Abort.Cancel();
        }
        Disconnect();
        foreach (BankSimulatorServer bank in _banks.Values) await bank.DisposeAsync();
    }

    private static string KeyOf(string institution) => Institutions.First(i => i.Code == institution).Key;

    private static GrpcMethod<TransferRequest, TransferResult> MethodOf(RequestKind kind) => kind switch
    {
        RequestKind.AgreementPayment => InstitutionMethods.AgreementPayment,
        RequestKind.Payout => InstitutionMethods.Payout,
        RequestKind.Refund => InstitutionMethods.Refund,
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>One life of the switch process under load.</summary>
    private sealed class Era
    {
        public readonly CancellationTokenSource StopSending = new();
        public readonly CancellationTokenSource Abort = new();
        public readonly List<Task> Workers = new();
        public int Acknowledged;
    }
}

/// <summary>A final answer as received: when (<see cref="Stopwatch.GetTimestamp"/>, this machine's clock), from which
/// node (its institution address), for which order.</summary>
internal readonly record struct Acknowledgement(long ReceivedTimestamp, Uri Node, string OrderNo);

/// <summary>One order as the client knows it: what it sent, to which bank account, and the first final outcome it got.</summary>
internal sealed class ClientOrder(string institution, RequestKind kind, int bankCode, string account, BankOperation operation, TransferRequest request)
{
    public string Institution { get; } = institution;
    public RequestKind Kind { get; } = kind;
    public int BankCode { get; } = bankCode;
    public string Account { get; } = account;
    public BankOperation Operation { get; } = operation;
    public TransferRequest Request { get; } = request;
    /// <summary>The first final outcome (SUCCEEDED or FAILED) the client received.</summary>
    public TransferResult? Final { get; set; }
    /// <summary>The final outcome came as the answer to the order while the load ran (not found later by query).</summary>
    public bool Acknowledged { get; set; }
    /// <summary>The switch answered UNKNOWN or PROCESSING: it has the transaction, the outcome is to come.</summary>
    public bool Pending { get; set; }
    /// <summary>Why the switch last refused it, for the message when it cannot be resolved.</summary>
    public string? LastRefusal { get; set; }
}
