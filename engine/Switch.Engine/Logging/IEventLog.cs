namespace Switch.Engine.Logging;

/// <summary>How urgent a log record is; the host's log decides where each level goes.</summary>
public enum LogSeverity : byte
{
    Info,
    Warn,
    Error,
    /// <summary>Something an operator must act on now (e.g. clearing files that could not be written).</summary>
    Alert,
}

/// <summary>
/// The one way the engine's assemblies log: a structured record (a fixed event name, a message, key/value fields),
/// never a formatted line or a stream of their own. The host implements it with its log (logfmt records); the engine
/// does not depend on the host. Keys are lowercase identifiers chosen in the code; values may come from anywhere.
/// Called from any thread; never from the logic thread's hot path (the logic is deterministic and logs nothing).
/// </summary>
public interface IEventLog
{
    void Write(LogSeverity severity, string evt, string msg, params ReadOnlySpan<(string Key, object? Value)> fields);
}
