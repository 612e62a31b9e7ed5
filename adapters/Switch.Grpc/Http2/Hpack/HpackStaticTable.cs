using System.Text;

namespace Switch.Grpc.Http2.Hpack;

/// <summary>
/// The 61 entries of the static table (RFC 7541 Appendix A), indexed from 1. The constants name the indexes a gRPC
/// client uses; "te" has no entry (it must be sent as a literal with a new name: <see cref="TeName"/>).
/// </summary>
public static class HpackStaticTable
{
    public const int Count = 61;

    public const int Authority = 1;
    public const int Method_GET = 2;
    public const int Method_POST = 3;
    public const int Path = 4;
    public const int Scheme_http = 6;
    public const int Scheme_https = 7;
    public const int Status_200 = 8;
    public const int ContentEncoding = 26;
    public const int ContentLength = 28;
    public const int ContentType = 31;
    public const int UserAgent = 58;

    /// <summary>The name of the "te" header gRPC requires ("te: trailers"): not in the static table.</summary>
    public static ReadOnlySpan<byte> TeName => "te"u8;

    public static ReadOnlySpan<byte> TeTrailers => "trailers"u8;

    // Entry i (1-based) is at [i - 1]: the table as Appendix A lists it.
    private static readonly (byte[] Name, byte[] Value)[] Entries = Build(
    [
        (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"), (":path", "/index.html"),
        (":scheme", "http"), (":scheme", "https"), (":status", "200"), (":status", "204"), (":status", "206"),
        (":status", "304"), (":status", "400"), (":status", "404"), (":status", "500"), ("accept-charset", ""),
        ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""), ("accept", ""),
        ("access-control-allow-origin", ""), ("age", ""), ("allow", ""), ("authorization", ""), ("cache-control", ""),
        ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
        ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""), ("date", ""),
        ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""), ("if-match", ""),
        ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""), ("if-unmodified-since", ""),
        ("last-modified", ""), ("link", ""), ("location", ""), ("max-forwards", ""), ("proxy-authenticate", ""),
        ("proxy-authorization", ""), ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""),
        ("server", ""), ("set-cookie", ""), ("strict-transport-security", ""), ("transfer-encoding", ""),
        ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
    ]);

    /// <summary>Entry <paramref name="index"/>'s name (1 to <see cref="Count"/>).</summary>
    public static ReadOnlySpan<byte> Name(int index) => Entries[CheckedIndex(index)].Name;

    /// <summary>Entry <paramref name="index"/>'s value (1 to <see cref="Count"/>); empty for a name-only entry.</summary>
    public static ReadOnlySpan<byte> Value(int index) => Entries[CheckedIndex(index)].Value;

    private static int CheckedIndex(int index)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(index, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(index, Count);
        return index - 1;
    }

    private static (byte[], byte[])[] Build((string Name, string Value)[] entries)
    {
        if (entries.Length != Count) throw new InvalidOperationException($"the static table has {entries.Length} entries, not {Count}");
        var built = new (byte[], byte[])[entries.Length];
        for (int i = 0; i < entries.Length; i++) built[i] = (Encoding.ASCII.GetBytes(entries[i].Name), Encoding.ASCII.GetBytes(entries[i].Value));
        return built;
    }
}
