using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Switch.Engine.Events;

namespace Switch.Clearing;

/// <summary>A clearing file that does not follow the format: the 1-based line and why.</summary>
public sealed class ClearingFormatException(int line, string reason)
    : Exception($"line {line}: {reason}")
{
    public int Line { get; } = line;
    public string Reason { get; } = reason;
}

/// <summary>
/// The CSV rules shared by every clearing file (RFC 4180 fields, '\n' line ends, UTF-8 without BOM): one record
/// type per line in the first field, H (header, once, first), D (data), T (trailer, once, last). The trailer's last
/// field is the SHA-256 (lowercase hex) of the bytes of every D line, line ends included.
/// </summary>
public static class ClearingCsv
{
    public const int MaxLineBytes = 4096;
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static string Join(IReadOnlyList<string> fields)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < fields.Count; i++)
        {
            if (i > 0) sb.Append(',');
            string f = fields[i];
            if (f.AsSpan().IndexOfAny(",\"\r\n") >= 0)
            {
                sb.Append('"').Append(f.Replace("\"", "\"\"")).Append('"');
            }
            else
            {
                sb.Append(f);
            }
        }
        return sb.Append('\n').ToString();
    }

    /// <summary>Splits one line (without its '\n'); a quoted field may hold commas and doubled quotes, never a line end.</summary>
    public static List<string> Split(string line, int lineNo)
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        int i = 0;
        while (true)
        {
            field.Clear();
            if (i < line.Length && line[i] == '"')
            {
                i++;
                while (true)
                {
                    if (i >= line.Length) throw new ClearingFormatException(lineNo, "unterminated quoted field");
                    char c = line[i++];
                    if (c == '"')
                    {
                        if (i < line.Length && line[i] == '"') { field.Append('"'); i++; continue; }
                        break;
                    }
                    field.Append(c);
                }
                if (i < line.Length && line[i] != ',') throw new ClearingFormatException(lineNo, $"text after a closing quote at column {i + 1}");
            }
            else
            {
                while (i < line.Length && line[i] != ',')
                {
                    char c = line[i++];
                    if (c is '"' or '\r') throw new ClearingFormatException(lineNo, $"stray {(c == '"' ? "quote" : "carriage return")} at column {i}");
                    field.Append(c);
                }
            }
            fields.Add(field.ToString());
            if (i >= line.Length) return fields;
            i++; // the comma
        }
    }

    public static string Time(long unixUs) =>
        DateTime.UnixEpoch.AddTicks(unixUs * TimeSpan.TicksPerMicrosecond).ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    public static long ParseTime(string text, int lineNo, string what)
    {
        if (!DateTime.TryParseExact(text, "yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture,
                DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out DateTime t))
        {
            throw new ClearingFormatException(lineNo, $"{what}: not a UTC time like 2025-11-13T02:13:20.000000Z: '{text}'");
        }
        return (t - DateTime.UnixEpoch).Ticks / TimeSpan.TicksPerMicrosecond;
    }

    public static long ParseLong(string text, int lineNo, string what)
    {
        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value) || text.StartsWith('+'))
        {
            throw new ClearingFormatException(lineNo, $"{what}: not an integer: '{text}'");
        }
        return value;
    }

    public static string Long(long value) => value.ToString(CultureInfo.InvariantCulture);

    public static string TypeName(RequestType type) => type switch
    {
        RequestType.AgreementPayment => "AGREEMENT_PAYMENT",
        RequestType.Payout => "PAYOUT",
        RequestType.Refund => "REFUND",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not a transfer type"),
    };

    public static string StatusName(TransactionStatus status) => status switch
    {
        TransactionStatus.Succeeded => "SUCCEEDED",
        TransactionStatus.Failed => "FAILED",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, "not a final status"),
    };

    /// <summary>Reads the lines of a clearing file in order: H first (handed to <paramref name="onHeader"/>), D lines
    /// (to <paramref name="onData"/> with their line number), T last, then checks the body hash. The first error in
    /// file order is the one reported. Returns the trailer's fields and its line number.</summary>
    public static (List<string> Trailer, int LineNo) Read(Stream stream, long maxBytes, Action<List<string>> onHeader,
        Action<int, List<string>> onData)
    {
        if (stream.CanSeek && stream.Length > maxBytes) throw new ClearingFormatException(0, $"file larger than {maxBytes} bytes");
        List<string>? header = null, trailer = null;
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var reader = new StreamReader(stream, Utf8, detectEncodingFromByteOrderMarks: false, bufferSize: 64 * 1024, leaveOpen: true);
        int lineNo = 0;
        long readBytes = 0;
        while (true)
        {
            string? line;
            try
            {
                line = reader.ReadLine();
            }
            catch (DecoderFallbackException)
            {
                throw new ClearingFormatException(lineNo + 1, "not UTF-8");
            }
            if (line is null) break;
            lineNo++;
            int lineBytes = Utf8.GetByteCount(line) + 1;
            readBytes += lineBytes;
            if (readBytes > maxBytes) throw new ClearingFormatException(lineNo, $"file larger than {maxBytes} bytes");
            if (lineBytes > MaxLineBytes) throw new ClearingFormatException(lineNo, $"line longer than {MaxLineBytes} bytes");
            if (trailer is not null) throw new ClearingFormatException(lineNo, "line after the trailer");
            List<string> fields = Split(line, lineNo);
            switch (fields[0])
            {
                case "H":
                    if (lineNo != 1) throw new ClearingFormatException(lineNo, "header not on the first line");
                    header = fields;
                    onHeader(fields);
                    break;
                case "D":
                    if (header is null) throw new ClearingFormatException(lineNo, "data before the header");
                    sha.AppendData(Utf8.GetBytes(line + "\n"));
                    onData(lineNo, fields);
                    break;
                case "T":
                    if (header is null) throw new ClearingFormatException(lineNo, "trailer before the header");
                    trailer = fields;
                    break;
                default:
                    throw new ClearingFormatException(lineNo, $"unknown record type '{fields[0]}' (H, D or T)");
            }
        }
        if (header is null) throw new ClearingFormatException(1, "empty file: no header");
        if (trailer is null) throw new ClearingFormatException(lineNo, "no trailer: the file is truncated");
        string expected = Convert.ToHexStringLower(sha.GetHashAndReset());
        if (trailer[^1] != expected) throw new ClearingFormatException(lineNo, $"body SHA-256 is {expected}, the trailer says {trailer[^1]}");
        return (trailer, lineNo);
    }
}
