using System.Diagnostics;
using System.Globalization;
using System.Text;
using Switch.Engine.Logging;

namespace Switch.Host;

/// <summary>
/// The switch's log: one logfmt record per line, <c>ts=… level=… event=… key=value … msg="…"</c>. Keys are fixed
/// identifiers chosen here in the code; values come from anywhere (an endpoint's error, a configuration message),
/// so a value is written bare only when it is plain printable ASCII without space, quote, backslash or <c>=</c>, and
/// is quoted otherwise, with quotes, backslashes and every control or line-separating character escaped: no value
/// can end its field, add a field or start a line. Secrets never reach it: no call site passes a key, except the
/// published demo keys of the embedded demo configuration. Info and warnings go to one writer, errors to the other.
/// A record is written with one call on a synchronized writer, so records from several threads never interleave.
/// It is also the engine side's <see cref="IEventLog"/>: the engine's assemblies log through it, never a stream of their own.
/// </summary>
public sealed class Log : IEventLog
{
    /// <summary>Longest value written; a longer one is cut (and says so), so one record cannot flood the log.</summary>
    public const int MaxValueChars = 4_096;

    private readonly TextWriter _out;
    private readonly TextWriter _errors;
    private readonly Func<DateTime> _utcNow;

    public Log(TextWriter output, TextWriter errors, Func<DateTime>? utcNow = null)
    {
        _out = TextWriter.Synchronized(output);
        _errors = TextWriter.Synchronized(errors);
        _utcNow = utcNow ?? (() => DateTime.UtcNow);
    }

    /// <summary>The process's standard output (info, warn) and standard error (error, alert).</summary>
    public static Log Console { get; } = new(System.Console.Out, System.Console.Error);

    public void Info(string evt, string msg, params ReadOnlySpan<(string Key, object? Value)> fields) => Write("info", evt, msg, fields);

    public void Warn(string evt, string msg, params ReadOnlySpan<(string Key, object? Value)> fields) => Write("warn", evt, msg, fields);

    public void Error(string evt, string msg, params ReadOnlySpan<(string Key, object? Value)> fields) => Write("error", evt, msg, fields);

    /// <summary>Something an operator must act on now (e.g. clearing files that could not be written).</summary>
    public void Alert(string evt, string msg, params ReadOnlySpan<(string Key, object? Value)> fields) => Write("alert", evt, msg, fields);

    public void Write(LogSeverity severity, string evt, string msg, params ReadOnlySpan<(string Key, object? Value)> fields) =>
        Write(severity switch
        {
            LogSeverity.Info => "info",
            LogSeverity.Warn => "warn",
            LogSeverity.Error => "error",
            LogSeverity.Alert => "alert",
            _ => throw new ArgumentOutOfRangeException(nameof(severity), severity, "no such log level"),
        }, evt, msg, fields);

    private void Write(string level, string evt, string msg, ReadOnlySpan<(string Key, object? Value)> fields)
    {
        string line = Format(_utcNow(), level, evt, msg, fields);
        (level is "info" or "warn" ? _out : _errors).WriteLine(line);
    }

    /// <summary>One record, without its line end.</summary>
    public static string Format(DateTime utc, string level, string evt, string msg, ReadOnlySpan<(string Key, object? Value)> fields)
    {
        Debug.Assert(utc.Kind != DateTimeKind.Local, "log time is UTC");
        var line = new StringBuilder(128);
        line.Append("ts=").Append(utc.ToString("yyyy-MM-ddTHH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture));
        AppendField(line, "level", level);
        AppendField(line, "event", evt);
        foreach ((string key, object? value) in fields)
        {
            if (LogRecord.IsReserved(key)) throw new ArgumentException($"log: '{key}' is a reserved key", nameof(fields));
            AppendField(line, key, value switch
            {
                null => "",
                IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
                _ => value.ToString() ?? "",
            });
        }
        AppendField(line, "msg", msg);
        return line.ToString();
    }

    private static void AppendField(StringBuilder line, string key, string value)
    {
        if (!LogRecord.IsKey(key)) throw new ArgumentException($"log: '{key}' is not a key (lowercase letters, digits, '_')", nameof(key));
        line.Append(' ').Append(key).Append('=');
        bool cut = value.Length > MaxValueChars;
        if (cut) value = value[..MaxValueChars];
        if (!cut && value.Length > 0 && value.AsSpan().IndexOfAnyExcept(LogRecord.BareChars) < 0)
        {
            line.Append(value);
            return;
        }
        line.Append('"');
        for (int i = 0; i < value.Length; i++)
        {
            char c = value[i];
            switch (c)
            {
                case '"': line.Append("\\\""); break;
                case '\\': line.Append("\\\\"); break;
                case '\n': line.Append("\\n"); break;
                case '\r': line.Append("\\r"); break;
                case '\t': line.Append("\\t"); break;
                default:
                    bool pair = char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]);
                    if (pair)
                    {
                        line.Append(c).Append(value[++i]);
                    }
                    else if (char.IsControl(c) || char.IsSurrogate(c) || c is '\u2028' or '\u2029')
                    {
                        // Control characters (C0, DEL, C1 incl. NEL), line and paragraph separators, a lone surrogate.
                        line.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        line.Append(c);
                    }
                    break;
            }
        }
        if (cut) line.Append("…(cut)");
        line.Append('"');
    }
}

