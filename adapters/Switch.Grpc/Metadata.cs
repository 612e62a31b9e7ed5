using System.Collections;

namespace Switch.Grpc;

/// <summary>
/// Custom metadata (headers or trailers) of a call. Keys are lower-case; keys ending in "-bin" carry bytes
/// (base64 on the wire), others carry printable ASCII strings. Reserved keys (grpc-*, pseudo headers,
/// content-type, te) are not metadata and are refused.
/// </summary>
public sealed class Metadata : IEnumerable<Metadata.Entry>
{
    public const string BinarySuffix = "-bin";

    private readonly List<Entry> _entries = new();

    public int Count => _entries.Count;

    internal Entry this[int index] => _entries[index];

    public Metadata Add(string key, string value)
    {
        key = NormalizeKey(key);
        if (IsBinaryKey(key)) throw new ArgumentException($"Key '{key}' ends in -bin: add bytes, not a string.", nameof(key));
        ArgumentNullException.ThrowIfNull(value);
        foreach (char c in value)
            if (c < 0x20 || c > 0x7E) throw new ArgumentException("ASCII metadata values must be printable ASCII; use a -bin key for bytes.", nameof(value));
        _entries.Add(new Entry(key, value, null));
        return this;
    }

    public Metadata Add(string key, byte[] value)
    {
        key = NormalizeKey(key);
        if (!IsBinaryKey(key)) throw new ArgumentException($"Key '{key}' must end in -bin to carry bytes.", nameof(key));
        ArgumentNullException.ThrowIfNull(value);
        _entries.Add(new Entry(key, null, value));
        return this;
    }

    /// <summary>The last string value under the key, or null.</summary>
    public string? GetValue(string key)
    {
        for (int i = _entries.Count - 1; i >= 0; i--)
            if (_entries[i].Key == key) return _entries[i].Value;
        return null;
    }

    /// <summary>The last byte value under the key (which ends in -bin), or null.</summary>
    public byte[]? GetBytes(string key)
    {
        for (int i = _entries.Count - 1; i >= 0; i--)
            if (_entries[i].Key == key) return _entries[i].ValueBytes;
        return null;
    }

    public IEnumerator<Entry> GetEnumerator() => _entries.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public static bool IsBinaryKey(string key) => key.EndsWith(BinarySuffix, StringComparison.Ordinal);

    /// <summary>Headers that belong to the protocol or to HTTP, never to the application.</summary>
    public static bool IsReservedHeader(string key) =>
        key.Length == 0 || key[0] == ':' || key.StartsWith("grpc-", StringComparison.OrdinalIgnoreCase)
        || key.Equals("content-type", StringComparison.OrdinalIgnoreCase)
        || key.Equals("te", StringComparison.OrdinalIgnoreCase)
        || key.Equals("content-length", StringComparison.OrdinalIgnoreCase)
        || key.Equals("host", StringComparison.OrdinalIgnoreCase);

    private static string NormalizeKey(string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        key = key.ToLowerInvariant();
        foreach (char c in key)
            if (!(c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-' or '_' or '.'))
                throw new ArgumentException($"Invalid metadata key '{key}'.", nameof(key));
        if (IsReservedHeader(key)) throw new ArgumentException($"Metadata key '{key}' is reserved.", nameof(key));
        return key;
    }

    // Wire form of a value: strings as-is, bytes as unpadded base64 (the spec says emit unpadded, accept both).
    internal static string ToWireValue(Entry entry) =>
        entry.ValueBytes is null ? entry.Value! : Convert.ToBase64String(entry.ValueBytes).TrimEnd('=');

    internal static byte[] FromWireBase64(string text)
    {
        text = text.Trim();
        int pad = (4 - text.Length % 4) % 4;
        if (pad == 3) throw new FormatException("Invalid base64 length.");
        return Convert.FromBase64String(pad == 0 ? text : text + new string('=', pad));
    }

    /// <summary>A server's request headers as metadata (reserved ones left out).</summary>
    internal static Metadata FromRequestHeaders(Microsoft.AspNetCore.Http.IHeaderDictionary headers)
    {
        var metadata = new Metadata();
        foreach (var (key, values) in headers)
        {
            if (IsReservedHeader(key)) continue;
            foreach (var value in values)
                if (value is not null) metadata.AddFromWire(key, value);
        }
        return metadata;
    }

    /// <summary>Adds one received header/trailer, skipping reserved keys and undecodable binary values.</summary>
    internal void AddFromWire(string key, string value)
    {
        key = key.ToLowerInvariant();
        if (IsReservedHeader(key)) return;
        if (IsBinaryKey(key))
        {
            // A -bin header may carry several comma-separated base64 values.
            foreach (var part in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                try { _entries.Add(new Entry(key, null, FromWireBase64(part))); }
                catch (FormatException) { /* A malformed binary value is dropped, never fatal to the call. */ }
            }
        }
        else
        {
            _entries.Add(new Entry(key, value, null));
        }
    }

    public readonly record struct Entry(string Key, string? Value, byte[]? ValueBytes)
    {
        public bool IsBinary => ValueBytes is not null;
    }
}
