using System.Text;

namespace Switch.Grpc;

/// <summary>
/// Percent-encoding of grpc-message: the UTF-8 bytes of the detail, with every byte outside
/// 0x20-0x7E, and '%' itself, written as %XX. Decoding never throws: on malformed input it returns the raw text.
/// </summary>
public static class StatusMessageEncoding
{
    private const string HexDigits = "0123456789ABCDEF";

    public static string Encode(string detail)
    {
        ArgumentNullException.ThrowIfNull(detail);
        bool clean = true;
        foreach (char c in detail)
            if (NeedsEncoding(c)) { clean = false; break; }
        if (clean) return detail; // The common case allocates nothing.

        byte[] utf8 = Encoding.UTF8.GetBytes(detail);
        var sb = new StringBuilder(utf8.Length * 3);
        foreach (byte b in utf8)
        {
            if (NeedsEncoding((char)b))
                sb.Append('%').Append(HexDigits[b >> 4]).Append(HexDigits[b & 0xF]);
            else
                sb.Append((char)b);
        }
        return sb.ToString();
    }

    public static string Decode(string wire)
    {
        ArgumentNullException.ThrowIfNull(wire);
        if (wire.IndexOf('%') < 0) return wire;

        var bytes = new byte[wire.Length];
        int n = 0;
        for (int i = 0; i < wire.Length; i++)
        {
            char c = wire[i];
            if (c == '%')
            {
                if (i + 2 >= wire.Length || !TryHex(wire[i + 1], out int hi) || !TryHex(wire[i + 2], out int lo))
                    return wire; // Malformed: the caller gets the raw form, as the spec allows.
                bytes[n++] = (byte)(hi << 4 | lo);
                i += 2;
            }
            else if (c > 0x7F)
            {
                return wire;
            }
            else
            {
                bytes[n++] = (byte)c;
            }
        }
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes, 0, n);
        }
        catch (DecoderFallbackException)
        {
            return wire;
        }
    }

    private static bool NeedsEncoding(char c) => c < 0x20 || c > 0x7E || c == '%';

    private static bool TryHex(char c, out int value)
    {
        value = c switch
        {
            >= '0' and <= '9' => c - '0',
            >= 'a' and <= 'f' => c - 'a' + 10,
            >= 'A' and <= 'F' => c - 'A' + 10,
            _ => -1,
        };
        return value >= 0;
    }
}
