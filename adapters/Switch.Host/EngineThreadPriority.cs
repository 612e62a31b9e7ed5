using Switch.Engine.Snapshots;

namespace Switch.Host;

/// <summary>
/// Gives the engine's single-writer threads (journal and its device's writes, logic, output, the archive's writer and its
/// device's writes, a primary's replication gate) a lower nice than the rest of the process. The kernel shares a core between runnable
/// threads by weight, one thread one share: at the design peak the thread pool's workers and the sockets' threads
/// (3 to 12 of them) and the generator's, all runnable, left each engine thread the share of one among a dozen or more,
/// while each is the only thread that can do its stage's work. Off-CPU analysis of those runs (<c>perf sched
/// timehist</c>) found the stages' "stalls" there: the logic and the archive's writer preempted and runnable, not
/// blocked, for 100 to 600 ms at a time. Nice -10 weighs a thread about 9 times a nice-0 one; a stage still takes only
/// what it needs, since each sleeps when it has nothing to do, and the pool gets the rest.
/// A nice below 0 needs <c>CAP_SYS_NICE</c> (or an <c>RLIMIT_NICE</c>, systemd's <c>LimitNICE=</c>, allowing it): refused,
/// the threads run as before and the host says so once. Linux only; elsewhere nothing is changed.
/// </summary>
public static class EngineThreadPriority
{
    /// <summary>The engine's threads by the names they start with (Linux shows at most 15 characters of a name).</summary>
    public static readonly string[] ThreadNames =
        ["switch-journal", global::Switch.Journal.EventJournal.JournalWriteThreadName, "switch-logic", "switch-output", "switch-replicat", "switch-archiver", "switch-arch-io"];

    /// <summary>At most this many of the process's threads are looked at (a bound on the scan; the switch has about 50).</summary>
    private const int MaxThreadsScanned = 4_096;

    /// <summary>Sets <paramref name="nice"/> on every engine thread now running; returns those set and those refused.</summary>
    public static (int Set, int Refused) Apply(int nice)
    {
        if (nice is < NiceThread.MinNice or > NiceThread.MaxNice) throw new ArgumentOutOfRangeException(nameof(nice), nice, $"{NiceThread.MinNice} to {NiceThread.MaxNice}");
        if (nice == 0 || !OperatingSystem.IsLinux()) return (0, 0);
        int set = 0, refused = 0, scanned = 0;
        foreach (string task in Directory.EnumerateDirectories("/proc/self/task"))
        {
            if (++scanned > MaxThreadsScanned) break;
            if (!int.TryParse(Path.GetFileName(task), out int tid)) continue;
            string name;
            try
            {
                name = File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n');
            }
            catch (IOException)
            {
                continue; // the thread ended meanwhile
            }
            if (Array.IndexOf(ThreadNames, name) < 0) continue;
            if (NiceThread.TrySet(tid, nice)) set++;
            else refused++;
        }
        return (set, refused);
    }

    /// <summary><see cref="Apply"/>, told in one log record.</summary>
    public static void ApplyAndLog(int nice, Log log)
    {
        if (nice == 0) return;
        (int set, int refused) = Apply(nice);
        if (refused > 0)
        {
            log.Warn("engine_threads_nice_refused", "the kernel refused the engine threads' nice (it needs CAP_SYS_NICE or LimitNICE); they run at the process's",
                ("nice", nice), ("threads_set", set), ("threads_refused", refused));
        }
        else log.Info("engine_threads_nice", "the engine's threads run at a lower nice than the process's others", ("nice", nice), ("threads_set", set));
    }
}
