using System.Globalization;

namespace Switch.Engine.Pipeline;

/// <summary>Which side of a group commit a <see cref="JournalCrashPoint"/> kills the process on.</summary>
public enum JournalCrashMoment
{
    /// <summary>The batch is appended to the journal, not committed: nothing in it is durable or was acted on.</summary>
    BeforeCommit,
    /// <summary>The batch is committed, and the business logic has not seen it: durable, never acted on.</summary>
    AfterCommit,
}

/// <summary>
/// A test hook, never set in production: the journaler kills its own process with SIGKILL at one exact instant of
/// a group commit, the instants a kill from outside almost never hits. <see cref="Record"/> counts the records this
/// run has appended (1 = the first after recovery); the kill comes at the end of the batch that holds it. The
/// switch process takes it from the environment variable SWITCH_TEST_CRASH_POINT, e.g. <c>before-commit:2000</c>
/// or <c>after-commit:2000</c>; the crash-safety tests use it to prove that what was appended but not committed
/// (or committed but not yet acted on) is lost or recovered without losing anything acknowledged.
/// </summary>
public sealed record JournalCrashPoint(JournalCrashMoment Moment, long Record)
{
    public const string EnvironmentVariable = "SWITCH_TEST_CRASH_POINT";
    private const long MaxRecord = 1L << 40;

    /// <summary>Told, just before the kill, where the batch lies in the journal (first and last record address) and how
    /// many records this run appended; the host logs it, for the tests that damage that batch on disk.</summary>
    public Action<long, long, long>? Announce { get; init; }

    /// <summary>Parses <c>before-commit:N</c> or <c>after-commit:N</c>; ArgumentException naming what is wrong.</summary>
    public static JournalCrashPoint Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string[] parts = text.Split(':');
        JournalCrashMoment? moment = parts[0] switch
        {
            "before-commit" => JournalCrashMoment.BeforeCommit,
            "after-commit" => JournalCrashMoment.AfterCommit,
            _ => null,
        };
        if (parts.Length != 2 || moment is null
            || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long record) || record is < 1 or > MaxRecord)
        {
            throw new ArgumentException($"{EnvironmentVariable}: expected before-commit:N or after-commit:N with N from 1 to {MaxRecord}, got '{text}'");
        }
        return new JournalCrashPoint(moment.Value, record);
    }

    public override string ToString() =>
        (Moment == JournalCrashMoment.BeforeCommit ? "before-commit:" : "after-commit:") + Record.ToString(CultureInfo.InvariantCulture);
}
