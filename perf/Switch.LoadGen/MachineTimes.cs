using System.Globalization;

namespace Switch.LoadGen;

/// <summary>
/// The whole machine's CPU time during a run, from Linux's <c>/proc/stat</c> (its first line, every core together), and
/// the memory the guest handed back to its host meanwhile (free page reporting,
/// <c>/sys/module/page_reporting/parameters/reported_kib</c>). The generator and the switch share the machine: a run
/// that found it busy with something else (idle near 0 with both processes below their usual cores), its virtual CPUs
/// waiting for the host (steal), or its free memory going back to the host (every page taken from it costs the host's
/// fault when first written) says so beside its figures, where a run-to-run difference would otherwise be put down to
/// the build.
/// </summary>
public sealed record MachineTimes(long User, long Nice, long System, long Idle, long IoWait, long Irq, long SoftIrq, long Steal, long ReportedKib)
{
    private const string StatPath = "/proc/stat";
    private const string ReportedPath = "/sys/module/page_reporting/parameters/reported_kib";

    /// <summary>The machine now; null where there is no <c>/proc/stat</c> (not Linux) or it cannot be read.</summary>
    public static MachineTimes? Read()
    {
        try
        {
            if (!File.Exists(StatPath)) return null;
            string? reported = File.Exists(ReportedPath) ? File.ReadAllText(ReportedPath) : null;
            return Parse(File.ReadAllText(StatPath), reported);
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>From the text of <c>/proc/stat</c> and of <c>reported_kib</c> (null: no free page reporting, -1).
    /// Null when the first line is not the all-cores "cpu" line with at least the eight counters up to steal.</summary>
    public static MachineTimes? Parse(string stat, string? reportedKib)
    {
        string first = stat.AsSpan().IndexOf('\n') is int end and >= 0 ? stat[..end] : stat;
        string[] fields = first.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 9 || fields[0] != "cpu") return null;
        var ticks = new long[8];
        for (int i = 0; i < ticks.Length; i++)
        {
            if (!long.TryParse(fields[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out ticks[i])) return null;
        }
        long reported = reportedKib is not null && long.TryParse(reportedKib.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out long kib) ? kib : -1;
        return new MachineTimes(ticks[0], ticks[1], ticks[2], ticks[3], ticks[4], ticks[5], ticks[6], ticks[7], reported);
    }

    /// <summary>The report's line for the run between two readings; null unless both were read.</summary>
    public static string? Between(MachineTimes? before, MachineTimes? after) =>
        before is null || after is null ? null : after.Since(before).Line();

    /// <summary>What happened between two readings (all cumulative); the handback is -1 unless both had it.</summary>
    public MachineTimes Since(MachineTimes before) => new(User - before.User, Nice - before.Nice, System - before.System,
        Idle - before.Idle, IoWait - before.IoWait, Irq - before.Irq, SoftIrq - before.SoftIrq, Steal - before.Steal,
        ReportedKib >= 0 && before.ReportedKib >= 0 ? ReportedKib - before.ReportedKib : -1);

    /// <summary>One line for the report, each share of the machine's time in percent.</summary>
    public string Line()
    {
        long total = User + Nice + System + Idle + IoWait + Irq + SoftIrq + Steal;
        double Share(long ticks) => total > 0 ? ticks * 100.0 / total : 0;
        string line = string.Create(CultureInfo.InvariantCulture,
            $"user {Share(User + Nice):F1}%, system {Share(System):F1}%, interrupts {Share(Irq + SoftIrq):F1}%, idle {Share(Idle):F1}%, " +
            $"iowait {Share(IoWait):F1}%, steal {Share(Steal):F1}%");
        return ReportedKib < 0 ? line : line + string.Create(CultureInfo.InvariantCulture, $"; free memory handed back to the host {ReportedKib >> 10} MiB");
    }
}
