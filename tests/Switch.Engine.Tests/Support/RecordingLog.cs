using Switch.Engine.Logging;

namespace Switch.Engine.Tests.Support;

/// <summary>The engine side's log in tests: keeps every record (thread-safe) so a test can assert what was logged.</summary>
public sealed class RecordingLog : IEventLog
{
    public sealed record Entry(LogSeverity Severity, string Event, string Message, IReadOnlyDictionary<string, object?> Fields);

    private readonly List<Entry> _entries = [];

    public IReadOnlyList<Entry> Entries
    {
        get { lock (_entries) return _entries.ToArray(); }
    }

    public void Write(LogSeverity severity, string evt, string msg, params ReadOnlySpan<(string Key, object? Value)> fields)
    {
        var values = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach ((string key, object? value) in fields) values[key] = value;
        lock (_entries) _entries.Add(new Entry(severity, evt, msg, values));
    }
}
