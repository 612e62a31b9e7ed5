using Prometheus;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Host.Banks;
using Switch.Host.Gateway;
using EngineBreaker = Switch.Engine.Events.BreakerState;

namespace Switch.Host.Admin;

/// <summary>What /metrics reads at scrape time besides the engine and the views: cheap reads of counters kept elsewhere.</summary>
public sealed record MetricSources(BankConnector Connector, OutcomeFeeds Feeds, AuthFailureLimiter InstitutionAuth, OperatorAuthenticator AdminAuth,
    SnapshotStatus Snapshots);

/// <summary>
/// /metrics in the Prometheus text exposition format 0.0.4, written by the prometheus-net library from one registry.
/// Histograms and counters observed as things happen live in <see cref="TransactionMetrics"/>, <see cref="JournalMetrics"/>
/// and <see cref="GrpcMetrics"/>; this class adds the figures read at scrape time (the live windows and routing view,
/// the engine's rings, backlogs, the archive, authentication failures, the thread pool), from the same sources as the
/// API (no second set of numbers to drift). Every labelled child is resolved here, once.
/// </summary>
public sealed class MetricsWriter : IDisposable
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private static readonly (string Label, EndpointState State)[] States =
        [("up", EndpointState.Up), ("draining", EndpointState.Draining), ("down", EndpointState.Down)];
    private static readonly (string Label, EngineBreaker State)[] Breakers =
        [("closed", EngineBreaker.Closed), ("open", EngineBreaker.Open), ("half_open", EngineBreaker.HalfOpen)];

    private readonly CollectorRegistry _registry;
    private readonly Detachable _update = new();

    /// <summary>
    /// The registry's before-collect callback, cut loose from the switch when it stops. prometheus-net keeps callbacks
    /// in a ConcurrentBag, whose per-thread list sits in the adding thread's slot array, shared by every ThreadLocal of
    /// that thread: a registry whose callbacks lead back to it (its gauges) stays reachable from a pool thread after
    /// the switch is gone, and a callback that reached the engine kept a disposed switch's hundreds of MiB with it.
    /// </summary>
    private sealed class Detachable
    {
        private volatile Action? _action;
        public void Set(Action? action) => _action = action;
        public void Invoke() => _action?.Invoke();
    }

    /// <summary>Lets go of the switch (engine, stats, feeds): the registry may outlive it.</summary>
    public void Dispose() => _update.Set(null);

    public MetricsWriter(CollectorRegistry registry, SwitchEngine engine, AuditLog audit, LiveStats stats, SuccessRateWatch? watch, IClock clock,
        MetricSources sources)
    {
        _registry = registry;
        IMetricFactory f = Factory(registry);
        IReadOnlyList<BankRouting> banks = audit.Banks();
        int[] windows = LiveStats.WindowSeconds;
        string[] windowLabels = windows.Select(WindowLabel).ToArray();
        string[] epLabels = ["bank", "endpoint"];
        string[] epWindowLabels = ["bank", "endpoint", "window"];

        // [bank][endpoint][window]
        Gauge.Child[][][] EndpointWindows(string name, string help)
        {
            Gauge g = f.CreateGauge(name, help, epWindowLabels);
            return banks.Select(b => b.Endpoints.Select(e => windowLabels.Select(w => g.WithLabels(b.CodeText, e.Name, w)).ToArray()).ToArray()).ToArray();
        }
        Gauge.Child[][] BankWindows(string name, string help)
        {
            Gauge g = f.CreateGauge(name, help, ["bank", "window"]);
            return banks.Select(b => windowLabels.Select(w => g.WithLabels(b.CodeText, w)).ToArray()).ToArray();
        }
        Gauge.Child[] PerBank(string name, string help)
        {
            Gauge g = f.CreateGauge(name, help, ["bank"]);
            return banks.Select(b => g.WithLabels(b.CodeText)).ToArray();
        }
        T[][] PerEndpoint<T>(Func<BankRouting, EndpointRouting, T> child) => banks.Select(b => b.Endpoints.Select(e => child(b, e)).ToArray()).ToArray();
        Gauge.Child[][] EndpointGauges(string name, string help)
        {
            Gauge g = f.CreateGauge(name, help, epLabels);
            return PerEndpoint((b, e) => g.WithLabels(b.CodeText, e.Name));
        }

        var rate = EndpointWindows("switch_endpoint_requests_per_second", "Transactions sent to the endpoint per second over the window.");
        var success = EndpointWindows("switch_endpoint_success_ratio", "Share of the transactions answered in the window that succeeded (0 when none).");
        var timeouts = EndpointWindows("switch_endpoint_timeout_ratio", "Share of the transactions answered in the window that timed out (0 when none).");
        var p50 = EndpointWindows("switch_endpoint_latency_p50_seconds", "Median bank round trip over the window (0 when none).");
        var p99 = EndpointWindows("switch_endpoint_latency_p99_seconds", "99th percentile bank round trip over the window (0 when none).");
        var bankRate = BankWindows("switch_bank_requests_per_second", "Transactions sent to the bank per second over the window.");
        var bankSuccess = BankWindows("switch_bank_success_ratio", "Share of the bank's transactions answered in the window that succeeded (0 when none).");
        var bankInFlight = PerBank("switch_bank_in_flight", "Transactions sent to the bank and not yet answered.");
        var inFlight = EndpointGauges("switch_endpoint_in_flight", "Transactions sent to the endpoint and not yet answered.");
        var weight = EndpointGauges("switch_endpoint_weight_bps", "The endpoint's cut-over weight in basis points of 10,000.");
        var reachable = EndpointGauges("switch_endpoint_reachable", "1 when the connector reaches the endpoint.");
        var takesTraffic = EndpointGauges("switch_endpoint_takes_traffic", "1 when the endpoint takes new transactions now.");
        var queued = EndpointGauges("switch_endpoint_queued", "Bank requests waiting to be written to the endpoint's stream (the output backlog).");
        Gauge stateFamily = f.CreateGauge("switch_endpoint_state", "The endpoint's admin state: 1 for the state it is in.", ["bank", "endpoint", "state"]);
        var state = PerEndpoint((b, e) => States.Select(s => stateFamily.WithLabels(b.CodeText, e.Name, s.Label)).ToArray());
        Gauge breakerFamily = f.CreateGauge("switch_endpoint_breaker_state", "The endpoint's circuit breaker: 1 for the state it is in.", ["bank", "endpoint", "state"]);
        var breaker = PerEndpoint((b, e) => Breakers.Select(s => breakerFamily.WithLabels(b.CodeText, e.Name, s.Label)).ToArray());
        Counter requestsFamily = f.CreateCounter("switch_endpoint_requests_total", "Transactions sent to the endpoint since the process started.", epLabels);
        var requests = PerEndpoint((b, e) => requestsFamily.WithLabels(b.CodeText, e.Name));
        Counter answersFamily = f.CreateCounter("switch_endpoint_answers_total", "Transactions answered by outcome since the process started.", ["bank", "endpoint", "outcome"]);
        var answers = PerEndpoint((b, e) => new[] { "succeeded", "failed", "timed_out" }.Select(o => answersFamily.WithLabels(b.CodeText, e.Name, o)).ToArray());
        Counter droppedFamily = f.CreateCounter("switch_endpoint_dropped_total", "Bank requests not sent (queue full or endpoint down); the engine resolves them by query.", epLabels);
        var dropped = PerEndpoint((b, e) => droppedFamily.WithLabels(b.CodeText, e.Name));
        Counter messagesFamily = f.CreateCounter("switch_endpoint_messages_total",
            "Exchange messages written to the endpoint's stream (each carries one request, or a batch of them).", epLabels);
        var messages = PerEndpoint((b, e) => messagesFamily.WithLabels(b.CodeText, e.Name));
        EndpointLink?[][] links = PerEndpoint((b, e) => sources.Connector.Links.FirstOrDefault(l => l.BankCode == b.Code && l.EndpointIndex == Array.IndexOf(b.Endpoints, e)));
        Gauge.Child[]? alert = watch is null ? null : PerBank("switch_bank_success_rate_alert", "1 while the bank's success-rate alert is active.");

        Counter applied = f.CreateCounter("switch_engine_events_applied_total", "Input events the business logic has applied since the journal began.");
        Counter auditEntries = f.CreateCounter("switch_audit_entries_total", "Entries in the audit log (operator changes, ramp steps, breaker and reachability changes, batch closes).");
        Gauge inputSlots = f.CreateGauge("switch_input_ring_slots", "Slots of the engine's input ring.");
        Gauge inputOccupied = f.CreateGauge("switch_input_ring_occupied", "Input events published and not yet applied by the logic (full at switch_input_ring_slots: publishers wait).");
        Gauge journalBehind = f.CreateGauge("switch_journal_behind_events", "Input events published and not yet durable in the journal.");
        Gauge logicBehind = f.CreateGauge("switch_logic_behind_journal_events", "Input events durable in the journal and not yet applied by the logic.");
        Gauge outputSlots = f.CreateGauge("switch_output_ring_slots", "Slots of the engine's output ring.");
        Gauge outputOccupied = f.CreateGauge("switch_output_ring_occupied", "Outputs the logic published and the output thread has not yet handed out.");
        Counter diskReads = f.CreateCounter("switch_archive_disk_reads_total", "Archive look-ups of transactions that had left memory (each read the disk on the logic thread).");
        Counter storeLookups = f.CreateCounter("switch_archive_store_lookups_total", "Look-ups that reached the archive's store (past its in-memory filter).");
        Counter feedFamily = f.CreateCounter("switch_feed_outcomes_total", "Final outcomes appended to the institution's outcome feed (its last feed number).", ["institution"]);
        IReadOnlyList<string> institutions = engine.Logic.Config.Institutions.Select(i => i.Code).ToArray();
        Counter.Child[] feed = institutions.Select(i => feedFamily.WithLabels(i)).ToArray();
        Gauge lagFamily = f.CreateGauge("switch_feed_subscriber_lag_max",
            "The most outcomes an Outcomes subscriber of the institution still had to read when it asked for more, since the previous scrape.", ["institution"]);
        Gauge.Child[] lag = institutions.Select(i => lagFamily.WithLabels(i)).ToArray();
        Counter authFamily = f.CreateCounter("switch_auth_failures_total", "Calls refused for a missing or wrong key, by port (institution, admin).", ["port"]);
        Counter.Child institutionAuth = authFamily.WithLabels("institution"), adminAuth = authFamily.WithLabels("admin");
        Gauge poolThreads = f.CreateGauge("dotnet_threadpool_threads", "Thread-pool threads that exist now.");
        Gauge poolQueued = f.CreateGauge("dotnet_threadpool_queued_items", "Work items queued to the thread pool and not yet started.");
        Counter poolCompleted = f.CreateCounter("dotnet_threadpool_completed_items_total", "Work items the thread pool has completed since the process started.");
        Counter gcPause = f.CreateCounter("dotnet_gc_pause_seconds_total", "Time the garbage collector paused the process since it started.");
        Counter gcAllocated = f.CreateCounter("dotnet_gc_allocated_bytes_total", "Bytes allocated on the managed heap since the process started, by every thread (bytes per transaction: the load harness divides it).");
        Counter snapshotsTaken = f.CreateCounter("switch_snapshots_taken_total", "Snapshots this process published.");
        Counter snapshotsFailed = f.CreateCounter("switch_snapshots_failed_total", "Snapshots this process could not take (see the snapshot_failed log records).");
        Gauge snapshotPosition = f.CreateGauge("switch_snapshot_last_position", "The journal record number of the last snapshot published (0: none by this process).");
        Gauge snapshotAge = f.CreateGauge("switch_snapshot_last_age_seconds", "Seconds since the last snapshot was published (0: none by this process).");
        Gauge snapshotBytes = f.CreateGauge("switch_snapshot_last_bytes", "Size of the last snapshot's file.");
        Gauge snapshotPause = f.CreateGauge("switch_snapshot_last_pause_seconds", "How long the logic thread paused to capture the last snapshot.");
        // Deleted files (old snapshots, retired journal segments) freed in paced steps: a backlog that grows, or failures,
        // is disk space not coming back.
        Gauge reclaimOutstanding = f.CreateGauge("switch_files_reclaim_outstanding", "Deleted files whose blocks are still being freed in steps (set aside, not yet unlinked).");
        Counter reclaimed = f.CreateCounter("switch_files_reclaimed_total", "Deleted files whose blocks were freed in steps and which were then unlinked, since the process started.");
        Counter reclaimedBytes = f.CreateCounter("switch_files_reclaimed_bytes_total", "The bytes of those files.");
        Counter reclaimFailures = f.CreateCounter("switch_files_reclaim_failures_total", "Deleted files a step or the unlink failed on (left on disk under their name with .reclaim).");
        // Replication (a cluster's primary; 0 on a single switch and on a standby, which reports its term only).
        Gauge term = f.CreateGauge("switch_term", "The leadership term the engine has applied (0: never led or followed a cluster).");
        Gauge replicationLagRecords = f.CreateGauge("switch_replication_lag_records", "Journal records committed here and not yet acknowledged by the standby.");
        Gauge replicationLag = f.CreateGauge("switch_replication_lag_seconds", "Age of the oldest journal batch the standby has not yet acknowledged.");
        Gauge replicationAcknowledged = f.CreateGauge("switch_replication_acknowledged_records", "Journal records the standby holds durable.");
        Gauge replicationState = f.CreateGauge("switch_replication_state", "1 for the replication gate's state now (synchronous, asynchronous, degraded, stalled, fenced).", ["state"]);
        var replicationStates = Enum.GetValues<Engine.Replication.ReplicationState>()
            .Select(st => (st, replicationState.WithLabels(st.ToString().ToLowerInvariant()))).ToArray();
        DotNetStats.Register(registry); // process CPU, memory, handles, threads, start time; GC collections per generation

        _update.Set(() =>
        {
            long nowUs = clock.NowUs();
            IReadOnlyList<BankRouting> now = audit.Banks();
            IReadOnlyList<SuccessRateAlert> alerts = watch?.Alerts() ?? [];
            for (int b = 0; b < now.Count; b++)
            {
                BankRouting bank = now[b];
                for (int w = 0; w < windows.Length; w++)
                {
                    WindowFigures all = stats.Window(bank.Index, -1, windows[w], nowUs);
                    bankRate[b][w].Set((double)all.Requests / windows[w]);
                    bankSuccess[b][w].Set(all.SuccessRate);
                    for (int e = 0; e < bank.Endpoints.Length; e++)
                    {
                        WindowFigures one = stats.Window(bank.Index, e, windows[w], nowUs);
                        rate[b][e][w].Set((double)one.Requests / windows[w]);
                        success[b][e][w].Set(one.SuccessRate);
                        timeouts[b][e][w].Set(one.TimeoutRate);
                        p50[b][e][w].Set(one.LatencyPercentileUs(0.50) / 1e6);
                        p99[b][e][w].Set(one.LatencyPercentileUs(0.99) / 1e6);
                    }
                }
                bankInFlight[b].Set(stats.BankInFlight(bank.Index));
                alert?[b].Set(alerts.Any(a => a.Active && a.BankIndex == bank.Index) ? 1 : 0);
                for (int e = 0; e < bank.Endpoints.Length; e++)
                {
                    EndpointRouting ep = bank.Endpoints[e];
                    inFlight[b][e].Set(stats.InFlight(bank.Index, e));
                    weight[b][e].Set(ep.WeightBps);
                    reachable[b][e].Set(ep.Reachable ? 1 : 0);
                    takesTraffic[b][e].Set(ep.TakesTraffic ? 1 : 0);
                    for (int s = 0; s < States.Length; s++) state[b][e][s].Set(ep.State == States[s].State ? 1 : 0);
                    for (int s = 0; s < Breakers.Length; s++) breaker[b][e][s].Set(ep.Breaker == Breakers[s].State ? 1 : 0);
                    var t = stats.Totals(bank.Index, e);
                    requests[b][e].IncTo(t.Requests);
                    answers[b][e][0].IncTo(t.Succeeded);
                    answers[b][e][1].IncTo(t.Failed);
                    answers[b][e][2].IncTo(t.TimedOut);
                    if (links[b][e] is { } link)
                    {
                        queued[b][e].Set(link.Queued);
                        dropped[b][e].IncTo(link.Dropped);
                        messages[b][e].IncTo(link.MessagesSent);
                    }
                }
            }
            long appliedSeq = engine.AppliedSequence, durableSeq = engine.DurableSequence, publishedSeq = engine.PublishedSequence;
            applied.IncTo(appliedSeq + 1);
            auditEntries.IncTo(audit.LastAuditNo);
            inputSlots.Set(engine.InputCapacity);
            inputOccupied.Set(Math.Max(0, publishedSeq - appliedSeq));
            journalBehind.Set(Math.Max(0, publishedSeq - durableSeq));
            logicBehind.Set(Math.Max(0, durableSeq - appliedSeq));
            outputSlots.Set(engine.OutputCapacity);
            outputOccupied.Set(Math.Max(0, engine.OutputPublishedSequence - engine.OutputHandedOutSequence));
            diskReads.IncTo(engine.ArchiveDiskReads);
            storeLookups.IncTo(engine.ArchiveStoreLookups);
            snapshotsTaken.IncTo(engine.SnapshotsTaken);
            snapshotsFailed.IncTo(engine.SnapshotsFailed);
            if (sources.Snapshots.Last is { } snapshot)
            {
                snapshotPosition.Set(snapshot.Result.Position.RecordNo);
                snapshotAge.Set(Math.Max(0, nowUs - snapshot.AtUnixUs) / 1e6);
                snapshotBytes.Set(snapshot.Result.Bytes);
                snapshotPause.Set(snapshot.Result.PauseUs / 1e6);
            }
            Journal.FileReclaimer reclaimer = Journal.FileReclaimer.Shared;
            reclaimOutstanding.Set(reclaimer.Outstanding);
            reclaimed.IncTo(reclaimer.Reclaimed);
            reclaimedBytes.IncTo(reclaimer.ReclaimedBytes);
            reclaimFailures.IncTo(reclaimer.Failures);
            term.Set(engine.Term);
            if (engine.Replication is { } replication)
            {
                replicationLagRecords.Set(replication.LagRecords);
                replicationLag.Set(replication.LagUs / 1e6);
                replicationAcknowledged.Set(replication.AcknowledgedRecords);
                foreach ((Engine.Replication.ReplicationState st, Gauge.Child child) in replicationStates) child.Set(replication.State == st ? 1 : 0);
            }
            for (int i = 0; i < feed.Length; i++)
            {
                feed[i].IncTo(sources.Feeds.For(i).LastFeedNo);
                lag[i].Set(sources.Feeds.For(i).TakeMaxLag());
            }
            institutionAuth.IncTo(sources.InstitutionAuth.Failures);
            adminAuth.IncTo(sources.AdminAuth.Failures);
            poolThreads.Set(ThreadPool.ThreadCount);
            poolQueued.Set(ThreadPool.PendingWorkItemCount);
            poolCompleted.IncTo(ThreadPool.CompletedWorkItemCount);
            gcPause.IncTo(GC.GetTotalPauseDuration().TotalSeconds);
            gcAllocated.IncTo(GC.GetTotalAllocatedBytes(precise: false));
        });
        registry.AddBeforeCollectCallback(_update.Invoke);
    }

    /// <summary>The switch's metric factory: no exemplars (text format 0.0.4 never shows them, and looking for a trace
    /// context would cost every observation a look-up).</summary>
    public static IMetricFactory Factory(CollectorRegistry registry)
    {
        IMetricFactory factory = Metrics.WithCustomRegistry(registry);
        factory.ExemplarBehavior = ExemplarBehavior.NoExemplars();
        return factory;
    }

    public static string WindowLabel(int seconds) => seconds % 60 == 0 ? $"{seconds / 60}m" : $"{seconds}s";

    public Task WriteAsync(Stream body, CancellationToken cancellation) => _registry.CollectAndExportAsTextAsync(body, cancellation);

    /// <summary>The whole exposition as text (tests, and callers without a stream).</summary>
    public async Task<string> WriteAsync()
    {
        using var buffer = new MemoryStream();
        await WriteAsync(buffer, CancellationToken.None);
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }
}
