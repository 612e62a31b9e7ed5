using System.Diagnostics;
using dotnet_etcd;
using Etcdserverpb;
using Google.Protobuf;

namespace Switch.Cluster.Tests;

/// <summary>What the leadership tests share: a node's options, a plain etcd client for what a test does behind the
/// nodes' backs, and waiting with generous limits (the machine is small and shared).</summary>
static class Nodes
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    public static LeadershipOptions Options(string etcdUrl, string cluster, string node, int leaseTtlMs = 2_000) => new()
    {
        Endpoints = [etcdUrl],
        ClusterName = cluster,
        NodeName = node,
        AdvertisedAddress = $"{node}.switch.test:7000",
        AdvertisedAdminAddress = $"{node}.switch.test:7002",
        ReplicationAddress = $"{node}.switch.test:7010",
        LeaseTtlMs = leaseTtlMs,
        RenewIntervalMs = Math.Min(500, (leaseTtlMs - 500) / 2),
        FenceMarginMs = 500,
        // The machine is shared and often loaded: a first call (connect, JIT) can take seconds.
        EtcdTimeoutMs = 5_000,
    };

    public static string UniqueCluster(string test) => $"{test}-{Guid.NewGuid().ToString("N")[..12]}";

    public static EtcdClient Client(EtcdServer etcd) => new(etcd.ClientUrl);

    public static async Task PutAsync(EtcdServer etcd, string key, string value, long leaseId = 0)
    {
        using var client = Client(etcd);
        await client.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8(key), Value = ByteString.CopyFromUtf8(value), Lease = leaseId });
    }

    /// <summary>The first <see cref="EtcdLeadership.Fenced"/> of <paramref name="node"/>.</summary>
    public static TaskCompletionSource<LeadershipFault> FirstFence(EtcdLeadership node)
    {
        var fenced = new TaskCompletionSource<LeadershipFault>(TaskCreationOptions.RunContinuationsAsynchronously);
        node.Fenced += f => fenced.TrySetResult(f);
        return fenced;
    }

    public static double MsSince(long ticks) => LeaseFence.TicksToMs(Stopwatch.GetTimestamp() - ticks);

    /// <summary>Campaigns again until etcd answers (it may still be coming back).</summary>
    public static async Task<long> CampaignUntilEtcdAnswersAsync(EtcdLeadership node)
    {
        var started = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await node.CampaignAsync(CancellationToken.None).WaitAsync(Patience);
            }
            catch (TimeoutException e)
            {
                // What the node last saw of the leader key is what a hung campaign waits on.
                throw new TimeoutException($"no campaign result in {Patience.TotalSeconds} s; the node last saw {node.Observed}", e);
            }
            catch (LeadershipException e) when (e.Code == LeadershipCodes.EtcdUnavailable && started.Elapsed < Patience)
            {
                await Task.Delay(200);
            }
        }
    }
}
