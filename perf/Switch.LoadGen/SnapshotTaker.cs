using System.Diagnostics;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;

namespace Switch.LoadGen;

/// <summary>
/// Snapshots asked of the switch every interval while a run is measured (the operator API's TakeSnapshot, as
/// <c>switchctl snapshot</c> does): the harness's p99 with snapshots against a run without. One at a time: the next is
/// asked for an interval after the last one answered. Each one's span from ask to answer goes into the windows the
/// report splits latencies by.
/// </summary>
public static class SnapshotTaker
{
    public static async Task<List<TakeSnapshotReply>> RunAsync(Uri adminAddress, string operatorKey, double everySeconds, SnapshotWindows windows, TextWriter log, CancellationToken stop)
    {
        var taken = new List<TakeSnapshotReply>();
        using var channel = GrpcChannel.ForAddress(adminAddress);
        var options = new CallOptions { Headers = new Metadata().Add(AdminMethods.OperatorKeyHeader, operatorKey), Timeout = TimeSpan.FromMinutes(2) };
        try
        {
            while (true)
            {
                await Task.Delay(TimeSpan.FromSeconds(everySeconds), stop);
                if (!windows.Begin(Stopwatch.GetTimestamp())) return taken;
                TakeSnapshotReply reply;
                try
                {
                    // Not cancelled by the run's end: a snapshot under way is waited for, so its window is whole.
                    reply = await channel.UnaryAsync(AdminMethods.TakeSnapshot, new TakeSnapshotRequest(), options);
                }
                finally
                {
                    windows.End(Stopwatch.GetTimestamp());
                }
                taken.Add(reply);
            }
        }
        catch (OperationCanceledException)
        {
            return taken;
        }
        catch (RpcException e)
        {
            log.WriteLine($"snapshots: TakeSnapshot failed: {e.Status.Code} {e.Status.Detail}");
            return taken;
        }
    }
}
