using System.Diagnostics;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;

namespace Switch.LoadGen;

/// <summary>Before measuring: the switch answers and every bank takes traffic, and the JIT has run.</summary>
public static class Readiness
{
    public const int TimeoutSeconds = 60;

    /// <summary>
    /// A payment to each bank until one succeeds or fails at the bank (not refused as unavailable): the switch
    /// reports "running" before its connector has reached every endpoint. Probe orders are numbered apart.
    /// </summary>
    public static async Task WaitForBanksAsync(Uri target, WorkloadOptions workload, TextWriter log)
    {
        using var channel = GrpcChannel.ForAddress(target);
        InstitutionKey institution = workload.Institutions[0];
        var call = new CallOptions { Headers = new Metadata().Add(InstitutionMethods.ApiKeyHeader, institution.ApiKey), Timeout = TimeSpan.FromSeconds(10) };
        string tag = "P" + Guid.NewGuid().ToString("N")[..8] + "-";
        long started = Stopwatch.GetTimestamp();
        int probe = 0;
        for (int bank = 0; bank < workload.Banks.Count; bank++)
        {
            while (true)
            {
                var request = new TransferRequest
                {
                    Kind = RequestKind.AgreementPayment, OrderNo = tag + probe++, AmountFen = workload.MinAmountFen, Currency = "CNY",
                    Bank = workload.Banks[bank], Account = RequestFactory.Account(workload.Seed ^ 0x5A5A, bank, probe),
                };
                string? refusal = null;
                try
                {
                    TransferResult r = await channel.UnaryAsync(InstitutionMethods.AgreementPayment, request, call);
                    if (r.Status is TransactionStatus.Succeeded or TransactionStatus.Failed) break;
                    refusal = r.Status.ToString();
                }
                catch (RpcException e)
                {
                    refusal = e.Status.Detail;
                    if (e.StatusCode is StatusCode.Unauthenticated or StatusCode.PermissionDenied or StatusCode.InvalidArgument or StatusCode.NotFound)
                    {
                        throw new InvalidOperationException($"bank {workload.Banks[bank]}: the probe payment was refused: {e.StatusCode} {e.Status.Detail}");
                    }
                }
                if (Stopwatch.GetElapsedTime(started).TotalSeconds > TimeoutSeconds)
                {
                    throw new InvalidOperationException($"bank {workload.Banks[bank]} takes no traffic after {TimeoutSeconds} s: {refusal}");
                }
                await Task.Delay(100);
            }
        }
        log.WriteLine($"ready: every bank answers ({probe} probe payments, {Stopwatch.GetElapsedTime(started).TotalSeconds:F1} s)");
    }

    /// <summary>An unmeasured run at the profile's opening rate (its own order numbers), so the figures are of
    /// steady state, not of the JIT: on 2 cores a fresh switch and generator spend seconds compiling.</summary>
    public static async Task WarmUpAsync(RunOptions options, double seconds, TextWriter log)
    {
        if (seconds <= 0) return;
        double rate = options.Profile?.RateAt(0) ?? 1000;
        RunOptions warm = options with { Profile = options.OpenLoop ? new ConstantProfile(rate, seconds) : null, ClosedSeconds = seconds };
        RunOutcome run = await new LoadRunner(warm, null).RunAsync();
        log.WriteLine($"warm-up: {run.Totals.Latency.Count} of {run.Sent} answered in {seconds:0.#} s (p99 {Report.Ms(run.Totals.Latency.ValueAt(0.99))}), not measured");
    }

    /// <summary>The warm table's shape: closed-loop streams, as fast as the switch takes them.</summary>
    public const int WarmStreams = 4;
    public const int WarmWindow = 4096;

    /// <summary>
    /// Fills the switch's transaction table before the measured window: <paramref name="transactions"/> requests on
    /// closed-loop streams (its own order numbers, the run's mix), so a run past 2^20 measures the full table's
    /// cost (eviction into the archive), not the filling one's. Returns how many were answered; none are measured.
    /// </summary>
    public static async Task<long> WarmTableAsync(RunOptions options, long transactions, TextWriter log)
    {
        if (transactions <= 0) return 0;
        RunOptions warm = options with
        {
            Transport = Transport.Stream, Profile = null, Lanes = WarmStreams, Window = WarmWindow,
            MaxRequests = transactions, ClosedSeconds = RateProfile.MaxDurationSeconds,
        };
        long started = Stopwatch.GetTimestamp();
        RunOutcome run = await new LoadRunner(warm, null).RunAsync();
        double seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        long answered = run.Totals.Latency.Count;
        log.WriteLine($"warm table: {answered} of {run.Sent} answered in {seconds:F1} s ({answered / Math.Max(seconds, 1e-9):F0}/s), not measured");
        if (run.Lost > 0 || run.Duplicated > 0 || run.Unexpected > 0)
        {
            throw new InvalidOperationException($"the warm table run lost {run.Lost}, duplicated {run.Duplicated}, unexpected {run.Unexpected}: the switch is not sound to measure");
        }
        return answered;
    }
}
