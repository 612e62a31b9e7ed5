using System.Text.Json;
using dotnet_etcd;
using Etcdserverpb;
using Google.Protobuf;

namespace Switch.Cluster;

/// <summary>
/// Which nodes hold every acknowledged payment: the primary of <see cref="Term"/> and, when it is in sync, its standby
/// (empty when there is none, or the primary runs degraded: it acknowledges alone). Kept in
/// <c>/switch/&lt;cluster&gt;/in-sync</c> without a lease (it must outlive every node). Only a node it names may campaign
/// (<see cref="MayCampaign"/>): a standby that was behind, or a node rebuilt from empty, never takes office over
/// acknowledged payments it lacks; the cluster waits for a node that has them instead (RPO 0 over availability).
/// The primary writes it only while it holds the leader key (a transaction on the key's create revision, its term).
/// </summary>
public sealed record InSyncRecord(string Primary, string Standby, long Term)
{
    public const string Kind = "switch.in-sync.v1";

    /// <summary>A node may campaign when no primary ever wrote the record (a new cluster), or the record names it.</summary>
    public static bool MayCampaign(InSyncRecord? record, string node) =>
        record is null || record.Primary == node || (record.Standby.Length > 0 && record.Standby == node);

    public byte[] ToUtf8Json() => JsonSerializer.SerializeToUtf8Bytes(new Wire(Kind, Primary, Standby, Term));

    public static InSyncRecord Parse(ReadOnlySpan<byte> value, string key)
    {
        Wire? wire;
        try
        {
            wire = JsonSerializer.Deserialize<Wire>(value);
        }
        catch (JsonException e)
        {
            throw Malformed(key, $"not JSON ({e.Message})");
        }
        if (wire is null || wire.kind != Kind) throw Malformed(key, $"kind '{wire?.kind}', not '{Kind}'");
        if (string.IsNullOrEmpty(wire.primary) || wire.standby is null || wire.term < 1) throw Malformed(key, "primary, standby and term are required");
        return new InSyncRecord(wire.primary, wire.standby, wire.term);
    }

    private static LeadershipException Malformed(string key, string why) =>
        new(LeadershipCodes.LeaderValueMalformed, $"the value of {key} is not an in-sync record: {why}");

    private sealed record Wire(string kind, string primary, string standby, long term);

    /// <summary>The record's key for <paramref name="options"/>' cluster.</summary>
    public static string KeyOf(LeadershipOptions options) => $"/switch/{options.ClusterName}/in-sync";

    /// <summary>Reads it: null when no primary ever wrote it. Throws <see cref="LeadershipException"/> (ETCD_UNAVAILABLE...).</summary>
    public static async Task<InSyncRecord?> ReadAsync(EtcdClient etcd, LeadershipOptions options, CancellationToken ct)
    {
        string key = KeyOf(options);
        var calls = new EtcdCalls(options);
        RangeResponse found = await calls.Run(d => etcd.GetConnection().KVClient.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8(key) },
            deadline: d, cancellationToken: ct).ResponseAsync, $"read {key}", ct).ConfigureAwait(false);
        return found.Kvs.Count == 0 ? null : Parse(found.Kvs[0].Value.Span, key);
    }

    /// <summary>Writes it if and only if the leader key still holds term <see cref="Term"/>: false when it does not
    /// (this node no longer leads; it must not act).</summary>
    public async Task<bool> PublishAsync(EtcdClient etcd, LeadershipOptions options, CancellationToken ct)
    {
        string key = KeyOf(options);
        ByteString leader = ByteString.CopyFromUtf8(options.LeaderKey);
        var request = new TxnRequest
        {
            Compare = { new Compare { Key = leader, Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Equal, CreateRevision = Term } },
            Success = { new RequestOp { RequestPut = new PutRequest { Key = ByteString.CopyFromUtf8(key), Value = ByteString.CopyFrom(ToUtf8Json()) } } },
        };
        var calls = new EtcdCalls(options);
        TxnResponse txn = await calls.Run(d => etcd.GetConnection().KVClient.TxnAsync(request, deadline: d, cancellationToken: ct).ResponseAsync,
            $"write {key}", ct).ConfigureAwait(false);
        return txn.Succeeded;
    }
}
