using System.Text.Json;

namespace Switch.Cluster;

/// <summary>The value of the leader key: who leads and where clients, operators and the standby find it. Stored as
/// JSON, e.g. <c>{"kind":"switch.leader.v1","node":"a","address":"10.0.0.1:7000","adminAddress":"10.0.0.1:7002",
/// "replicationAddress":"10.0.0.1:7010"}</c>; <c>kind</c> tells our record from anything else put in the key.</summary>
public sealed record LeaderRecord(string NodeName, string Address, string AdminAddress, string ReplicationAddress)
{
    public const string Kind = "switch.leader.v1";
    /// <summary>A value longer than this is not ours (ours are a few hundred bytes).</summary>
    public const int MaxValueBytes = 4_096;

    public static LeaderRecord Of(LeadershipOptions options) =>
        new(options.NodeName, options.AdvertisedAddress, options.AdvertisedAdminAddress, options.ReplicationAddress);

    public byte[] ToUtf8Json()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(512);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("kind", Kind);
            json.WriteString("node", NodeName);
            json.WriteString("address", Address);
            json.WriteString("adminAddress", AdminAddress);
            json.WriteString("replicationAddress", ReplicationAddress);
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The record in <paramref name="value"/>, or <c>LEADER_VALUE_MALFORMED</c> naming the key and what is
    /// wrong with the value.</summary>
    public static LeaderRecord Parse(ReadOnlySpan<byte> value, string key)
    {
        if (value.Length > MaxValueBytes) throw Malformed(key, $"{value.Length} bytes, more than {MaxValueBytes}");
        JsonDocument document;
        try
        {
            var bytes = value.ToArray();
            document = JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            throw Malformed(key, $"not JSON ({e.Message})");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Malformed(key, $"a JSON {root.ValueKind}, not an object");
            var kind = ReadField(root, "kind", key);
            if (kind != Kind) throw Malformed(key, $"kind '{kind}', not '{Kind}'");
            var node = ReadField(root, "node", key);
            if (node.Length is 0 or > LeadershipOptions.MaxNameChars) throw Malformed(key, $"node '{node}' is not a node name");
            var record = new LeaderRecord(node, ReadAddress(root, "address", key), ReadAddress(root, "adminAddress", key),
                ReadAddress(root, "replicationAddress", key));
            return record;
        }
    }

    static string ReadAddress(JsonElement root, string name, string key)
    {
        var s = ReadField(root, name, key);
        if (!LeadershipOptions.IsAddress(s)) throw Malformed(key, $"{name} '{s}' is not host:port");
        return s;
    }

    static string ReadField(JsonElement root, string name, string key)
    {
        if (!root.TryGetProperty(name, out var e)) throw Malformed(key, $"no field '{name}'");
        if (e.ValueKind != JsonValueKind.String) throw Malformed(key, $"field '{name}' is a {e.ValueKind}, not a string");
        return e.GetString()!;
    }

    static LeadershipException Malformed(string key, string why) =>
        new(LeadershipCodes.LeaderValueMalformed, $"the value of {key} is not a leader record: {why}");
}

/// <summary>The leader as etcd shows it: its record, its term (the leader key's create revision) and its lease.</summary>
public sealed record LeaderInfo(LeaderRecord Record, long Term, long LeaseId);