/// <summary>
/// One parsed log record: the strict reading of what <see cref="Log"/> writes (tests, the load harness reading the
/// switch's addresses). A line that is not exactly a sequence of <c>key=value</c> fields separated by single spaces,
/// starting with ts, level and event, with each key once, is not a record.
/// </summary>
public sealed class LogRecord
{
    /// <summary>The characters a value may hold unquoted: printable ASCII but space, quote, backslash and '='.</summary>
    internal static readonly System.Buffers.SearchValues<char> BareChars = System.Buffers.SearchValues.Create(
        "!#$%&'()*+,-./0123456789:;<>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~");

    private const int MaxFields = 64;
    private readonly Dictionary<string, string> _fields;

    private LogRecord(Dictionary<string, string> fields, DateTime time)
    {
        _fields = fields;
        Time = time;
    }

    public DateTime Time { get; }
    public string Level => _fields["level"];
    public string Event => _fields["event"];
    public string Message => _fields.GetValueOrDefault("msg", "");
    public IReadOnlyDictionary<string, string> Fields => _fields;

    /// <summary>The field's value, or null when the record has no such field.</summary>
    public string? this[string key] => _fields.GetValueOrDefault(key);

    public static bool IsKey(string key) =>
        key.Length is > 0 and <= 32 && key.AsSpan().IndexOfAnyExcept("abcdefghijklmnopqrstuvwxyz0123456789_") < 0;

    internal static bool IsReserved(string key) => key is "ts" or "level" or "event" or "msg";

    /// <summary>The record on the line, or null when the line is not one.</summary>
    public static LogRecord? TryParse(string line)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        int at = 0;
        while (at < line.Length)
        {
            if (fields.Count > 0)
            {
                if (line[at] != ' ') return null;
                at++;
            }
            int equals = line.IndexOf('=', at);
            if (equals < 0) return null;
            string key = line[at..equals];
            if (!IsKey(key) || fields.Count >= MaxFields) return null;
            at = equals + 1;
            string? value = at < line.Length && line[at] == '"' ? Quoted(line, ref at) : Bare(line, ref at);
            if (value is null || !fields.TryAdd(key, value)) return null;
        }
        if (!fields.TryGetValue("ts", out string? ts) || !fields.ContainsKey("level") || !fields.ContainsKey("event")) return null;
        if (!DateTime.TryParseExact(ts, "yyyy-MM-ddTHH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture,
                DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out DateTime time))
        {
            return null;
        }
        if (!line.StartsWith("ts=", StringComparison.Ordinal) || !IsKey(fields["level"]) || !IsKey(fields["event"])) return null;
        return new LogRecord(fields, time);
    }

    private static string? Bare(string line, ref int at)
    {
        int start = at;
        while (at < line.Length && line[at] != ' ') at++;
        ReadOnlySpan<char> value = line.AsSpan(start, at - start);
        return value.Length > 0 && value.IndexOfAnyExcept(BareChars) < 0 ? value.ToString() : null;
    }

    private static string? Quoted(string line, ref int at)
    {
        var value = new StringBuilder();
        at++; // the opening quote
        while (at < line.Length)
        {
            char c = line[at++];
            if (c == '"') return value.ToString();
            if (char.IsControl(c) || c is '\u2028' or '\u2029') return null; // always escaped when written
            if (c != '\\')
            {
                value.Append(c);
                continue;
            }
            if (at >= line.Length) return null;
            char e = line[at++];
            switch (e)
            {
                case '"': value.Append('"'); break;
                case '\\': value.Append('\\'); break;
                case 'n': value.Append('\n'); break;
                case 'r': value.Append('\r'); break;
                case 't': value.Append('\t'); break;
                case 'u' when at + 4 <= line.Length
                    && int.TryParse(line.AsSpan(at, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int code):
                    value.Append((char)code);
                    at += 4;
                    break;
                default: return null;
            }
        }
        return null; // no closing quote
    }
}
